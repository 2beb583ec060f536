/** `/recordings`: the recorded sessions, played in the page with asciinema-player. */

import type { AppContext, Page } from "./app-context";
import { errorBanner, topBar } from "./chrome";
import { h, replaceChildren } from "./dom";
import { bytes, duration, recordingCommand, relativeTime } from "./format";
import { ApiError } from "./http";
import type { Recording } from "./types";

interface Player {
  dispose(): void;
}

/**
 * Height over width of a terminal of `size` ("COLSxROWS") as the player draws it (cells about
 * 0.6 em wide and 1.33 em tall); 80x24 when the size is unknown.
 */
export function screenRatio(size: string | number | null | undefined): number {
  const match = /^(\d+)x(\d+)$/.exec(String(size ?? ""));
  const cols = match ? Number(match[1]) : 80;
  const rows = match ? Number(match[2]) : 24;
  return cols > 0 && rows > 0 ? (rows * 1.333) / (cols * 0.6) : (24 * 1.333) / (80 * 0.6);
}

export function mountRecordingsPage(root: HTMLElement, ctx: AppContext): Page {
  document.title = "Recordings · VibeTunnel";
  const error = errorBanner();
  const list = h("ul", { class: "cards", "aria-label": "Recordings" });
  const empty = h("p", { class: "empty", hidden: true }, "No recordings yet: every session is recorded as it runs.");
  const playerTitle = h("h2", {}, "");
  const playerHost = h("div", { class: "player-host" });
  const closeButton = h("button", { type: "button" }, "Close player");
  const playerPanel = h(
    "section",
    { class: "card player", "aria-label": "Player", hidden: true },
    h("div", { class: "heading" }, playerTitle, closeButton),
    playerHost,
  );
  replaceChildren(
    root,
    topBar(ctx, "recordings"),
    h("main", { class: "content" }, h("div", { class: "heading" }, h("h1", {}, "Recordings")), error.el, playerPanel, list, empty),
  );

  let disposed = false;
  let player: Player | null = null;
  const closePlayer = (): void => {
    player?.dispose();
    player = null;
    playerHost.replaceChildren();
    playerPanel.hidden = true;
  };
  closeButton.addEventListener("click", closePlayer);

  const report = (e: unknown): void => {
    if (disposed || (e instanceof ApiError && e.status === 401)) return;
    error.show(e instanceof Error ? e.message : String(e));
  };

  async function load(): Promise<void> {
    try {
      const recordings = await ctx.api.listRecordings();
      if (disposed) return;
      const sorted = [...recordings].sort((a, b) => String(b.startedAt ?? "").localeCompare(String(a.startedAt ?? "")));
      list.replaceChildren(...sorted.map(card));
      empty.hidden = recordings.length > 0;
    } catch (e) {
      report(e);
    }
  }

  function card(recording: Recording): HTMLLIElement {
    const command = recordingCommand(recording);
    const title = recording.name || command || recording.id;
    const play = h("button", { type: "button", class: "primary" }, "Play");
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    play.addEventListener("click", () => {
      play.disabled = true;
      void playRecording(recording, title).finally(() => {
        play.disabled = false;
      });
    });
    remove.addEventListener("click", () => {
      remove.disabled = true;
      ctx.api
        .deleteRecording(recording.id)
        .then(() => load(), report)
        .finally(() => {
          remove.disabled = false;
        });
    });
    const item = (label: string, value: string): HTMLElement => h("div", {}, h("dt", {}, label), h("dd", {}, value));
    const size = recording.size === null || recording.size === undefined ? "—" : String(recording.size);
    return h(
      "li",
      { class: "card recording", "data-id": recording.id },
      h("div", { class: "card-head" }, h("span", { class: "card-title" }, title)),
      command ? h("code", { class: "command" }, command) : null,
      h(
        "dl",
        { class: "meta" },
        item("Started", relativeTime(recording.startedAt)),
        item("Duration", duration(recording.duration)),
        item("Size", size),
        item("Data", bytes(recording.bytes)),
        item("Exit code", recording.exitCode === null || recording.exitCode === undefined ? "—" : String(recording.exitCode)),
      ),
      h("div", { class: "actions" }, play, remove),
    );
  }

  async function playRecording(recording: Recording, title: string): Promise<void> {
    try {
      // The file needs the Authorization header, so fetch it here and hand the player the text.
      const [text, { create }] = await Promise.all([ctx.api.recordingText(recording.id), import("asciinema-player")]);
      if (disposed) return;
      closePlayer();
      playerTitle.textContent = title;
      playerPanel.hidden = false;
      // The player fits the screen both ways: as wide as the page, and no taller than the window.
      playerHost.style.setProperty("--ratio", String(screenRatio(recording.size)));
      player = create({ data: text }, playerHost, {
        autoPlay: true,
        fit: "both",
        idleTimeLimit: 2,
        terminalFontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
      });
      playerPanel.scrollIntoView({ block: "nearest" });
      error.show("");
    } catch (e) {
      report(e);
    }
  }

  void load();
  return {
    dispose(): void {
      disposed = true;
      closePlayer();
    },
  };
}
