/**
 * The one retry policy of the web app (the terminal's socket, the live session lists): capped
 * exponential backoff with jitter, so clients dropped together do not all come back together.
 * Callers choose only the cap: how long a server that is back may wait for them.
 */

export const BACKOFF_START_MS = 500;
export const BACKOFF_MAX_MS = 10_000;
/** Each delay is cut by up to this fraction at random (never raised: the cap holds). */
export const BACKOFF_JITTER = 0.2;

/**
 * Delay before retry number `attempt` (0-based): 0.5 s doubling to `capMs` (10 s unless
 * told), less the jitter.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, capMs: number = BACKOFF_MAX_MS): number {
  const exponent = Math.min(Math.max(attempt, 0), 16);
  const ceiling = Math.min(capMs, BACKOFF_START_MS * 2 ** exponent);
  return Math.round(ceiling * (1 - BACKOFF_JITTER * random()));
}

/** The attempts of one retry loop: `next()` gives the next delay, `reset()` after a success. */
export class Backoff {
  private count = 0;

  /** `capMs`: the longest delay (before jitter); `random` is for tests. */
  constructor(
    private readonly capMs: number = BACKOFF_MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Retries scheduled since the last reset. */
  get attempts(): number {
    return this.count;
  }

  /** The next delay; `capMs` overrides the loop's cap for this one (a retry that must wait longer). */
  next(capMs: number = this.capMs): number {
    const delay = backoffDelay(this.count, this.random, capMs);
    this.count += 1;
    return delay;
  }

  reset(): void {
    this.count = 0;
  }
}
