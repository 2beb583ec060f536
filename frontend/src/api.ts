/**
 * The HTTP API of docs/protocol.md, with the tab's token attached and 401 handled in one place.
 * Every JSON answer is checked (types.ts) before the pages see it.
 */

import type { Auth } from "./auth";
import { ApiError, isRecord, request, type RequestOptions } from "./http";
import {
  asNodes,
  asRecordings,
  asSession,
  asSessions,
  type AuthConfig,
  type ClusterNode,
  type NewSession,
  type Recording,
  type Session,
} from "./types";

/** `value`, or an ApiError saying the server sent something else than `what`. */
export function checked<T>(value: T | null, what: string): T {
  if (value === null) throw new ApiError(502, `The server sent an unexpected ${what}.`, "bad_response");
  return value;
}

export class Api {
  constructor(private readonly auth: Auth) {}

  /**
   * Send an authenticated request. On 401, renew the token once and retry; when that is not
   * possible the user must sign in again (unless `quiet`, for calls whose failure is harmless).
   */
  private async call<T>(method: string, path: string, opts: RequestOptions = {}, quiet = false): Promise<T> {
    const token = await this.auth.accessToken();
    try {
      return await request<T>(method, path, { ...opts, token });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      if (this.auth.canSignOut && (await this.auth.refresh())) {
        return request<T>(method, path, { ...opts, token: await this.auth.accessToken() });
      }
      if (!quiet) {
        this.auth.signOut(
          this.auth.signedIn ? "Your sign-in is no longer valid. Please sign in again." : "Please sign in.",
        );
      }
      throw error;
    }
  }

  authConfig(): Promise<AuthConfig> {
    return request<AuthConfig>("GET", "/api/auth/config");
  }

  async listSessions(): Promise<Session[]> {
    return checked(asSessions(await this.call<unknown>("GET", "/api/sessions")), "session list");
  }

  /**
   * The nodes of the cluster, own node included; null from a server that predates clusters
   * (404). Quiet: the session list, not this, decides when the user must sign in again.
   */
  async listNodes(): Promise<ClusterNode[] | null> {
    try {
      return checked(asNodes(await this.call<unknown>("GET", "/api/nodes", {}, true)), "node list");
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }

  /**
   * The name of the node serving the page, from GET /api/health (no auth), when the server says
   * (the node list does not); null when it does not or cannot be asked.
   */
  async ownNodeName(): Promise<string | null> {
    try {
      const health = await request<unknown>("GET", "/api/health");
      return isRecord(health) && typeof health["node"] === "string" && health["node"] ? health["node"] : null;
    } catch {
      return null;
    }
  }

  async getSession(id: string, quiet = false): Promise<Session> {
    const session = await this.call<unknown>("GET", `/api/sessions/${encodeURIComponent(id)}`, {}, quiet);
    return checked(asSession(session), "session");
  }

  async createSession(body: NewSession): Promise<Session> {
    return checked(asSession(await this.call<unknown>("POST", "/api/sessions", { body })), "session");
  }

  async renameSession(id: string, name: string): Promise<Session> {
    const answer = await this.call<unknown>("PATCH", `/api/sessions/${encodeURIComponent(id)}`, { body: { name } });
    return checked(asSession(answer), "session");
  }

  deleteSession(id: string): Promise<void> {
    return this.call<void>("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
  }

  async listRecordings(): Promise<Recording[]> {
    return checked(asRecordings(await this.call<unknown>("GET", "/api/recordings")), "recording list");
  }

  /** The asciicast v2 text of a recording. */
  recordingText(id: string): Promise<string> {
    return this.call<string>("GET", `/api/recordings/${encodeURIComponent(id)}`, { text: true });
  }

  deleteRecording(id: string): Promise<void> {
    return this.call<void>("DELETE", `/api/recordings/${encodeURIComponent(id)}`);
  }

  /** The live session list (server-sent events); EventSource cannot send headers. */
  async eventsUrl(): Promise<string> {
    const token = await this.auth.accessToken();
    return `/api/sessions/events${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  }

  /** One session, live (server-sent events); a share token may follow its own session. */
  async sessionEventsUrl(id: string): Promise<string> {
    const token = await this.auth.accessToken();
    return `/api/sessions/${encodeURIComponent(id)}/events${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  }

  /** The WebSocket URL of a session, on ws: or wss: to match the page. */
  async socketUrl(id: string): Promise<string> {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const token = await this.auth.accessToken();
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    return `${scheme}//${location.host}/api/sessions/${encodeURIComponent(id)}/ws${query}`;
  }
}
