/** Shapes of the server's JSON (contract.md). Fields the UI does not rely on stay optional. */

export type Timestamp = string | number | null;

export interface Session {
  id: string;
  name: string;
  command: string;
  args: string[];
  cwd: string;
  cols: number;
  rows: number;
  status: "running" | "exited";
  exitCode: number | null;
  pid: number | null;
  createdAt: Timestamp;
  exitedAt: Timestamp;
  clients: number;
}

export interface NewSession {
  command?: string;
  args?: string[];
  cwd?: string;
  name?: string;
  cols?: number;
  rows?: number;
}

export interface Recording {
  id: string;
  name?: string | null;
  command?: string | null;
  cwd?: string | null;
  size?: string | number | null;
  startedAt?: Timestamp;
  endedAt?: Timestamp;
  duration?: number | null;
  exitCode?: number | null;
  bytes?: number | null;
}

export interface TokenResponse {
  accessToken: string;
  refreshToken?: string | null;
  expiresIn?: number | null;
  tokenType?: string;
}

export interface AuthConfig {
  authRequired: boolean;
}

/** Server to client JSON text messages on the WebSocket. */
export type ServerMessage = { type: "pong" } | { type: "exit"; code: number | null };

/** Client to server JSON text messages on the WebSocket. */
export type ClientMessage =
  | { type: "input"; data: string }
  | { type: "resize"; cols: number; rows: number }
  | { type: "ping" };
