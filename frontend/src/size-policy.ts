/**
 * Who sets a session's size when several devices show it (docs/decisions.md, "Web app on
 * several devices"). The client the user types in, or asks to fit, *drives*: it fits the
 * session to its window and sends resize messages. Every other client *watches*: it renders
 * the session at the session's size and never resizes it. A driver that sees the session take
 * a size it did not send (another device took over) goes back to watching.
 *
 * Pure: sizes in, decisions out; the terminal page does the DOM and the sending.
 */

export interface Size {
  cols: number;
  rows: number;
}

export type SizeMode = "watch" | "drive";

export const sameSize = (a: Size | null, b: Size | null): boolean =>
  a !== null && b !== null && a.cols === b.cols && a.rows === b.rows;

/** How long a resize may take to come back from the server before it counts as refused. */
export const ECHO_WAIT_MS = 1500;

export class SizePolicy {
  private current: SizeMode = "watch";
  /** The session's size, as the server last said. */
  private heardSize: Size | null = null;
  /** The size this client fitted to its window while driving. */
  private fittedSize: Size | null = null;
  /** A resize sent and not yet seen back from the server. */
  private pending: Size | null = null;
  /** The server kept its size after our resize (a vt session): typing no longer resizes. */
  private kept = false;

  constructor(private readonly readOnly: boolean) {}

  get mode(): SizeMode {
    return this.current;
  }

  /** The session's size as last heard from the server (null before the first word). */
  get session(): Size | null {
    return this.heardSize;
  }

  /** Whether a watcher's typing may take the size (false for read-only and kept sizes). */
  get canTakeOver(): boolean {
    return !this.readOnly && !this.kept;
  }

  /**
   * The user typed here (`explicit` false) or asked to fit (true). Returns true when this
   * client now drives and should fit its window (a Fit press always does, to refit).
   */
  drive(explicit: boolean): boolean {
    if (this.readOnly) return false;
    if (explicit) this.kept = false;
    else if (this.kept || this.current === "drive") return false;
    this.current = "drive";
    return true;
  }

  /**
   * The page fitted its window to `size` while driving: the resize to send, or null when
   * there is nothing to say (not driving, or the session already has that size).
   */
  fitted(size: Size): Size | null {
    if (this.current !== "drive") return null;
    this.fittedSize = size;
    const known = this.pending ?? this.heardSize;
    if (sameSize(known, size)) return null;
    this.pending = size;
    return size;
  }

  /**
   * The server says the session is `size` now. Returns true when this client must switch to
   * watching (another device resized the session after this one).
   */
  heard(size: Size): boolean {
    this.heardSize = size;
    if (this.current !== "drive") return false;
    if (this.pending !== null) {
      // News older than our resize carries the old size: wait for ours to come back.
      if (sameSize(size, this.pending)) this.pending = null;
      return false;
    }
    if (this.fittedSize === null || sameSize(size, this.fittedSize)) return false;
    this.current = "watch";
    return true;
  }

  /**
   * ECHO_WAIT_MS after sending a resize, with the session's size as the server says it now.
   * Returns true when the server kept its own size (our resize was refused, as for a session
   * run by `vt`): this client then watches, and typing no longer tries to resize.
   */
  echoTimedOut(size: Size): boolean {
    this.heardSize = size;
    if (this.pending === null) return false;
    const refused = !sameSize(size, this.pending);
    this.pending = null;
    if (!refused || this.current !== "drive") return false;
    this.current = "watch";
    this.kept = true;
    return true;
  }

  /** Whether a resize is waiting to be seen back. */
  get awaitingEcho(): boolean {
    return this.pending !== null;
  }
}

/** Font sizes (px) a watcher may shrink to, to show a larger session whole. */
export const MIN_WATCH_FONT = 5;

/**
 * The font size that shows a session of `size` whole in a window that fits `fits` cells at
 * `font` px: the user's own size when it fits, else scaled down (in half pixels) no lower
 * than MIN_WATCH_FONT, below which the page scrolls.
 */
export function watchFontSize(font: number, fits: Size, size: Size): number {
  const scale = Math.min(1, fits.cols / size.cols, fits.rows / size.rows);
  if (scale >= 1) return font;
  return Math.max(MIN_WATCH_FONT, Math.floor(font * scale * 2) / 2);
}
