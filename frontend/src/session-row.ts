/** One session's card on the list: title, status, details, and Open / Rename / Kill or Delete. */

import { h, setText } from "./dom";
import { commandLine, relativeTime, sessionStatus, sessionTitle } from "./format";
import type { Session } from "./types";

/** How many tabs or devices have a session open: "none", "1", "3". */
export function clientsText(clients: number): string {
  return clients === 0 ? "none" : String(clients);
}

export class SessionRow {
  readonly el: HTMLLIElement;
  private title: HTMLAnchorElement;
  private badge: HTMLElement;
  private command: HTMLElement;
  private size: HTMLElement;
  private clients: HTMLElement;
  private started: HTMLElement;
  private endedItem: HTMLElement;
  private ended: HTMLElement;
  private activityItem: HTMLElement;
  private activity: HTMLElement;
  private programTitle: HTMLElement;
  private lost: HTMLElement;
  private offlineNote: HTMLElement;
  private cwd: HTMLElement;
  private action: HTMLButtonElement;
  private confirm: HTMLElement;
  private cancel: HTMLButtonElement;
  private session: Session;
  /** Its node is offline (see `update`). */
  private offline = false;

  private renameForm: HTMLFormElement;
  private renameInput: HTMLInputElement;
  private renameButton: HTMLButtonElement;

  constructor(
    session: Session,
    act: (session: Session) => Promise<void>,
    rename: (session: Session, name: string) => Promise<void>,
  ) {
    this.session = session;
    const href = `/sessions/${encodeURIComponent(session.id)}`;
    const titleId = `session-title-${session.id}`;
    this.title = h("a", { href, class: "card-title", id: titleId });
    this.badge = h("span", { class: "badge" });
    this.command = h("code", { class: "command" });
    this.size = h("dd", {});
    this.clients = h("dd", {});
    this.started = h("dd", {});
    this.ended = h("dd", {});
    this.activity = h("dd", {});
    this.programTitle = h("p", { class: "program-title", title: "The title the program set" });
    this.lost = h("p", { class: "lost", role: "note" });
    this.offlineNote = h("p", { class: "offline-note", role: "note", hidden: true });
    this.cwd = h("dd", { class: "path" });
    const inputId = `rename-${session.id}`;
    this.renameInput = h("input", { id: inputId, type: "text", maxlength: "256", required: true, autocomplete: "off" });
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const keep = h("button", { type: "button" }, "Cancel");
    this.renameForm = h(
      "form",
      { class: "rename", hidden: true, "aria-label": "Rename" },
      h("label", { for: inputId }, "New name"),
      this.renameInput,
      save,
      keep,
    );
    this.renameButton = h("button", { type: "button", "aria-describedby": titleId }, "Rename");
    const renaming = (open: boolean): void => {
      this.renameForm.hidden = !open;
      this.renameButton.hidden = open || this.offline;
      if (open) {
        this.renameInput.value = this.session.name;
        this.renameInput.select();
      }
    };
    this.renameButton.addEventListener("click", () => renaming(true));
    keep.addEventListener("click", () => {
      renaming(false);
      this.renameButton.focus();
    });
    this.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = this.renameInput.value.trim();
      if (!name) return;
      save.disabled = true;
      void rename(this.session, name).finally(() => {
        save.disabled = false;
        renaming(false);
      });
    });
    const run = (): void => {
      this.action.disabled = true;
      void act(this.session).finally(() => {
        this.action.disabled = false;
      });
    };
    // "Kill" of *which* session, for screen readers: the button is described by the title.
    this.action = h("button", { type: "button", class: "danger", "aria-describedby": titleId });
    // Killing ends a program that may hold work: it is asked twice. Deleting an exited
    // session loses nothing (its recording stays), so it is not.
    const yes = h("button", { type: "button", class: "danger", "aria-describedby": titleId }, "Yes, kill it");
    this.cancel = h("button", { type: "button" }, "Cancel");
    this.confirm = h(
      "div",
      { class: "confirm", role: "group", "aria-label": "Confirm kill", hidden: true },
      h("span", {}, "End its program? (SIGHUP, then SIGTERM, then SIGKILL)"),
      yes,
      this.cancel,
    );
    this.action.addEventListener("click", () => {
      if (this.session.status !== "running") {
        run();
        return;
      }
      this.asking(true);
      this.cancel.focus();
    });
    yes.addEventListener("click", () => {
      this.asking(false);
      run();
    });
    this.cancel.addEventListener("click", () => {
      this.asking(false);
      this.action.focus();
    });
    const item = (label: string, value: HTMLElement): HTMLElement => h("div", {}, h("dt", {}, label), value);
    this.endedItem = item("Ended", this.ended);
    this.activityItem = item("Last output", this.activity);
    this.el = h(
      "li",
      { class: "card session", "data-id": session.id },
      h("div", { class: "card-head" }, this.title, this.badge),
      this.programTitle,
      this.command,
      this.lost,
      this.offlineNote,
      h(
        "dl",
        { class: "meta" },
        item("Size", this.size),
        item("Viewers", this.clients),
        item("Started", this.started),
        this.activityItem,
        this.endedItem,
        item("Directory", this.cwd),
      ),
      h(
        "div",
        { class: "actions" },
        h("a", { href, class: "button", "aria-describedby": titleId }, "Open"),
        this.renameButton,
        this.action,
      ),
      this.renameForm,
      this.confirm,
    );
  }

  private asking(open: boolean): void {
    this.confirm.hidden = !open;
    this.action.hidden = open || this.offline;
  }

  /**
   * Show `session`. `offline`: its node is offline, so this is its last known state; it stays
   * listed and can be opened (the socket closes with the node's reason), not renamed or ended.
   */
  update(session: Session, offline = false): void {
    this.session = session;
    this.offline = offline;
    const running = session.status === "running";
    setText(this.title, sessionTitle(session));
    setText(this.badge, offline ? `${sessionStatus(session)} · last known` : sessionStatus(session));
    this.badge.className = `badge ${offline ? "offline" : running ? "running" : "exited"}`;
    this.el.classList.toggle("offline", offline);
    this.offlineNote.hidden = !offline;
    setText(this.offlineNote, offline ? `Node ${session.node ?? ""} is offline: this is the session as last seen.` : "");
    if (offline) {
      this.asking(false);
      this.renameForm.hidden = true;
    }
    this.renameButton.hidden = offline || !this.renameForm.hidden;
    setText(this.command, commandLine(session.command, session.args));
    setText(this.size, `${session.cols}×${session.rows}`);
    setText(this.clients, clientsText(session.clients));
    setText(this.started, relativeTime(session.createdAt));
    this.activityItem.hidden = !session.activityAt;
    setText(this.activity, relativeTime(session.activityAt ?? null));
    this.programTitle.hidden = !session.title;
    setText(this.programTitle, session.title ?? "");
    this.lost.hidden = !session.lost;
    setText(this.lost, session.lost ?? "");
    this.endedItem.hidden = running;
    setText(this.ended, relativeTime(session.exitedAt));
    setText(this.cwd, session.cwd || "—");
    setText(this.action, running ? "Kill" : "Delete");
    this.action.title = running ? "End the process and remove the session" : "Remove the session from the list";
    if (!running && !this.confirm.hidden) this.asking(false);
    this.action.hidden = offline || !this.confirm.hidden;
  }
}
