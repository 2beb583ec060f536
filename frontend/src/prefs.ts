/**
 * What this browser remembers across tabs and reloads (localStorage): the terminal's font size,
 * whether the user turned notifications off, and the name of the node serving the page. Storage that is unavailable (a private
 * window that refuses it) only means the defaults come back.
 */

export const FONT_MIN = 8;
export const FONT_MAX = 28;
const FONT_KEY = "vibetunnel.fontSize";
const NOTIFY_KEY = "vibetunnel.notify";

/** A stored font size, if it is one (whole px in FONT_MIN..FONT_MAX), else `fallback`. */
export function parseFontSize(stored: string | null, fallback: number): number {
  const n = stored === null ? NaN : Number(stored);
  return Number.isInteger(n) && n >= FONT_MIN && n <= FONT_MAX ? n : fallback;
}

/** `size` moved by `step` px, kept within FONT_MIN..FONT_MAX. */
export function stepFontSize(size: number, step: number): number {
  return Math.min(FONT_MAX, Math.max(FONT_MIN, Math.round(size + step)));
}

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // not remembered: harmless
  }
}

export function loadFontSize(fallback: number): number {
  return parseFontSize(read(FONT_KEY), fallback);
}

export function saveFontSize(size: number): void {
  write(FONT_KEY, String(size));
}

/** Whether the user turned notifications off here (they are on once the browser allows them). */
export function notificationsMuted(): boolean {
  return read(NOTIFY_KEY) === "off";
}

export function muteNotifications(muted: boolean): void {
  write(NOTIFY_KEY, muted ? "off" : "on");
}

const NODE_KEY = "vibetunnel.node";

/**
 * The name of the node that serves this page (this origin), as last learnt: from GET /api/health
 * when it names the node, a node list of one, or a session this page created without naming a
 * node. GET /api/nodes does not say which node answers it, so a cluster's list needs this to
 * put the own node first.
 */
export function rememberedNode(): string | null {
  return read(NODE_KEY) || null;
}

export function rememberNode(name: string): void {
  if (name && read(NODE_KEY) !== name) write(NODE_KEY, name);
}
