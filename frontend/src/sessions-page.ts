/** `/`: the live list of sessions, the "New session" form, and Kill / Delete per session. */

import type { AppContext, Page } from "./app-context";
import { Backoff } from "./backoff";
import { errorBanner, topBar } from "./chrome";
import { h, replaceChildren, setText } from "./dom";
import { commandLine, relativeTime, sessionStatus, sessionTitle } from "./format";
import { ApiError } from "./http";
import { asSessions, type NewSession, type Session } from "./types";

/** The body of POST /api/sessions for what the user typed in the form. */
export function newSessionBody(
  commandText: string,
  cwd: string,
  name: string,
  size: { cols: number; rows: number } | null,
): NewSession {
  const body: NewSession = {};
  const line = commandText.trim();
  // The shell parses the line, so pipes, quotes and variables work as typed.
  if (line) {
    body.command = "/bin/sh";
    body.args = ["-c", line];
  }
  if (cwd.trim()) body.cwd = cwd.trim();
  if (name.trim()) body.name = name.trim();
  if (size) {
    body.cols = size.cols;
    body.rows = size.rows;
  }
  return body;
}

/** A guess of the terminal size the new session will get in this window (refined on connect). */
function guessSize(): { cols: number; rows: number } {
  const narrow = window.innerWidth <= 600;
  const cell = narrow ? { w: 7.2, h: 15 } : { w: 8.4, h: 17 };
  const clamp = (n: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, Math.floor(n)));
  return {
    cols: clamp((window.innerWidth - 8) / cell.w, 20, 400),
    rows: clamp((window.innerHeight - (narrow ? 110 : 50)) / cell.h, 5, 200),
  };
}

export function mountSessionsPage(root: HTMLElement, ctx: AppContext): Page {
  document.title = "Sessions · VibeTunnel";
  const error = errorBanner();
  const list = h("ul", { class: "cards", "aria-label": "Sessions" });
  const empty = h("p", { class: "empty", hidden: true }, "No sessions yet. Start one with “New session”.");
  const form = newSessionForm(ctx, error.show);
  const newButton = h(
    "button",
    {
      type: "button",
      class: "primary",
      "aria-expanded": "false",
      "aria-controls": "new-session",
      onclick: () => form.toggle(),
    },
    "New session",
  );
  form.onToggle = (open) => newButton.setAttribute("aria-expanded", String(open));
  replaceChildren(
    root,
    topBar(ctx, "sessions"),
    h(
      "main",
      { class: "content" },
      h("div", { class: "heading" }, h("h1", {}, "Sessions"), newButton),
      error.el,
      form.el,
      list,
      empty,
    ),
  );

  const rows = new Map<string, SessionRow>();
  let timer: number | undefined;
  let disposed = false;
  let loaded = false;
  let shown: Session[] | null = null;
  let source: EventSource | null = null;
  const retry = new Backoff();
  /** The banner shows a failure to get the list (cleared by the next list), not an action's. */
  let listFailed = false;

  function listError(message: string): void {
    error.show(message);
    listFailed = true;
  }

  function listed(sessions: Session[]): void {
    render(sessions);
    if (listFailed) {
      error.show("");
      listFailed = false;
    }
  }

  /** Fetch the list once (after an action, or to learn why the live stream failed). */
  async function refresh(): Promise<void> {
    try {
      const sessions = await ctx.api.listSessions();
      if (!disposed) listed(sessions);
    } catch (e) {
      if (disposed) return;
      if (e instanceof ApiError && e.status === 401) return; // the app shows the sign-in page
      listError(e instanceof Error ? e.message : String(e));
    }
  }

  /** Live updates: the server pushes the whole list on every change, over one request. */
  async function live(): Promise<void> {
    const url = await ctx.api.eventsUrl();
    if (disposed) return;
    source = new EventSource(url);
    source.onmessage = (event: MessageEvent<string>) => {
      retry.reset();
      let sessions: Session[] | null = null;
      try {
        sessions = asSessions(JSON.parse(event.data));
      } catch {
        // not JSON: reported below like any other unexpected list
      }
      if (sessions === null) listError("The server sent an unexpected session list.");
      else listed(sessions);
    };
    source.onerror = () => {
      source?.close();
      source = null;
      if (disposed) return;
      // A plain request says why (a 401 leads to the sign-in page); then try again later.
      void refresh();
      timer = window.setTimeout(() => {
        timer = undefined;
        void live();
      }, retry.next());
    };
  }

  function render(sessions: Session[]): void {
    loaded = true;
    shown = sessions;
    const seen = new Set<string>();
    // Newest first, like a shell history.
    const sorted = [...sessions].sort((a, b) => String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
    let previous: Element | null = null;
    for (const session of sorted) {
      seen.add(session.id);
      let row = rows.get(session.id);
      if (!row) {
        row = new SessionRow(session, act, rename);
        rows.set(session.id, row);
      }
      row.update(session);
      const expected: Element | null = previous ? previous.nextElementSibling : list.firstElementChild;
      if (expected !== row.el) list.insertBefore(row.el, expected);
      previous = row.el;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.el.remove();
        rows.delete(id);
      }
    }
    empty.hidden = !loaded || sessions.length > 0;
  }

  async function rename(session: Session, name: string): Promise<void> {
    try {
      await ctx.api.renameSession(session.id, name);
      error.show("");
    } catch (e) {
      error.show(e instanceof Error ? e.message : String(e));
    }
    await refresh();
  }

  async function act(session: Session): Promise<void> {
    try {
      await ctx.api.deleteSession(session.id);
      error.show("");
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        error.show(e instanceof Error ? e.message : String(e));
        listFailed = false; // an action's error stays until the next action
      }
    }
    await refresh();
  }

  // "5 min ago" grows older without a change to the list: redraw the times now and then.
  const clock = window.setInterval(() => {
    if (shown !== null) render(shown);
  }, 30_000);
  // Back online, or back in front: try the live list now rather than after the backoff.
  const wake = (): void => {
    if (document.visibilityState !== "visible" || source !== null || timer === undefined || disposed) return;
    window.clearTimeout(timer);
    timer = undefined;
    void live();
  };
  document.addEventListener("visibilitychange", wake);
  window.addEventListener("online", wake);

  void refresh();
  void live();
  return {
    dispose(): void {
      disposed = true;
      source?.close();
      window.clearTimeout(timer);
      window.clearInterval(clock);
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("online", wake);
    },
  };
}

/** How many tabs or devices have a session open: "none", "1", "3". */
export function clientsText(clients: number): string {
  return clients === 0 ? "none" : String(clients);
}

class SessionRow {
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
  private cwd: HTMLElement;
  private action: HTMLButtonElement;
  private confirm: HTMLElement;
  private cancel: HTMLButtonElement;
  private session: Session;

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
      this.renameButton.hidden = open;
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
    this.action.hidden = open;
  }

  update(session: Session): void {
    this.session = session;
    const running = session.status === "running";
    setText(this.title, sessionTitle(session));
    setText(this.badge, sessionStatus(session));
    this.badge.className = `badge ${running ? "running" : "exited"}`;
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
  }
}

interface NewSessionForm {
  el: HTMLFormElement;
  toggle(): void;
  onToggle: (open: boolean) => void;
}

function newSessionForm(ctx: AppContext, showError: (message: string) => void): NewSessionForm {
  const field = (id: string, label: string, placeholder: string, autocomplete = "off"): [HTMLElement, HTMLInputElement] => {
    const input = h("input", { id, name: id, type: "text", placeholder, autocomplete, spellcheck: "false", autocapitalize: "off" });
    return [h("div", { class: "field" }, h("label", { for: id }, label), input), input];
  };
  const [commandField, command] = field("new-command", "Command", "default shell");
  const [cwdField, cwd] = field("new-cwd", "Working directory", "home folder");
  const [nameField, name] = field("new-name", "Name", "optional");
  const create = h("button", { type: "submit", class: "primary" }, "Create");
  const cancel = h("button", { type: "button" }, "Cancel");
  const el = h(
    "form",
    { id: "new-session", class: "card new-session", hidden: true, "aria-label": "New session" },
    commandField,
    cwdField,
    nameField,
    h("div", { class: "actions" }, create, cancel),
  );
  const result: NewSessionForm = {
    el,
    toggle(): void {
      el.hidden = !el.hidden;
      result.onToggle(!el.hidden);
      if (!el.hidden) command.focus();
    },
    onToggle: () => undefined,
  };
  cancel.addEventListener("click", () => result.toggle());
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    create.disabled = true;
    const body = newSessionBody(command.value, cwd.value, name.value, guessSize());
    ctx.api
      .createSession(body)
      .then((session) => {
        showError("");
        // Made for this window: its terminal page fits it at once (and only this once).
        ctx.navigate(`/sessions/${encodeURIComponent(session.id)}`, false, { fit: true });
      })
      .catch((e: unknown) => {
        if (!(e instanceof ApiError && e.status === 401)) showError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => {
        create.disabled = false;
      });
  });
  return result;
}
