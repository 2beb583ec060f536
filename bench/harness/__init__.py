"""What the benches share, once: each bench (bench/*.py) holds only its own loads and report.

- report: progress lines, cells (median (min-max) of interleaved rounds), tables, --json;
- options: the shared command line (--rounds, --compare/--before/--after, --json, --quick);
- versions: the code under test and the "before" code (a git worktree of a revision);
- proctable: the process table: a home's processes, their memory and CPU, ending them;
- servers: every server a bench starts (ours, ttyd, terminado, redis-server), and install,
  the peers' programs put into bench/.peers/ on first use;
- fleet: every server of a run, and the end of everything they start;
- run: one run (a folder, its Fleet, signals unwinding it, the end-of-run process check);
- bare: the bare PTY, the yardstick; loads: the loads over a client of any protocol;
  clients: one client per protocol (ours, ttyd, terminado);
- viewers: many viewers of one session in client processes of their own (fan-out).
"""
