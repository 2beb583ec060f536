/** Turning the server's numbers and times into words. */

import type { Recording, Session, Timestamp } from "./types";

/** A server time (ISO string, or seconds or milliseconds since the epoch) as a Date. */
export function toDate(value: Timestamp | undefined): Date | null {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "3 h ago", or a date. */
export function relativeTime(value: Timestamp | undefined, now: number = Date.now()): string {
  const date = toDate(value);
  if (!date) return "—";
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return date.toLocaleString();
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function bytes(count: number | null | undefined): string {
  if (count === null || count === undefined || !Number.isFinite(count)) return "—";
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The command line of a session, shown the way the user typed it. */
export function commandLine(command: string | null | undefined, args: readonly string[] = []): string {
  if (!command) return "";
  // The form sends `/bin/sh -c LINE`: show LINE.
  if (command === "/bin/sh" && args.length === 2 && args[0] === "-c") return args[1] ?? "";
  return [command, ...args].map(quote).join(" ");
}

/** A recording's command: from its argv, like a session's; else the line the server sent. */
export function recordingCommand(recording: Recording): string {
  const [command, ...args] = recording.argv ?? [];
  return command === undefined ? (recording.command ?? "") : commandLine(command, args);
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function sessionTitle(session: Session): string {
  return session.name || commandLine(session.command, session.args) || session.id;
}

export function sessionStatus(session: Session): string {
  if (session.status === "running") return "running";
  return session.exitCode === null ? "exited" : `exited (code ${session.exitCode})`;
}
