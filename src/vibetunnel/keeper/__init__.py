"""The session keeper: the long-lived process that holds every server-spawned program.

One keeper per home spawns the programs on PTYs, reaps them and holds their PTY masters. A
server attaches over `<home>/keeper.sock` and is handed every master (SCM_RIGHTS), so the
data path has no extra hop; while no server is attached, the keeper reads the PTYs itself,
keeping each session's screen and recording. See docs/persistence.md.
"""
