"""terminado as the bench runs it: one tornado app, one terminal per WebSocket connection.

Run by the peers' venv python (bench/.peers/venv), never imported by the bench:

    python terminado_app.py PROGRAMS   # prints "terminado listening on PORT" (127.0.0.1)

PROGRAMS is JSON, name -> argv. Each path runs one program, a `UniqueTermManager` (a fresh
terminal per connection, ended when it closes) of its own: /bash, /cat, /ready (the programs
of harness/loads.py PROGRAMS).
"""

import json
import sys

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
from terminado import TermSocket, UniqueTermManager


def main() -> None:
    programs = json.loads(sys.argv[1])
    managers = {name: UniqueTermManager(shell_command=argv) for name, argv in programs.items()}
    app = tornado.web.Application(
        [(f"/{name}", TermSocket, {"term_manager": m}) for name, m in managers.items()],
        websocket_max_message_size=64 * 1024 * 1024,
    )
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"terminado listening on {sockets[0].getsockname()[1]}", flush=True)
    # SIGTERM ends it at once; the kernel hangs up its terminals as their masters close, and
    # the bench sweeps whatever outlives that.
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
