"""Every Redis key the cluster uses, and how long each lives (docs/cluster.md has the table)."""

from __future__ import annotations

PREFIX = "vt:"
NODES = PREFIX + "nodes"
"""Hash: node name -> {"lastSeen", "sessions"} JSON. Never expires: a dead node stays listed."""
CHANGES = PREFIX + "changes"
"""Pub/sub channel: a node's name, each time its session list changed."""
STREAM_MAXLEN = 256
"""Entries kept per output stream (about: trimmed with `~`); each holds at most ENTRY_BYTES.
A mirror further behind than this sees a gap and starts again from a snapshot."""
ENTRY_BYTES = 64 * 1024
ENDED_STREAM_TTL = 3600
"""Seconds an output stream outlives its session's deletion (late mirrors still see the end)."""
REPLY_TTL = 60
ORDERS_TTL = 60
"""Seconds a node's order queue outlives the last order sent to it (a dead node's queue
does not grow for ever; a live node empties it at once)."""
WATCH_TTL = 30.0
"""Seconds an owner writes a session's output after a gateway last said it mirrors it
(a snapshot order, or a `watch` order every third of this)."""


def alive(node: str) -> str:
    """String with a TTL (Config.cluster_ttl), renewed by the node's heartbeat."""
    return f"{PREFIX}alive:{node}"


def sessions(node: str) -> str:
    """Hash: session id -> session JSON (the API's), rewritten whole on each change."""
    return f"{PREFIX}sessions:{node}"


def control(node: str) -> str:
    """List: orders for the node (input, resize, snapshot, watch, create, delete, rename), in
    order; emptied when the node starts, expires ORDERS_TTL after the last one sent."""
    return f"{PREFIX}ctl:{node}"


def output(session_id: str) -> str:
    """Stream: a session's output, snapshots and exit, capped at STREAM_MAXLEN entries."""
    return f"{PREFIX}out:{session_id}"


def reply(token: str) -> str:
    """List: the one answer to an order, for REPLY_TTL seconds."""
    return f"{PREFIX}reply:{token}"
