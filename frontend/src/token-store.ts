/**
 * Where the tokens live: sessionStorage, so each browser tab signs in on its own and nothing
 * outlives the tab. Pure helpers for reading JWT claims (no signature check: that is the
 * server's job; the app only needs `exp` and `sessionId` to plan refreshes and routing).
 */

import { isRecord } from "./http";
import type { TokenResponse } from "./types";

export interface Tokens {
  accessToken: string;
  /** Null for a token given in the URL (a share link or a script's token): it cannot be renewed. */
  refreshToken: string | null;
  /** Milliseconds since the epoch, or null when unknown. */
  expiresAt: number | null;
  /** The one session a share token opens, or null for a token that opens everything. */
  sessionId: string | null;
  /** A watch-only share link: the server drops its keystrokes and resizes. */
  readOnly?: boolean;
}

const KEY = "vibetunnel.tokens";

export interface JwtClaims {
  exp?: number;
  sessionId?: string;
  sub?: string;
  readOnly?: boolean;
}

/** Read a JWT's payload, or null when it is not a JWT. */
export function jwtClaims(token: string): JwtClaims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!isRecord(payload)) return null;
    const claims: JwtClaims = {};
    if (typeof payload["exp"] === "number") claims.exp = payload["exp"];
    if (typeof payload["sessionId"] === "string") claims.sessionId = payload["sessionId"];
    if (typeof payload["sub"] === "string") claims.sub = payload["sub"];
    if (payload["readOnly"] === true) claims.readOnly = true;
    return claims;
  } catch {
    return null;
  }
}

/** Tokens from a login, exchange or refresh answer, received at `now` (ms). */
export function tokensFromResponse(response: TokenResponse, now: number): Tokens {
  const claims = jwtClaims(response.accessToken);
  let expiresAt: number | null = null;
  if (typeof response.expiresIn === "number") expiresAt = now + response.expiresIn * 1000;
  else if (claims?.exp !== undefined) expiresAt = claims.exp * 1000;
  return {
    accessToken: response.accessToken,
    refreshToken: response.refreshToken ?? null,
    expiresAt,
    sessionId: claims?.sessionId ?? null,
  };
}

/** Tokens for a bare access token taken from the address bar (`?token=`). */
export function tokensFromBareToken(token: string): Tokens {
  const claims = jwtClaims(token);
  return {
    accessToken: token,
    refreshToken: null,
    expiresAt: claims?.exp !== undefined ? claims.exp * 1000 : null,
    sessionId: claims?.sessionId ?? null,
    readOnly: claims?.readOnly === true,
  };
}

export function loadTokens(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const value: unknown = JSON.parse(raw);
    if (!isRecord(value) || typeof value["accessToken"] !== "string") return null;
    return {
      accessToken: value["accessToken"],
      refreshToken: typeof value["refreshToken"] === "string" ? value["refreshToken"] : null,
      expiresAt: typeof value["expiresAt"] === "number" ? value["expiresAt"] : null,
      sessionId: typeof value["sessionId"] === "string" ? value["sessionId"] : null,
      readOnly: value["readOnly"] === true,
    };
  } catch {
    return null; // storage disabled, or damaged: behave as signed out
  }
}

export function saveTokens(tokens: Tokens | null): void {
  try {
    if (tokens) sessionStorage.setItem(KEY, JSON.stringify(tokens));
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled (private mode): the tokens still live in memory for this page.
  }
}
