/**
 * Search in the terminal's scrollback (xterm's search addon): a box above the terminal, opened
 * by its button or Ctrl+Shift+F. Enter finds the match above (older output: the newest is at
 * the bottom), Shift+Enter the one below, Escape closes and gives the keys back to the terminal.
 */

import type { ISearchOptions, SearchAddon } from "@xterm/addon-search";
import { h } from "./dom";

const DECORATIONS: NonNullable<ISearchOptions["decorations"]> = {
  matchBackground: "#5a4a12",
  matchBorder: "#d29922",
  matchOverviewRuler: "#d29922",
  activeMatchBackground: "#2f81f7",
  activeMatchBorder: "#8bd5ff",
  activeMatchColorOverviewRuler: "#8bd5ff",
};

/** "3 of 12", "No matches", or "" for an empty query. */
export function matchCount(query: string, index: number, count: number): string {
  if (query === "") return "";
  if (count === 0) return "No matches";
  // The addon stops counting past its highlight limit and reports the index as -1 then.
  return index >= 0 ? `${index + 1} of ${count}` : `${count}+ matches`;
}

export class SearchBar {
  readonly el: HTMLFormElement;
  private readonly input: HTMLInputElement;
  private readonly count: HTMLElement;
  private readonly caseButton: HTMLButtonElement;
  private caseSensitive = false;
  /** Told when the bar opens or closes (the page's button shows it). */
  onToggle: (open: boolean) => void = () => undefined;

  constructor(
    private readonly search: SearchAddon,
    private readonly done: () => void,
  ) {
    this.input = h("input", {
      type: "search",
      id: "term-search",
      name: "term-search",
      placeholder: "Search the scrollback",
      autocomplete: "off",
      spellcheck: "false",
      autocapitalize: "off",
      enterkeyhint: "search",
    });
    this.count = h("span", { class: "search-count", "aria-live": "polite" });
    const button = (label: string, text: string, press: () => void): HTMLButtonElement =>
      h("button", { type: "button", "aria-label": label, title: label, onclick: press }, text);
    this.caseButton = button("Match case", "Aa", () => {
      this.caseSensitive = !this.caseSensitive;
      this.caseButton.setAttribute("aria-pressed", String(this.caseSensitive));
      this.find("up", true);
    });
    this.caseButton.setAttribute("aria-pressed", "false");
    this.el = h(
      "form",
      { class: "term-search", role: "search", "aria-label": "Search the terminal", hidden: true },
      h("label", { for: "term-search", class: "visually-hidden" }, "Search the terminal"),
      this.input,
      this.count,
      this.caseButton,
      button("Match above", "↑", () => this.find("up")),
      button("Match below", "↓", () => this.find("down")),
      button("Close search", "✕", () => this.close()),
    );
    this.el.addEventListener("submit", (event) => {
      event.preventDefault();
      this.find("up");
    });
    this.input.addEventListener("input", () => this.find("up", true));
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close();
      } else if (event.key === "Enter" && event.shiftKey) {
        event.preventDefault();
        this.find("down");
      }
    });
    search.onDidChangeResults(({ resultIndex, resultCount }) => {
      this.count.textContent = matchCount(this.input.value, resultIndex, resultCount);
    });
  }

  get isOpen(): boolean {
    return !this.el.hidden;
  }

  open(): void {
    this.el.hidden = false;
    this.onToggle(true);
    this.input.focus();
    this.input.select();
  }

  close(): void {
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.search.clearDecorations();
    this.count.textContent = "";
    this.onToggle(false);
    this.done();
  }

  /** The match above (older) or below; `incremental` keeps the current match while typing. */
  private find(direction: "up" | "down", incremental = false): void {
    const query = this.input.value;
    if (query === "") {
      this.search.clearDecorations();
      this.count.textContent = "";
      return;
    }
    const options: ISearchOptions = { caseSensitive: this.caseSensitive, incremental, decorations: DECORATIONS };
    const found = direction === "up" ? this.search.findPrevious(query, options) : this.search.findNext(query, options);
    if (!found) this.count.textContent = "No matches";
  }
}
