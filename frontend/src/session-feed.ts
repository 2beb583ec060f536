/**
 * One session, live (GET /api/sessions/{id}/events), for as long as the tab is visible: how a
 * terminal page learns the size another device gave the session. A hidden tab lets go of its
 * stream (browsers allow only six HTTP/1.1 connections per server, shared by every tab) and
 * takes a new one when it is shown again, whose first event is the session as it is then.
 */

import { Backoff } from "./backoff";
import { ApiError } from "./http";
import { asSession, type Session } from "./types";

export interface SessionFeedHandlers {
  /** The session now (at once, then after each change to it). */
  onSession(session: Session): void;
  /** The session is gone (deleted, or unknown to the server): the feed has stopped. */
  onGone(): void;
}

export class SessionFeed {
  private source: EventSource | null = null;
  private timer: number | undefined;
  private stopped = false;
  // The default cap (10 s): a stream that keeps failing while GET works must not spend the
  // rate limit; the page wakes the feed when its socket reconnects anyway.
  private readonly retry = new Backoff();
  private readonly onVisibility = (): void => this.wake();

  constructor(
    private readonly url: () => Promise<string>,
    /** GET the session (to learn why the stream failed: a 404 is "gone"). */
    private readonly fetchSession: () => Promise<Session>,
    private readonly handlers: SessionFeedHandlers,
  ) {}

  start(): void {
    document.addEventListener("visibilitychange", this.onVisibility);
    this.wake();
  }

  /** Open the stream now if the tab is visible and it is not open (or waiting to retry). */
  wake(): void {
    if (this.stopped) return;
    if (document.visibilityState !== "visible") {
      this.close();
      return;
    }
    if (this.source !== null) return;
    window.clearTimeout(this.timer);
    this.timer = undefined;
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.close();
  }

  private close(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
    this.source?.close();
    this.source = null;
  }

  private async open(): Promise<void> {
    let url: string;
    try {
      url = await this.url();
    } catch {
      this.later();
      return;
    }
    if (this.stopped || this.source !== null || document.visibilityState !== "visible") return;
    const source = new EventSource(url);
    this.source = source;
    source.onmessage = (event: MessageEvent<string>) => {
      this.retry.reset();
      let session: Session | null = null;
      try {
        session = asSession(JSON.parse(event.data));
      } catch {
        // not JSON: a server bug; the next event will do
      }
      if (session !== null) this.handlers.onSession(session);
    };
    source.addEventListener("gone", () => this.gone());
    source.onerror = () => {
      if (this.source !== source) return;
      this.close();
      // A plain request says why: a 404 is the end, anything else is tried again later.
      this.fetchSession().then(
        (session) => {
          if (this.stopped) return;
          this.handlers.onSession(session);
          this.later();
        },
        (error: unknown) => {
          if (this.stopped) return;
          if (error instanceof ApiError && error.status === 404) this.gone();
          else this.later();
        },
      );
    };
  }

  private later(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, this.retry.next());
  }

  private gone(): void {
    this.stop();
    this.handlers.onGone();
  }
}
