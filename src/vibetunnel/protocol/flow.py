"""Flow control of one client (docs/protocol.md, "Flow control"): what it has acknowledged.

Pure: counts only. A client may send `{"type":"ack","bytes":N}`, N the data bytes of every
binary frame it has finished processing since it connected. A client that has acked once has
at most WINDOW bytes unacknowledged in flight; one that never acks is not limited (it is
served as before flow control existed, with the backlog limit of pty/client.py alone).

The numbers, measured in headless Chromium with xterm.js's DOM renderer on this 2-core machine
(docs/perf/browser.md). The slowest output to paint is short lines (`yes`: "y\\r\\n", a scroll
every three bytes): 1-2 MB/s with the cores free, a few hundred KB/s while `yes` and the
server take both (the program is never paused, so during a flood they do). So:
- WINDOW, 64 KiB: the most a page can still have to paint when it asks for something (a
  Ctrl-C during `yes`): tens of milliseconds.
- FRAME, 16 KiB: the largest frame sent to a client that acks. A page acks when xterm.js has
  written a frame (its write callback comes per write), so four frames in flight keep acks,
  and the window, moving while it paints.
- ACKED_LAG, 1 MiB: output held back for an acking client past which it is resynchronised
  (a slow reader that never acks: 4 MiB, pty/client.py).
- INPUT_LAG, 32 KiB: when the session gets input while more than this is held back for a
  client, that client is resynchronised at once: a typist sees what the keystroke did next,
  not the stale output before it.
- RESYNC_BYTES, 32 KiB: what a resynchronisation of an acking client sends of the screen
  (the end of the replay: the screen and some scrollback; issue 22's terminal snapshot
  replaces it).
"""

from __future__ import annotations

from vibetunnel.errors import ProtocolError

WINDOW = 64 * 1024
FRAME = 16 * 1024
ACKED_LAG = 1024 * 1024
INPUT_LAG = 32 * 1024
RESYNC_BYTES = 32 * 1024


class AckWindow:
    """Bytes sent to one client and bytes it acknowledged."""

    __slots__ = ("window", "sent", "acked", "acking")

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.sent = 0
        """Data bytes of every frame handed to the socket (resynchronisations included)."""
        self.acked = 0
        self.acking = False
        """The client has acked once: the window applies from then on."""

    def on_sent(self, data_bytes: int) -> None:
        """A frame carrying `data_bytes` (after its header) was handed to the socket."""
        self.sent += data_bytes

    def ack(self, total: int) -> None:
        """The client has processed `total` bytes. Raises ProtocolError (close 1003) for a
        total that goes back or is more than was sent; nothing changes then."""
        if total < self.acked:
            raise ProtocolError(f"ack went back: {total} after {self.acked}")
        if total > self.sent:
            raise ProtocolError(f"ack of {total} bytes, but {self.sent} were sent")
        self.acked = total
        self.acking = True

    @property
    def in_flight(self) -> int:
        """Sent and not acknowledged (for a client that never acks: everything sent)."""
        return self.sent - self.acked

    def room(self) -> int | None:
        """Data bytes that may be sent now: None for no limit (a client that never acked)."""
        if not self.acking:
            return None
        return max(0, self.window - self.in_flight)
