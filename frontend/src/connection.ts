/**
 * One terminal's WebSocket: frames in, JSON messages out, keep-alive pings, and the close-code
 * policy of protocol.md (retry with backoff on 1001/1006/1011, stop on 1000/1003/1008).
 * No DOM here: the terminal page turns states into words.
 */

import { decodeFrames, FrameError } from "./framing";
import { isRecord } from "./http";
import type { ClientMessage } from "./types";

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "reconnecting"; attempt: number; delayMs: number; code: number }
  | { kind: "ended"; exitCode: number | null; reason: string }
  | { kind: "unauthorized"; reason: string }
  | { kind: "protocol-error"; reason: string };

export interface ConnectionHandlers {
  /** A (re)connection opened: the server is about to replay the current screen. */
  onOpen(): void;
  onOutput(data: Uint8Array): void;
  onState(state: ConnectionState): void;
}

export const PING_INTERVAL_MS = 30_000;
export const BACKOFF_START_MS = 500;
export const BACKOFF_MAX_MS = 10_000;

/** Delay before reconnection attempt number `attempt` (0-based): 0.5 s doubling to 10 s. */
export function backoffDelay(attempt: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.min(attempt, 16));
}

/**
 * What a close means. `exitCode` is the code of the exit message received before the close,
 * if any. Returns "retry", or the final state to show.
 */
export function closeOutcome(code: number, reason: string, exitCode: number | null): "retry" | ConnectionState {
  switch (code) {
    case 1000:
      return { kind: "ended", exitCode, reason };
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

export class TerminalConnection {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private exitCode: number | null = null;
  private pingTimer: number | undefined;
  private retryTimer: number | undefined;
  private disposed = false;
  private finished = false;

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
    this.ws.send(JSON.stringify(message));
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
    if (this.attempt === 0) this.handlers.onState({ kind: "connecting" });
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
    ws.onopen = () => {
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
      } else {
        this.finished = true;
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
      this.attempt = 0;
      for (const frame of frames) this.handlers.onOutput(frame);
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
    const delayMs = backoffDelay(this.attempt);
    this.attempt += 1;
    this.handlers.onState({ kind: "reconnecting", attempt: this.attempt, delayMs, code });
    this.retryTimer = window.setTimeout(() => void this.connect(), delayMs);
  }
}
