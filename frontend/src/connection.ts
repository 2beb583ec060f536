/**
 * One terminal's WebSocket: frames in, JSON messages out, keep-alive pings, and the close-code
 * policy of docs/protocol.md (retry with backoff, at most 1 s apart, on 1001/1006/1011; stop on
 * 1000/1003/1008).
 * No DOM here: the terminal page turns states into words.
 */

import { Backoff, BACKOFF_MAX_MS } from "./backoff";
import { Acks } from "./flow";
import { decodeFrames, FrameError } from "./framing";
import { ApiError, isRecord } from "./http";
import type { ClientMessage, Session } from "./types";

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "reconnecting"; attempt: number; delayMs: number; code: number }
  | { kind: "ended"; exitCode: number | null; reason: string }
  | { kind: "not-found" }
  | { kind: "unauthorized"; reason: string }
  | { kind: "protocol-error"; reason: string };

export interface ConnectionHandlers {
  /** A (re)connection opened: the server is about to replay the current screen. */
  onOpen(): void;
  /** Output to write; call `written` once it is (xterm.js's write callback): the page acks it. */
  onOutput(data: Uint8Array, written: () => void): void;
  onState(state: ConnectionState): void;
  /**
   * The socket closed normally without an exit message: the session may have ended, or may
   * not exist. Ask the server (GET the session: 404 is "not found"), not the close reason.
   */
  whyClosed(reason: string): Promise<ConnectionState>;
}

export const PING_INTERVAL_MS = 30_000;
/**
 * The longest wait between two attempts to reach the session: a server that comes back is
 * found within a second (each wait is 0.8 to 1 s of it, so dropped tabs do not come back at once).
 */
export const SOCKET_RETRY_CAP_MS = 1_000;

/**
 * The longest wait before retrying after a close with `code`. A 1011 (a fault in the server, a
 * rate limit, a full input queue) backs off to 10 s: retrying every second would keep a rate
 * limit hit. A server gone (1006) or stopping (1001) is tried again every second.
 */
export function retryCap(code: number): number {
  return code === 1011 ? BACKOFF_MAX_MS : SOCKET_RETRY_CAP_MS;
}

/**
 * Bytes of data in one input message at most, counted as the server reads the message
 * (JSON-escaped UTF-8). The server closes a message over 1 MiB with 1009; a bigger paste goes
 * as several input messages, in order.
 */
export const INPUT_CHUNK_BYTES = 256 * 1024;

/** Bytes JSON.stringify makes of one UTF-16 code unit that is not half of a pair. */
function jsonBytes(code: number): number {
  if (code === 0x22 || code === 0x5c) return 2; // \" and \\
  if (code < 0x20) return 6; // \u001b (\n is 2; 6 is the most a control character takes)
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  if (code >= 0xd800 && code <= 0xdfff) return 6; // a lone surrogate: \udXXX
  return 3;
}

/**
 * `data` cut into pieces of at most `limit` bytes each (as above), in order, each cut between
 * two characters: never between the halves of a surrogate pair. An empty string has no piece.
 */
export function inputChunks(data: string, limit = INPUT_CHUNK_BYTES): string[] {
  const chunks: string[] = [];
  let start = 0;
  let bytes = 0;
  let i = 0;
  while (i < data.length) {
    const code = data.charCodeAt(i);
    const next = data.charCodeAt(i + 1); // NaN past the end
    const pair = code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    const size = pair ? 4 : jsonBytes(code);
    if (bytes + size > limit && i > start) {
      chunks.push(data.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += pair ? 2 : 1;
  }
  if (start < data.length) chunks.push(data.slice(start));
  return chunks;
}

/**
 * What a close means. `exitCode` is the code of the exit message received before the close,
 * if any. Returns "retry", "ask" (a normal close without an exit message: ask the server
 * whether the session exists), or the final state to show.
 */
export function closeOutcome(code: number, reason: string, exitCode: number | null): "retry" | "ask" | ConnectionState {
  switch (code) {
    case 1000:
      return exitCode === null ? "ask" : { kind: "ended", exitCode, reason };
    case 1008:
      return { kind: "unauthorized", reason };
    case 1003:
      return { kind: "protocol-error", reason };
    default:
      // 1001 (server going away, idle timeout), 1006 (network dropped), 1011 (server fault),
      // and anything unexpected: the session may well still be there, so try again.
      return "retry";
  }
}

/**
 * `whyClosed` for a session known by `getSession` (GET /api/sessions/{id}): a 404 is "not
 * found"; a session that is there has ended (with its exit code, when the server knows it).
 */
export async function askServer(getSession: () => Promise<Session>, reason: string): Promise<ConnectionState> {
  try {
    const session = await getSession();
    return { kind: "ended", exitCode: session.exitCode, reason };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { kind: "not-found" };
    return { kind: "ended", exitCode: null, reason };
  }
}

export class TerminalConnection {
  private ws: WebSocket | null = null;
  private readonly backoff = new Backoff(SOCKET_RETRY_CAP_MS);
  private exitCode: number | null = null;
  private pingTimer: number | undefined;
  private retryTimer: number | undefined;
  private disposed = false;
  private finished = false;
  /** What this socket's output has been written (a new socket counts from zero). */
  private acks = new Acks();

  constructor(
    private readonly url: () => Promise<string>,
    private readonly handlers: ConnectionHandlers,
  ) {}

  start(): void {
    void this.connect();
  }

  /** Reconnect now instead of waiting for the backoff (the tab came back, the network is up). */
  retryNow(): void {
    if (this.retryTimer === undefined || this.disposed || this.finished) return;
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    void this.connect();
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(message: ClientMessage): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    if (message.type === "input") {
      // A big paste: several messages, each under the server's limit; the socket keeps order.
      for (const data of inputChunks(message.data)) this.ws.send(JSON.stringify({ type: "input", data }));
    } else {
      this.ws.send(JSON.stringify(message));
    }
    return true;
  }

  dispose(): void {
    this.disposed = true;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "page closed");
      this.ws = null;
    }
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.backoff.attempts === 0) this.handlers.onState({ kind: "connecting" });
    let url: string;
    try {
      url = await this.url();
    } catch {
      this.scheduleRetry(1006);
      return;
    }
    if (this.disposed) return;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.acks = new Acks();
    ws.onopen = () => {
      // An ack of nothing: this page acks, so the window applies from its first frame on.
      ws.send(JSON.stringify({ type: "ack", bytes: 0 }));
      this.handlers.onOpen();
      this.handlers.onState({ kind: "connected" });
      this.pingTimer = window.setInterval(() => this.send({ type: "ping" }), PING_INTERVAL_MS);
    };
    ws.onmessage = (event: MessageEvent<unknown>) => this.receive(ws, event.data);
    ws.onclose = (event: CloseEvent) => {
      window.clearInterval(this.pingTimer);
      this.ws = null;
      if (this.disposed) return;
      const outcome = closeOutcome(event.code, event.reason, this.exitCode);
      if (outcome === "retry") {
        this.scheduleRetry(event.code);
        return;
      }
      this.finished = true;
      if (outcome === "ask") {
        void this.handlers.whyClosed(event.reason).then((state) => {
          if (!this.disposed) this.handlers.onState(state);
        });
      } else {
        this.handlers.onState(outcome);
      }
    };
  }

  private receive(ws: WebSocket, data: unknown): void {
    if (data instanceof ArrayBuffer) {
      let frames: Uint8Array[];
      try {
        frames = decodeFrames(data);
      } catch (error) {
        const reason = error instanceof FrameError ? error.message : "undecodable frame";
        this.finished = true;
        ws.onclose = null;
        ws.close(1003, reason.slice(0, 120));
        this.handlers.onState({ kind: "protocol-error", reason });
        return;
      }
      // Output flowing means the connection is healthy: the next drop starts a fresh backoff.
      this.backoff.reset();
      const acks = this.acks;
      for (const frame of frames) {
        this.handlers.onOutput(frame, () => {
          const total = acks.wrote(frame.length);
          // Only on the socket it counts for: a write finished after a reconnection is not
          // the new socket's.
          if (total !== null && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ack", bytes: total }));
        });
      }
      return;
    }
    if (typeof data !== "string") return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return; // a server bug; nothing useful to do with it
    }
    if (isRecord(message) && message["type"] === "exit") {
      const code = message["code"];
      this.exitCode = typeof code === "number" ? code : null;
    }
  }

  private scheduleRetry(code: number): void {
    const delayMs = this.backoff.next(retryCap(code));
    this.handlers.onState({ kind: "reconnecting", attempt: this.backoff.attempts, delayMs, code });
    this.retryTimer = window.setTimeout(() => void this.connect(), delayMs);
  }
}
