"""HTTP and WebSocket edge: turns requests into session operations and faults into responses."""
