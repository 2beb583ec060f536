"""Session and recording ids: one pattern, since a session's recording is named after it."""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
"""What an id may be: it is also a file name, so no dots, no slashes, at most 128 characters."""
