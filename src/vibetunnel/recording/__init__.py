"""Session recordings: asciicast v2 files, written off the event loop, and their index."""

from vibetunnel.recording.asciicast import CastFormatError
from vibetunnel.recording.index import RecordingIndex
from vibetunnel.recording.writer import CastWriter, flush_all

__all__ = ["CastFormatError", "CastWriter", "RecordingIndex", "flush_all"]
