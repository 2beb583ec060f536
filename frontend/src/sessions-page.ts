/**
 * `/`: the live list of sessions, the "New session" form, and Kill / Delete per session. In a
 * cluster of more than one node the list is grouped by node (nodes.ts); with one node it is
 * one plain list.
 */

import type { AppContext, Page } from "./app-context";
import { Backoff } from "./backoff";
import { errorBanner, topBar } from "./chrome";
import { h, replaceChildren, setText } from "./dom";
import { ApiError } from "./http";
import { newSessionForm } from "./new-session-form";
import { groupSessions, newestFirst, NodesPoll, nodesKey, ownNode, type NodeGroup } from "./nodes";
import { rememberedNode, rememberNode } from "./prefs";
import { SessionRow } from "./session-row";
import { asSessions, type ClusterNode, type Session } from "./types";

export function mountSessionsPage(root: HTMLElement, ctx: AppContext): Page {
  document.title = "Sessions · VibeTunnel";
  const error = errorBanner();
  const list = h("ul", { class: "cards", "aria-label": "Sessions" });
  /** The list grouped by node, shown instead of `list` when there is more than one node. */
  const groupsEl = h("div", { class: "node-groups", hidden: true });
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
      groupsEl,
      empty,
    ),
  );

  const rows = new Map<string, SessionRow>();
  const sections = new Map<string, NodeSection>();
  /** GET /api/nodes as last answered; null until then, or from a server without clusters. */
  let nodes: ClusterNode[] | null = null;
  let lastNodesKey: string | null = null;
  const poll = new NodesPoll(fetchNodes, {
    now: () => performance.now(),
    set: (fn, ms) => window.setTimeout(fn, ms),
    clear: (id) => window.clearTimeout(id),
  });
  /** The server has no GET /api/nodes (404): it predates clusters; not asked again. */
  let noNodes = false;
  /** Whether GET /api/health was asked for the own node's name (once, when it matters). */
  let askedHealth = false;
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

  async function fetchNodes(): Promise<void> {
    const answer = await ctx.api.listNodes();
    if (disposed) return;
    if (answer === null) {
      noNodes = true;
      poll.stop();
    }
    if (answer?.length === 1) rememberNode(answer[0]!.name);
    else if (answer !== null && !askedHealth) {
      // Several nodes: which one serves this page? The node list does not say; health may.
      askedHealth = true;
      const name = await ctx.api.ownNodeName();
      if (disposed) return;
      // Only a listed name: the own node is always in the list (else health is not its name).
      if (name !== null && answer.some((node) => node.name === name)) rememberNode(name);
    }
    nodes = answer;
    form.setNodes(nodes, ownNode(nodes, rememberedNode()));
    if (shown !== null) render(shown);
  }

  function render(sessions: Session[]): void {
    loaded = true;
    shown = sessions;
    const key = nodesKey(sessions);
    // Sessions came or went on some node: its count (or the node itself) is news for the nodes.
    if (lastNodesKey !== null && key !== lastNodesKey) poll.soon();
    lastNodesKey = key;
    const seen = new Set<string>();
    const place = (into: HTMLUListElement, items: Session[], offline: boolean): void => {
      let previous: Element | null = null;
      for (const session of items) {
        seen.add(session.id);
        let row = rows.get(session.id);
        if (!row) {
          row = new SessionRow(session, act, rename);
          rows.set(session.id, row);
        }
        row.update(session, offline);
        const expected: Element | null = previous ? previous.nextElementSibling : into.firstElementChild;
        if (expected !== row.el) into.insertBefore(row.el, expected);
        previous = row.el;
      }
    };
    const groups = groupSessions(sessions, nodes, ownNode(nodes, rememberedNode()));
    list.hidden = groups !== null;
    groupsEl.hidden = groups === null;
    if (groups === null) {
      place(list, newestFirst(sessions), false);
    } else {
      let previous: Element | null = null;
      for (const group of groups) {
        let section = sections.get(group.name);
        if (!section) {
          section = new NodeSection(group.name);
          sections.set(group.name, section);
        }
        section.update(group);
        place(section.list, group.sessions, group.online === false);
        const expected: Element | null = previous ? previous.nextElementSibling : groupsEl.firstElementChild;
        if (expected !== section.el) groupsEl.insertBefore(section.el, expected);
        previous = section.el;
      }
    }
    const grouped = new Set(groups?.map((group) => group.name));
    for (const [name, section] of sections) {
      if (!grouped.has(name)) {
        section.el.remove();
        sections.delete(name);
      }
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.el.remove();
        rows.delete(id);
      }
    }
    empty.hidden = !loaded || sessions.length > 0 || groups !== null;
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
  // The node list is polled only while the page is in front (and the server has one).
  const nodesWake = (): void => {
    if (document.visibilityState === "visible" && !noNodes && !disposed) poll.start();
    else poll.stop();
  };
  document.addEventListener("visibilitychange", nodesWake);
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
  nodesWake();
  return {
    dispose(): void {
      disposed = true;
      poll.stop();
      document.removeEventListener("visibilitychange", nodesWake);
      source?.close();
      window.clearTimeout(timer);
      window.clearInterval(clock);
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("online", wake);
    },
  };
}

/** One node's part of the grouped list: a heading (name, this server, online) and its sessions. */
class NodeSection {
  private static count = 0;
  readonly el: HTMLElement;
  readonly list: HTMLUListElement;
  private state: HTMLElement;
  private own: HTMLElement;
  private none: HTMLElement;

  constructor(name: string) {
    const id = `node-${++NodeSection.count}`;
    const label = name || "Unknown node";
    this.state = h("span", { class: "badge" });
    this.own = h("span", { class: "own-node" });
    this.list = h("ul", { class: "cards", "aria-label": `Sessions on ${label}` });
    this.none = h("p", { class: "empty" }, "No sessions on this node.");
    this.el = h(
      "section",
      { class: "node-group", "aria-labelledby": id, "data-node": name },
      h("h2", { class: "node-heading", id }, h("span", { class: "node-name" }, label), this.own, this.state),
      this.list,
      this.none,
    );
  }

  update(group: NodeGroup): void {
    const state = group.online === null ? "unknown" : group.online ? "online" : "offline";
    setText(this.state, state);
    this.state.className = `badge node-state ${state}`;
    this.own.hidden = !group.own;
    setText(this.own, group.own ? "this server" : ""); // not in the heading's text when hidden
    this.el.classList.toggle("offline", group.online === false);
    this.none.hidden = group.sessions.length > 0;
  }
}
