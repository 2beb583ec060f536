/**
 * The signed-in state of this tab: which token to send, renewing it about a minute before it
 * expires with the browser's refresh cookie (it rotates: each answer sets the next one), and
 * telling the app when the user must sign in again. One sign-in serves every tab: a new tab
 * or a reload starts with `resume()`, a refresh by cookie.
 */

import { ApiError, request } from "./http";
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
    const answer = await request<TokenResponse>("POST", "/api/auth/login", { body: { password } });
    this.set(tokensFromResponse(answer, Date.now()));
  }

  /** Trade the one-time token of the login URL the server printed for real tokens. */
  async exchange(loginToken: string): Promise<void> {
    const answer = await request<TokenResponse>("POST", "/api/auth/exchange", { body: { loginToken } });
    this.set(tokensFromResponse(answer, Date.now()));
  }

  /** A new tab or a reload: sign in with the browser's refresh cookie if it has one. */
  async resume(): Promise<boolean> {
    if (this.tokens) return true;
    try {
      await this.byCookie();
      return true;
    } catch {
      return false; // no cookie, or an expired one: the sign-in form it is
    }
  }

  /**
   * Renew the access token with the refresh cookie. Concurrent callers share one request, and
   * the tabs of the browser take turns (a Web Lock), since the cookie rotates and a refresh
   * token used twice revokes its whole family. Resolves false when it could not.
   */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async byCookie(): Promise<void> {
    const ask = async (): Promise<void> => {
      const answer = await request<TokenResponse>("POST", "/api/auth/refresh");
      this.set(tokensFromResponse(answer, Date.now()));
    };
    if (navigator.locks) await navigator.locks.request("vibetunnel-refresh", ask);
    else await ask();
  }

  private async doRefresh(): Promise<boolean> {
    if (!this.tokens?.renewable) return false;
    try {
      await this.byCookie();
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

  /** Sign out on the server too (best effort), then locally. */
  async logout(): Promise<void> {
    if (this.tokens?.renewable) {
      try {
        await request<void>("POST", "/api/auth/logout");
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
