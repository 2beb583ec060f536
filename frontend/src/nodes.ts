/**
 * A cluster of servers on the session list (pure, DOM-free): which node serves this page, the
 * order of the nodes, the sessions grouped by node, the node picker of the "New session" form,
 * and when to ask GET /api/nodes again (it does not push, so it is polled).
 */

import type { ClusterNode, Session } from "./types";

/** GET /api/nodes every 5 s while the list is visible ... */
export const NODES_POLL_MS = 5_000;
/**
 * ... and soon after the live list shows a change of nodes, but never twice within 2 s: at most
 * 30 requests a minute, well under the server's rate limit (100 a minute per client).
 */
export const NODES_MIN_GAP_MS = 2_000;

/** One node's heading and its sessions on the grouped list. */
export interface NodeGroup {
  /** "" for sessions whose node is not known (a server that predates clusters). */
  name: string;
  /** From GET /api/nodes; null while that list does not name the node (yet). */
  online: boolean | null;
  /** The node that serves this page. */
  own: boolean;
  /** Newest first. */
  sessions: Session[];
}

/** Node names in a stable, human order: "node2" before "node10". */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The name of the node serving this page, when it can be told: the only node there is, else
 * `remembered` (learnt from an earlier single-node list or a session this page created without
 * naming a node) while the cluster still lists it; null when unknown.
 */
export function ownNode(nodes: readonly ClusterNode[] | null, remembered: string | null): string | null {
  if (nodes === null) return remembered;
  if (nodes.length === 1) return nodes[0]!.name;
  return remembered !== null && nodes.some((node) => node.name === remembered) ? remembered : null;
}

/** Newest first, like a shell history. */
export function newestFirst(sessions: readonly Session[]): Session[] {
  return [...sessions].sort((a, b) => String(b.createdAt ?? "").localeCompare(String(a.createdAt ?? "")));
}

/**
 * The sessions by node: the own node first, then the others by name (sessions of an unknown
 * node last); every listed node has a group, with sessions or not. Null when there is at most one node: the page then shows one
 * plain list, as a server without a cluster does.
 */
export function groupSessions(
  sessions: readonly Session[],
  nodes: readonly ClusterNode[] | null,
  own: string | null,
): NodeGroup[] | null {
  const known = new Map((nodes ?? []).map((node) => [node.name, node] as const));
  const byNode = new Map<string, Session[]>();
  for (const name of known.keys()) byNode.set(name, []);
  for (const session of newestFirst(sessions)) {
    // A session without a node comes from the server that sent the list.
    const name = session.node ?? own ?? "";
    const list = byNode.get(name);
    if (list) list.push(session);
    else byNode.set(name, [session]);
  }
  if (byNode.size <= 1) return null;
  const groups = [...byNode].map(
    ([name, list]): NodeGroup => ({
      name,
      online: known.get(name)?.online ?? null,
      own: name === own,
      sessions: list,
    }),
  );
  const rank = (group: NodeGroup): number => (group.own ? 0 : group.name === "" ? 2 : 1);
  return groups.sort((a, b) => rank(a) - rank(b) || compareNames(a.name, b.name));
}

/**
 * What GET /api/nodes depends on, as seen in the live list (sessions per node): a change asks
 * for the node list again rather than waiting for the next poll.
 */
export function nodesKey(sessions: readonly Session[]): string {
  const counts = new Map<string, number>();
  for (const session of sessions) counts.set(session.node ?? "", (counts.get(session.node ?? "") ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => compareNames(a, b))
    .map(([name, count]) => `${name}=${count}`)
    .join("\n");
}

export interface NodeOption {
  /** The `node` of POST /api/sessions; "" leaves it out (the server serving the page). */
  value: string;
  label: string;
  disabled: boolean;
}

export interface NodePicker {
  options: NodeOption[];
  /** The option to show selected. */
  value: string;
}

/**
 * The node picker of the "New session" form, or null when there is at most one node (no
 * picker). The first option, the default, sends no `node`: the server that serves the page
 * creates the session, as without a cluster. The other nodes follow by name; offline ones are
 * disabled. The user's `chosen` node stays selected while the cluster lists it (if it went
 * offline meanwhile, the server's 503 says so rather than the session quietly going elsewhere).
 */
export function nodePicker(nodes: readonly ClusterNode[] | null, own: string | null, chosen: string): NodePicker | null {
  if (nodes === null || nodes.length <= 1) return null;
  const options: NodeOption[] = [
    { value: "", label: own === null ? "This server" : `${own} (this server)`, disabled: false },
  ];
  const others = nodes.filter((node) => node.name !== own).sort((a, b) => compareNames(a.name, b.name));
  for (const node of others) {
    options.push({ value: node.name, label: node.online ? node.name : `${node.name} (offline)`, disabled: !node.online });
  }
  const value = chosen !== "" && options.some((option) => option.value === chosen) ? chosen : "";
  return { options, value };
}

/** Timers and a clock, injected so the poll's tests need no waiting. */
export interface Timers {
  now(): number;
  set(fn: () => void, ms: number): number;
  clear(id: number): void;
}

/**
 * Poll the node list: once at start, every `every` ms after the last answer, and `soon()` (a
 * change seen elsewhere) as early as `gap` ms after the previous request allows. One request at
 * a time: a `soon()` during one asks again after it.
 */
export class NodesPoll {
  private timer: number | null = null;
  private lastStart = -Infinity;
  private inFlight = false;
  private again = false;
  private running = false;

  constructor(
    private readonly fetch: () => Promise<void>,
    private readonly timers: Timers,
    private readonly every: number = NODES_POLL_MS,
    private readonly gap: number = NODES_MIN_GAP_MS,
  ) {}

  get active(): boolean {
    return this.running;
  }

  start(): void {
    this.running = true;
    this.soon();
  }

  stop(): void {
    this.running = false;
    this.again = false;
    this.cancel();
  }

  soon(): void {
    if (!this.running) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.schedule(Math.max(0, this.lastStart + this.gap - this.timers.now()));
  }

  private cancel(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.cancel();
    this.timer = this.timers.set(() => {
      this.timer = null;
      void this.run();
    }, ms);
  }

  private async run(): Promise<void> {
    this.lastStart = this.timers.now();
    this.inFlight = true;
    try {
      await this.fetch();
    } catch {
      // Kept: the last known nodes stay shown; the next poll tries again.
    }
    this.inFlight = false;
    if (!this.running) return;
    if (this.again) {
      this.again = false;
      this.soon();
    } else {
      this.schedule(this.every);
    }
  }
}
