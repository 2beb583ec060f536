/**
 * Shapes of the server's JSON (docs/protocol.md), and the checks that turn what the server
 * sent (`unknown`) into them: nothing from the network is used before it is checked.
 * Fields the UI does not rely on stay optional.
 */

import { isRecord } from "./http";

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
  /** The title the program last set (OSC 0/2); null or absent when none (or an older server). */
  title?: string | null;
  /** When the program last wrote output, as this server saw it. */
  activityAt?: Timestamp;
  /** Why the program can no longer be reached or its exit code known (its keeper died). */
  lost?: string | null;
  /** The node that owns the session (a cluster of servers); absent from an older server. */
  node?: string;
}

/** One server of a cluster, as GET /api/nodes sends it. */
export interface ClusterNode {
  name: string;
  online: boolean;
  /** How many sessions the node owns. */
  sessions: number;
  /** Its last heartbeat (ISO 8601, UTC). */
  lastSeen: string;
}

export interface NewSession {
  /** Create the session on this node of the cluster (left out: the server that is asked). */
  node?: string;
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
  /** The command line, shell-quoted. */
  command?: string | null;
  /** The program and its arguments; null when the server knows the line only. */
  argv?: string[] | null;
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

/** Client to server JSON text messages on the WebSocket. */
export type ClientMessage =
  | { type: "input"; data: string }
  | { type: "resize"; cols: number; rows: number }
  | { type: "ping" }
  | { type: "ack"; bytes: number };

const isInt = (value: unknown): value is number => Number.isInteger(value);
const isStrings = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === "string");
const orNull =
  <T>(check: (value: unknown) => value is T) =>
  (value: unknown): value is T | null =>
    value === null || check(value);
const isString = (value: unknown): value is string => typeof value === "string";
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

/** A session as GET /api/sessions/{id} sends it, or null when `value` is not one. */
export function asSession(value: unknown): Session | null {
  if (!isRecord(value)) return null;
  const { id, name, command, args, cwd, cols, rows, status, exitCode, pid, createdAt, exitedAt, clients } = value;
  if (
    !isString(id) ||
    !isString(name) ||
    !isString(command) ||
    !isStrings(args) ||
    !isString(cwd) ||
    !isInt(cols) ||
    !isInt(rows) ||
    (status !== "running" && status !== "exited") ||
    !orNull(isInt)(exitCode) ||
    !orNull(isInt)(pid) ||
    !isString(createdAt) ||
    !orNull(isString)(exitedAt) ||
    !isInt(clients)
  ) {
    return null;
  }
  const session: Session = { id, name, command, args, cwd, cols, rows, status, exitCode, pid, createdAt, exitedAt, clients };
  // Additions of this server; an older one leaves them out.
  const { title, activityAt, lost, node } = value;
  if (title !== undefined && !orNull(isString)(title)) return null;
  if (node !== undefined && !isString(node)) return null;
  if (activityAt !== undefined && !orNull(isString)(activityAt)) return null;
  if (lost !== undefined && !orNull(isString)(lost)) return null;
  if (title !== undefined) session.title = title;
  if (activityAt !== undefined) session.activityAt = activityAt;
  if (lost !== undefined) session.lost = lost;
  if (node !== undefined) session.node = node;
  return session;
}

/**
 * The session list (GET /api/sessions, or one event of /api/sessions/events): its valid
 * sessions, or null when it is not a list at all. A malformed entry is left out, not guessed at.
 */
export function asSessions(value: unknown): Session[] | null {
  if (!Array.isArray(value)) return null;
  return value.map(asSession).filter((session): session is Session => session !== null);
}

/** The node list (GET /api/nodes): its valid entries, or null when it is not a list. */
export function asNodes(value: unknown): ClusterNode[] | null {
  if (!Array.isArray(value)) return null;
  const nodes: ClusterNode[] = [];
  for (const item of value) {
    if (!isRecord(item)) continue;
    const { name, online, sessions, lastSeen } = item;
    if (!isString(name) || name === "" || typeof online !== "boolean" || !isInt(sessions) || !isString(lastSeen)) continue;
    nodes.push({ name, online, sessions, lastSeen });
  }
  return nodes;
}

/** A recording of GET /api/recordings, or null when `value` is not one. */
export function asRecording(value: unknown): Recording | null {
  if (!isRecord(value) || !isString(value["id"])) return null;
  const { id, name, command, argv, cwd, size, startedAt, endedAt, duration, exitCode, bytes } = value;
  const optional = <T>(v: unknown, check: (x: unknown) => x is T): T | null => (check(v) ? v : null);
  return {
    id,
    name: optional(name, isString),
    command: optional(command, isString),
    argv: optional(argv, isStrings),
    cwd: optional(cwd, isString),
    size: optional(size, isString),
    startedAt: optional(startedAt, isString),
    endedAt: optional(endedAt, isString),
    duration: optional(duration, isNumber),
    exitCode: optional(exitCode, isInt),
    bytes: optional(bytes, isInt),
  };
}

/** The recording list: its valid recordings, or null when it is not a list. */
export function asRecordings(value: unknown): Recording[] | null {
  if (!Array.isArray(value)) return null;
  return value.map(asRecording).filter((recording): recording is Recording => recording !== null);
}
