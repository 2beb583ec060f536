"""`vt`: run a command in this terminal and share it through the local VibeTunnel server."""
