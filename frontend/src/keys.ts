/**
 * The keys bar for phones, whose keyboards lack Esc, Tab, Ctrl, arrows, paging keys and hide
 * `| / ~ - _` on other layers (the page hides the bar where there is a real keyboard). "Ctrl"
 * is sticky: it arms, and the next key (typed or tapped) is sent as its control character.
 */

import { h } from "./dom";

/** The control character for `data` when Ctrl is held, or `data` itself when there is none. */
export function withCtrl(data: string): string {
  if (data.length !== 1) {
    // Arrows: xterm's modifier form (CSI 1;5 X), from either cursor-key mode.
    const arrow = /^\x1b[[O]([ABCD])$/.exec(data);
    return arrow ? `\x1b[1;5${arrow[1]}` : data;
  }
  const code = data.charCodeAt(0);
  if (code >= 0x61 && code <= 0x7a) return String.fromCharCode(code - 0x60); // a-z
  if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code - 0x40); // @ A-Z [ \ ] ^ _
  if (data === " " || data === "2") return "\x00";
  if (data === "?" || data === "8") return "\x7f";
  if (data >= "3" && data <= "7") return String.fromCharCode(code - 0x33 + 0x1b); // ^3..^7
  return data;
}

/** The four arrows, as the terminal's cursor-key mode wants them. */
export function arrowSequence(direction: "A" | "B" | "C" | "D", applicationMode: boolean): string {
  return applicationMode ? `\x1bO${direction}` : `\x1b[${direction}`;
}

/** Page Up/Down, Home and End, as xterm sends them (Home and End follow the cursor-key mode). */
export function navigationSequence(key: "PageUp" | "PageDown" | "Home" | "End", applicationMode: boolean): string {
  switch (key) {
    case "PageUp":
      return "\x1b[5~";
    case "PageDown":
      return "\x1b[6~";
    case "Home":
      return applicationMode ? "\x1bOH" : "\x1b[H";
    case "End":
      return applicationMode ? "\x1bOF" : "\x1b[F";
  }
}

/** Characters phone keyboards hide on a second or third layer, but shells use all the time. */
export const SYMBOL_KEYS = [
  ["|", "Vertical bar"],
  ["/", "Slash"],
  ["~", "Tilde"],
  ["-", "Hyphen"],
  ["_", "Underscore"],
] as const;

export interface KeysBarOptions {
  /** Send bytes to the session. */
  send(data: string): void;
  /** Whether the terminal wants application cursor keys (ESC O A rather than ESC [ A). */
  applicationCursor(): boolean;
  /** Give the focus back to the terminal (keeps the phone keyboard up). */
  focus(): void;
}

export class KeysBar {
  readonly el: HTMLElement;
  private ctrlButton: HTMLButtonElement;
  private ctrlArmed = false;

  constructor(private readonly opts: KeysBarOptions) {
    const key = (label: string, press: () => void, title?: string): HTMLButtonElement => {
      const button = h("button", { type: "button", class: "key", title }, label);
      // Keep the focus in the terminal: a tap on a key must not close the phone keyboard.
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", () => {
        press();
        this.opts.focus();
      });
      return button;
    };
    const arrow = (label: string, direction: "A" | "B" | "C" | "D", glyph: string): HTMLButtonElement => {
      const button = key(glyph, () => this.input(arrowSequence(direction, this.opts.applicationCursor())));
      button.setAttribute("aria-label", label);
      return button;
    };
    this.ctrlButton = key("Ctrl", () => this.setCtrl(!this.ctrlArmed), "Sticky Ctrl: the next key is sent with Ctrl");
    this.ctrlButton.setAttribute("aria-pressed", "false");
    const nav = (label: string, name: "PageUp" | "PageDown" | "Home" | "End", text: string): HTMLButtonElement => {
      const button = key("", () => this.input(navigationSequence(name, this.opts.applicationCursor())));
      // Shown short ("PgUp"), named in words for screen readers.
      if (text === label) button.textContent = text;
      else button.append(h("span", { "aria-hidden": "true" }, text), h("span", { class: "visually-hidden" }, label));
      return button;
    };
    this.el = h(
      "div",
      { class: "keys-bar", role: "toolbar", "aria-label": "Terminal keys" },
      h(
        "div",
        { class: "keys-row" },
        key("Esc", () => this.input("\x1b")),
        key("Tab", () => this.input("\t")),
        this.ctrlButton,
        arrow("Up", "A", "↑"),
        arrow("Down", "B", "↓"),
        arrow("Left", "D", "←"),
        arrow("Right", "C", "→"),
        key("Ctrl-C", () => {
          this.setCtrl(false);
          this.opts.send("\x03");
        }, "Interrupt (Ctrl-C)"),
      ),
      h(
        "div",
        { class: "keys-row" },
        nav("Page Up", "PageUp", "PgUp"),
        nav("Page Down", "PageDown", "PgDn"),
        nav("Home", "Home", "Home"),
        nav("End", "End", "End"),
        ...SYMBOL_KEYS.map(([symbol, name]) => {
          const button = key(symbol, () => this.input(symbol));
          button.setAttribute("aria-label", name);
          return button;
        }),
      ),
    );
  }

  /**
   * Route keyboard input through the bar, so an armed Ctrl applies to it.
   * Returns the bytes to send.
   */
  transform(data: string): string {
    if (!this.ctrlArmed) return data;
    this.setCtrl(false);
    return withCtrl(data);
  }

  private input(data: string): void {
    this.opts.send(this.transform(data));
  }

  private setCtrl(armed: boolean): void {
    this.ctrlArmed = armed;
    this.ctrlButton.setAttribute("aria-pressed", String(armed));
    this.ctrlButton.classList.toggle("armed", armed);
  }
}
