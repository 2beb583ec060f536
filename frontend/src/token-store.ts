/**
 * Where the tokens live. A sign-in (password or login link) keeps its access token in memory
 * only: its refresh token is an HttpOnly cookie the server set, shared by every tab of the
 * browser, which no script can read and which opens nothing without the device key
 * (device-key.ts). Where the page can keep no key, the refresh token stays in this tab's
 * memory instead. A token from the address bar (a share link) cannot be
 * renewed and is kept in sessionStorage, so a reload of that tab keeps it. Pure helpers read
 * JWT claims (no signature check: that is the server's job; the app only needs `exp` and
 * `sessionId` to plan refreshes and routing).
 */

import { isRecord } from "./http";
import type { TokenResponse } from "./types";

export interface Tokens {
  accessToken: string;
  /** True for a sign-in, renewed with the browser's refresh cookie; false for a token given in
   * the URL (a share link or a script's token), which cannot be renewed. */
  renewable: boolean;
  /** A sign-in of this tab only (no device key): its refresh token, in memory, never stored. */
  refreshToken?: string;
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

/** Tokens from a login, exchange or refresh answer, received at `now` (ms); `tabOnly` keeps its
 * refresh token (a sign-in without a device key, renewed by body). */
export function tokensFromResponse(response: TokenResponse, now: number, tabOnly = false): Tokens {
  const claims = jwtClaims(response.accessToken);
  let expiresAt: number | null = null;
  if (typeof response.expiresIn === "number") expiresAt = now + response.expiresIn * 1000;
  else if (claims?.exp !== undefined) expiresAt = claims.exp * 1000;
  const tokens: Tokens = {
    accessToken: response.accessToken,
    renewable: true,
    expiresAt,
    sessionId: claims?.sessionId ?? null,
  };
  if (tabOnly && response.refreshToken) tokens.refreshToken = response.refreshToken;
  return tokens;
}

/** Tokens for a bare access token taken from the address bar (`?token=`). */
export function tokensFromBareToken(token: string): Tokens {
  const claims = jwtClaims(token);
  return {
    accessToken: token,
    renewable: false,
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
      renewable: false,
      expiresAt: typeof value["expiresAt"] === "number" ? value["expiresAt"] : null,
      sessionId: typeof value["sessionId"] === "string" ? value["sessionId"] : null,
      readOnly: value["readOnly"] === true,
    };
  } catch {
    return null; // storage disabled, or damaged: behave as signed out
  }
}

/** Keep a share link's token for reloads of this tab; a sign-in's lives in memory only. */
export function saveTokens(tokens: Tokens | null): void {
  try {
    if (tokens && !tokens.renewable) sessionStorage.setItem(KEY, JSON.stringify(tokens));
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled (private mode): the tokens still live in memory for this page.
  }
}
