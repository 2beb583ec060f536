"""Command line: one module per command, each with HELP, configure(parser) and run(args)."""
