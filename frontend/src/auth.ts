/**
 * The signed-in state of this tab: which token to send, renewing it about a minute before it
 * expires, and telling the app when the user must sign in again.
 *
 * One sign-in serves every tab: it is bound to this browser's device key (device-key.ts), and
 * the server keeps its refresh token in a cookie that rotates at each renewal. A renewal, or a
 * new tab or a reload (`resume()`), sends the cookie with a proof made with the key; the
 * cookie alone opens nothing, which matters because browsers send it to every port of the
 * host. Where the page cannot keep a key (an insecure context), a sign-in serves this tab
 * only: its refresh token stays in memory, and a reload signs out.
 */

import { deviceKeysAvailable, dropDeviceKey, loadDeviceKey, newDeviceKey, proofFor, saveDeviceKey } from "./device-key";
import { ApiError, isRecord, request } from "./http";
import { loadTokens, saveTokens, tokensFromBareToken, tokensFromResponse, type Tokens } from "./token-store";
import type { TokenResponse } from "./types";

/** Renew this long before expiry. */
const REFRESH_MARGIN_MS = 60_000;
/** Never schedule a refresh sooner than this (a token with a very short life). */
const MIN_REFRESH_DELAY_MS = 5_000;

export type SignedOutListener = (message: string) => void;

export class Auth {
  private tokens: Tokens | null = loadTokens();
  private refreshing: Promise<boolean> | null = null;
  private timer: number | undefined;
  private listeners: SignedOutListener[] = [];
  /** The key of this tab's own sign-in, for when IndexedDB could not keep it. */
  private ownKey: CryptoKey | null = null;

  constructor() {
    this.schedule();
  }

  /** True when this tab holds a token (it may still be refused by the server). */
  get signedIn(): boolean {
    return this.tokens !== null;
  }

  /** True when the user can sign out (a password or login-link sign-in, not a share link). */
  get canSignOut(): boolean {
    return this.tokens?.renewable === true;
  }

  /** True for a watch-only share link. */
  get readOnly(): boolean {
    return this.tokens?.readOnly === true;
  }

  /** The one session this tab's token opens, or null. */
  get scopedSession(): string | null {
    return this.tokens?.sessionId ?? null;
  }

  onSignedOut(listener: SignedOutListener): void {
    this.listeners.push(listener);
  }

  /** A valid access token, renewed first when it is about to expire; null when there is none. */
  async accessToken(): Promise<string | null> {
    const tokens = this.tokens;
    if (!tokens) return null;
    // The timer renews ahead of time; this catches a tab that slept through it.
    if (tokens.renewable && tokens.expiresAt !== null && tokens.expiresAt - Date.now() < MIN_REFRESH_DELAY_MS) {
      await this.refresh();
    }
    return this.tokens?.accessToken ?? null;
  }

  /** Use a token from the address bar (share links, `vibetunnel token`). */
  useBareToken(token: string): void {
    this.set(tokensFromBareToken(token));
  }

  async login(password: string): Promise<void> {
    await this.signIn("/api/auth/login", { password });
  }

  /** Trade the one-time token of the login URL the server printed for real tokens. */
  async exchange(loginToken: string): Promise<void> {
    await this.signIn("/api/auth/exchange", { loginToken });
  }

  /**
   * Sign in, bound to a new device key when this page can keep one (the server then sets the
   * cookie every tab renews with), else for this tab only.
   */
  private async signIn(path: string, body: Record<string, string>): Promise<void> {
    if (!(await deviceKeysAvailable())) {
      const answer = await request<TokenResponse>("POST", path, { body });
      this.set(tokensFromResponse(answer, Date.now(), true));
      return;
    }
    const device = await newDeviceKey();
    // In turn with the other tabs' renewals: the cookie and the key change together.
    await inTurn(async () => {
      const answer = await request<TokenResponse>("POST", path, { body: { ...body, deviceKey: device.text } });
      this.ownKey = device.key;
      try {
        await saveDeviceKey(device.key);
      } catch {
        // This tab keeps its key; other tabs and reloads will ask for the password.
      }
      this.set(tokensFromResponse(answer, Date.now()));
    });
  }

  /** A new tab or a reload: sign in with the browser's sign-in (cookie and key), if it has one. */
  async resume(): Promise<boolean> {
    if (this.tokens) return true;
    if (!(await this.deviceKey())) return false; // nothing kept: the sign-in form it is
    try {
      await this.renew();
      return true;
    } catch {
      return false; // no cookie, or an expired or revoked sign-in
    }
  }

  /**
   * Renew the access token. Concurrent callers share one request, and the tabs of the browser
   * take turns (a Web Lock), since the cookie rotates and a refresh token used twice revokes
   * its whole family. Resolves false when it could not.
   */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Renew with this tab's own refresh token, or with the cookie and a proof of the key. */
  private async renew(): Promise<void> {
    await inTurn(async () => {
      const own = this.tokens?.refreshToken;
      if (own) {
        const answer = await request<TokenResponse>("POST", "/api/auth/refresh", { body: { refreshToken: own } });
        this.set(tokensFromResponse(answer, Date.now(), true));
        return;
      }
      const headers = await this.proof("refresh");
      const answer = await request<TokenResponse>("POST", "/api/auth/refresh", { headers });
      this.set(tokensFromResponse(answer, Date.now()));
    });
  }

  /** The key of this browser's sign-in: IndexedDB's (another tab may have signed in anew). */
  private async deviceKey(): Promise<CryptoKey | null> {
    return (await loadDeviceKey()) ?? this.ownKey;
  }

  /** The headers that prove this browser holds the sign-in's key, for one use of the cookie. */
  private async proof(purpose: "refresh" | "logout"): Promise<Record<string, string>> {
    const key = await this.deviceKey();
    if (!key) throw new ApiError(401, "This browser holds no sign-in.", "unauthorized");
    const answer = await request<unknown>("POST", "/api/auth/nonce");
    const nonce = isRecord(answer) ? answer["nonce"] : null;
    if (typeof nonce !== "string") throw new ApiError(502, "The server sent an unexpected nonce.", "bad_response");
    return { "X-Refresh-Nonce": nonce, "X-Refresh-Proof": await proofFor(key, nonce, purpose) };
  }

  private async doRefresh(): Promise<boolean> {
    if (!this.tokens?.renewable) return false;
    try {
      await this.renew();
      return true;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 400)) {
        this.signOut("Your sign-in has expired. Please sign in again.");
      } else {
        this.schedule(30_000); // server unreachable for now: try again later
      }
      return false;
    }
  }

  /** Sign out on the server too (best effort), then locally: the key is forgotten either way,
   * so a cookie the server could not be told about opens nothing in this browser. */
  async logout(): Promise<void> {
    const tokens = this.tokens;
    if (tokens?.renewable) {
      try {
        await inTurn(async () => {
          if (tokens.refreshToken) {
            await request<void>("POST", "/api/auth/logout", { body: { refreshToken: tokens.refreshToken } });
            return;
          }
          try {
            await request<void>("POST", "/api/auth/logout", { headers: await this.proof("logout") });
          } finally {
            await dropDeviceKey();
            this.ownKey = null;
          }
        });
      } catch {
        // Signing out locally is what matters to the user.
      }
    }
    this.signOut("You are signed out.");
  }

  /** Forget the tokens and tell the app the user must sign in (again). */
  signOut(message: string): void {
    this.set(null);
    for (const listener of this.listeners) listener(message);
  }

  private set(tokens: Tokens | null): void {
    this.tokens = tokens;
    saveTokens(tokens);
    this.schedule();
  }

  private schedule(delayMs?: number): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
    const tokens = this.tokens;
    if (!tokens?.renewable || tokens.expiresAt === null) return;
    const delay = delayMs ?? Math.max(MIN_REFRESH_DELAY_MS, tokens.expiresAt - Date.now() - REFRESH_MARGIN_MS);
    this.timer = window.setTimeout(() => void this.refresh(), delay);
  }
}

/** Run `work` while no other tab of this browser renews or signs in (a Web Lock). */
async function inTurn(work: () => Promise<void>): Promise<void> {
  if (navigator.locks) await navigator.locks.request("vibetunnel-refresh", work);
  else await work();
}
