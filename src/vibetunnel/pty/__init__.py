"""Programs in pseudo-terminals: the process, the session with its clients, the registry."""
