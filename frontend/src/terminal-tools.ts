/**
 * The terminal page's furniture around xterm.js: the tools in its header (Fit, text size, copy,
 * search, notifications, full screen), the overlay that says the connection is lost, and a
 * short-lived note ("Copied"). DOM only; the page decides what each press does.
 */

import { h } from "./dom";
import { icon, type IconName } from "./icons";

export interface ToolActions {
  fit(): void;
  fontSmaller(): void;
  fontLarger(): void;
  copy(): void;
  search(): void;
  notifications(): void;
  fullscreen(): void;
}

export interface Tools {
  el: HTMLElement;
  fit: HTMLButtonElement;
  search: HTMLButtonElement;
  notify: HTMLButtonElement;
  fullscreen: HTMLButtonElement;
}

export function toolsBar(actions: ToolActions, opts: { readOnly: boolean; notifications: boolean }): Tools {
  const button = (label: string, content: string | IconName, press: () => void, text = false): HTMLButtonElement =>
    h(
      "button",
      { type: "button", class: "tool", "aria-label": label, title: label, onclick: press },
      text ? content : icon(content as IconName),
    );
  /** A button whose short text ("A+") is not its name: readers get the words, not the glyphs. */
  const glyph = (label: string, text: string, press: () => void): HTMLButtonElement =>
    h(
      "button",
      { type: "button", class: "tool", title: label, onclick: press },
      h("span", { "aria-hidden": "true" }, text),
      h("span", { class: "visually-hidden" }, label),
    );
  const fit = button("Fit the session to this window (resizes it for every device)", "Fit", actions.fit, true);
  fit.setAttribute("aria-pressed", "false");
  fit.hidden = opts.readOnly;
  const search = button("Search (Ctrl+Shift+F)", "search", actions.search);
  search.setAttribute("aria-expanded", "false");
  search.setAttribute("aria-controls", "term-search-bar");
  const notify = button("Notify me of bells and exit", "bell", actions.notifications);
  notify.setAttribute("aria-pressed", "false");
  notify.hidden = !opts.notifications;
  const fullscreen = button("Full screen", "fullscreen", actions.fullscreen);
  fullscreen.setAttribute("aria-pressed", "false");
  fullscreen.hidden = !document.fullscreenEnabled;
  const el = h(
    "div",
    { class: "term-tools", role: "toolbar", "aria-label": "Terminal tools" },
    fit,
    glyph("Smaller text", "A−", actions.fontSmaller),
    glyph("Larger text", "A+", actions.fontLarger),
    button("Copy the selection, or the screen", "copy", actions.copy),
    search,
    notify,
    fullscreen,
  );
  // Keep the focus where it was (the terminal, and with it the phone's keyboard) on a tap.
  for (const b of el.querySelectorAll("button")) b.addEventListener("mousedown", (event) => event.preventDefault());
  return { el, fit, search, notify, fullscreen };
}

/** The overlay over a terminal whose connection is lost. */
export class ConnectionOverlay {
  readonly el: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly refusedNote: HTMLElement;

  constructor(retryNow: () => void) {
    this.detail = h("p", { class: "overlay-detail" });
    this.refusedNote = h(
      "p",
      { class: "overlay-refused", role: "alert", hidden: true },
      "Not sent: what you type while disconnected is dropped, not kept for later.",
    );
    this.el = h(
      "div",
      { class: "term-overlay", hidden: true },
      h(
        "div",
        { class: "overlay-box" },
        h("p", { class: "overlay-title" }, "Disconnected"),
        this.detail,
        this.refusedNote,
        h("button", { type: "button", class: "primary", onclick: retryNow }, "Reconnect now"),
      ),
    );
  }

  show(detail: string): void {
    this.detail.textContent = detail;
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
    this.refusedNote.hidden = true;
  }

  /** Keys were typed while disconnected: say they were not sent (again, visibly, each time). */
  refused(): void {
    if (this.el.hidden) return;
    this.refusedNote.hidden = false;
    this.refusedNote.classList.remove("flash");
    void this.refusedNote.offsetWidth; // restart the animation
    this.refusedNote.classList.add("flash");
  }
}

/** A note that shows for a moment ("Copied 3 lines"), read out by screen readers. */
export class Toast {
  readonly el = h("p", { class: "toast", role: "status", hidden: true });
  private timer: number | undefined;

  show(text: string, ms = 2000): void {
    this.el.textContent = text;
    this.el.hidden = false;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.el.hidden = true;
    }, ms);
  }

  dispose(): void {
    window.clearTimeout(this.timer);
  }
}
