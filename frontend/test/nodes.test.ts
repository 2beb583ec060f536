import assert from "node:assert/strict";
import { test } from "node:test";
import { newSessionBody } from "../src/new-session-form";
import {
  compareNames,
  groupSessions,
  NODES_MIN_GAP_MS,
  NODES_POLL_MS,
  NodesPoll,
  nodePicker,
  nodesKey,
  ownNode,
  type Timers,
} from "../src/nodes";
import { asNodes, asSession, type ClusterNode, type Session } from "../src/types";

const SEEN = "2024-01-01T00:00:00Z";
const node = (name: string, online = true, sessions = 0): ClusterNode => ({ name, online, sessions, lastSeen: SEEN });

function session(id: string, nodeName: string | undefined, createdAt = `2024-01-01T00:00:0${id.length}Z`): Session {
  const s: Session = {
    id,
    name: id,
    command: "/bin/sh",
    args: [],
    cwd: "/",
    cols: 80,
    rows: 24,
    status: "running",
    exitCode: null,
    pid: 1,
    createdAt,
    exitedAt: null,
    clients: 0,
  };
  if (nodeName !== undefined) s.node = nodeName;
  return s;
}

const names = (groups: ReturnType<typeof groupSessions>): unknown =>
  groups?.map((g) => [g.name, g.online, g.own, g.sessions.map((s) => s.id)]) ?? null;

test("a session's node and the node list are checked before use", () => {
  const s = session("a", "alpha");
  assert.deepEqual(asSession(s), s);
  assert.equal(asSession({ ...s, node: 3 }), null);
  assert.equal(asSession(session("a", undefined))?.node, undefined);
  assert.deepEqual(
    asNodes([
      node("alpha"),
      { name: "", online: true, sessions: 0, lastSeen: SEEN },
      { name: "x", online: "yes", sessions: 0, lastSeen: SEEN },
      { name: "y", online: true, sessions: 1.5, lastSeen: SEEN },
      { name: "z", online: true, sessions: 1 },
      null,
      node("beta", false, 2),
    ]),
    [node("alpha"), node("beta", false, 2)],
  );
  assert.equal(asNodes({ nodes: [] }), null);
});

test("the own node: the only one, else the remembered one while it is listed", () => {
  assert.equal(ownNode([node("solo")], "other"), "solo");
  assert.equal(ownNode([node("a"), node("b")], "b"), "b");
  assert.equal(ownNode([node("a"), node("b")], "gone"), null);
  assert.equal(ownNode([node("a"), node("b")], null), null);
  assert.equal(ownNode(null, "b"), "b");
  assert.equal(ownNode([], null), null);
});

test("one node: no groups, the page stays a plain list", () => {
  const sessions = [session("a", "solo"), session("bb", "solo")];
  assert.equal(groupSessions(sessions, [node("solo")], "solo"), null);
  assert.equal(groupSessions(sessions, null, null), null); // before GET /api/nodes answered
  assert.equal(groupSessions([], [node("solo")], "solo"), null);
  // A server that predates clusters: no nodes, no `node` on sessions.
  assert.equal(groupSessions([session("a", undefined)], null, null), null);
});

test("several nodes: own node first, then by name, each with its sessions newest first", () => {
  const nodes = [node("node10"), node("beta", false, 1), node("node2"), node("alpha")];
  const sessions = [
    session("b1", "beta", "2024-01-01T00:00:01Z"),
    session("a1", "alpha", "2024-01-01T00:00:01Z"),
    session("a2", "alpha", "2024-01-01T00:00:05Z"),
    session("x", undefined),
  ];
  assert.deepEqual(names(groupSessions(sessions, nodes, "node2")), [
    ["node2", true, true, ["x"]], // a session without a node is the answering server's
    ["alpha", true, false, ["a2", "a1"]],
    ["beta", false, false, ["b1"]],
    ["node10", true, false, []],
  ]);
  // Own node unknown: all by name; a session without a node is grouped apart, last.
  assert.deepEqual(names(groupSessions(sessions, nodes, null)), [
    ["alpha", true, false, ["a2", "a1"]],
    ["beta", false, false, ["b1"]],
    ["node2", true, false, []],
    ["node10", true, false, []],
    ["", null, false, ["x"]],
  ]);
});

test("sessions on a node the node list does not know (yet) still group, state unknown", () => {
  const sessions = [session("a", "alpha"), session("bb", "beta")];
  assert.deepEqual(names(groupSessions(sessions, null, null)), [
    ["alpha", null, false, ["a"]],
    ["beta", null, false, ["bb"]],
  ]);
  assert.deepEqual(names(groupSessions(sessions, [node("alpha")], "alpha")), [
    ["alpha", true, true, ["a"]],
    ["beta", null, false, ["bb"]],
  ]);
});

test("node names sort in a human order", () => {
  assert.deepEqual(["n10", "n2", "b", "A", "a"].sort(compareNames), ["a", "A", "b", "n2", "n10"]);
});

test("nodesKey changes with the sessions per node, not with their state", () => {
  const one = [session("a", "alpha"), session("bb", "beta")];
  assert.equal(nodesKey(one), "alpha=1\nbeta=1");
  assert.equal(nodesKey([...one].reverse()), nodesKey(one));
  assert.equal(nodesKey([{ ...one[0]!, status: "exited" }, one[1]!]), nodesKey(one));
  assert.notEqual(nodesKey([...one, session("ccc", "beta")]), nodesKey(one));
  assert.equal(nodesKey([]), "");
});

test("the node picker: none for one node; default first; offline nodes disabled", () => {
  assert.equal(nodePicker(null, null, ""), null);
  assert.equal(nodePicker([node("solo")], "solo", ""), null);
  const nodes = [node("gamma", false), node("alpha"), node("beta")];
  assert.deepEqual(nodePicker(nodes, "beta", ""), {
    options: [
      { value: "", label: "beta (this server)", disabled: false },
      { value: "alpha", label: "alpha", disabled: false },
      { value: "gamma", label: "gamma (offline)", disabled: true },
    ],
    value: "",
  });
  // Own node unknown: the default is "this server", and every node can be picked by name.
  assert.deepEqual(
    nodePicker(nodes, null, "")?.options.map((o) => o.value),
    ["", "alpha", "beta", "gamma"],
  );
  assert.equal(nodePicker(nodes, null, "")?.options[0]?.label, "This server");
});

test("the picked node stays picked while listed, even offline; a vanished one falls back", () => {
  assert.equal(nodePicker([node("a"), node("b")], "a", "b")?.value, "b");
  assert.equal(nodePicker([node("a"), node("b", false)], "a", "b")?.value, "b");
  assert.equal(nodePicker([node("a"), node("c")], "a", "b")?.value, "");
  // Picking the own node by name is the default option.
  assert.equal(nodePicker([node("a"), node("b")], "a", "a")?.value, "");
});

test("POST /api/sessions names a node only when one other than the default is picked", () => {
  assert.equal("node" in newSessionBody("", "", "", null), false);
  assert.equal("node" in newSessionBody("", "", "", null, ""), false);
  assert.deepEqual(newSessionBody("top", "", "", null, "beta"), {
    command: "/bin/sh",
    args: ["-c", "top"],
    node: "beta",
  });
});

/** Timers on a clock that moves only when told. */
class FakeTimers implements Timers {
  time = 0;
  private nextId = 1;
  private due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.time;
  }
  set(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.due.set(id, { at: this.time + ms, fn });
    return id;
  }
  clear(id: number): void {
    this.due.delete(id);
  }
  get pending(): number {
    return this.due.size;
  }
  /** Move the clock by `ms`, running every timer that comes due (and what its promises do). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const next = [...this.due].sort(([, a], [, b]) => a.at - b.at)[0];
      if (!next || next[1].at > end) break;
      this.due.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }
}

function counting(): { fetch: () => Promise<void>; times: number[]; timers: FakeTimers } {
  const timers = new FakeTimers();
  const times: number[] = [];
  return {
    timers,
    times,
    fetch: () => {
      times.push(timers.time);
      return Promise.resolve();
    },
  };
}

test("the node poll: at once, then every 5 s", async () => {
  const { fetch, times, timers } = counting();
  const poll = new NodesPoll(fetch, timers);
  poll.start();
  await timers.advance(0);
  assert.deepEqual(times, [0]);
  await timers.advance(3 * NODES_POLL_MS);
  assert.deepEqual(times, [0, NODES_POLL_MS, 2 * NODES_POLL_MS, 3 * NODES_POLL_MS]);
  poll.stop();
  await timers.advance(3 * NODES_POLL_MS);
  assert.equal(times.length, 4);
  assert.equal(timers.pending, 0);
});

test("the node poll: a change asks sooner, but never twice within the gap", async () => {
  const { fetch, times, timers } = counting();
  const poll = new NodesPoll(fetch, timers);
  poll.start();
  await timers.advance(500);
  poll.soon(); // 500 ms after the first request: waits for the gap
  await timers.advance(NODES_MIN_GAP_MS - 500 - 1);
  assert.deepEqual(times, [0]);
  await timers.advance(1);
  assert.deepEqual(times, [0, NODES_MIN_GAP_MS]);
  // Long after the last request: at once.
  await timers.advance(NODES_MIN_GAP_MS + 100);
  poll.soon();
  await timers.advance(0);
  assert.deepEqual(times, [0, NODES_MIN_GAP_MS, 2 * NODES_MIN_GAP_MS + 100]);
  poll.stop();
});

test("the node poll: a storm of changes stays well under 100 requests a minute", async () => {
  const { fetch, times, timers } = counting();
  const poll = new NodesPoll(fetch, timers);
  poll.start();
  for (let t = 0; t < 60_000; t += 50) {
    poll.soon();
    await timers.advance(50);
  }
  poll.stop();
  assert.ok(times.length <= 60_000 / NODES_MIN_GAP_MS + 1, String(times.length));
  assert.ok(times.length >= 60_000 / NODES_MIN_GAP_MS - 1, String(times.length));
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= NODES_MIN_GAP_MS);
});

test("the node poll: one request at a time; a change during one asks again after it", async () => {
  const timers = new FakeTimers();
  let release: () => void = () => undefined;
  let calls = 0;
  const poll = new NodesPoll(() => {
    calls++;
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  }, timers);
  poll.start();
  await timers.advance(0);
  assert.equal(calls, 1);
  poll.soon();
  await timers.advance(10 * NODES_POLL_MS); // still in flight: no second request
  assert.equal(calls, 1);
  release();
  await timers.advance(0); // the gap since the start has long passed: at once
  assert.equal(calls, 2);
  poll.stop();
  release();
  await timers.advance(10 * NODES_POLL_MS); // stopped while in flight: nothing after it
  assert.equal(calls, 2);
  assert.equal(timers.pending, 0);
});

test("the node poll survives failed requests", async () => {
  const timers = new FakeTimers();
  let calls = 0;
  const poll = new NodesPoll(() => {
    calls++;
    return Promise.reject(new Error("down"));
  }, timers);
  poll.start();
  await timers.advance(2 * NODES_POLL_MS);
  assert.equal(calls, 3);
  poll.stop();
});
