"""In the browser: typing and floods as Chromium paints them, this server beside ttyd.

    python bench/browser.py [--rounds 5] [--keys 80] [--targets bare,ours,ttyd]
                            [--loads typing,yes,base64,seq] [--quick]
    python bench/browser.py --compare REV --targets before,ours,ttyd   # "before": git REV

Debian's Chromium, headless, through Playwright (the flags of tests/browser/conftest.py), one
page at a time, fresh for each load; ttyd 1.7.7 with the same xterm.js DOM renderer (`ttyd -t
rendererType=dom -W`, installed on first use into bench/.peers/) and our server (`--no-auth`),
each started once for the run; the bare PTY read by a plain loop in this process where a
figure applies to it. Interleaved rounds (bare, ours, ttyd, bare, ...); cells are medians
(min-max) over the rounds, typing's over every key of every round.

An init script (before any of the page's own) wraps WebSocket, timestamping every message as it
reaches the page, and watches xterm's rendered rows (`.xterm-rows`) with a MutationObserver;
a keydown listener on the window (capture phase: before xterm's) starts each clock.
- typing: `--keys` keys per round into `cat`, each pressed once the last one is painted:
  keydown to the row holding every key of the line so far (p50, p99), and keydown to the
  first output message after it (the echo frame's arrival at the page);
- yes, base64: `yes` (or `cat /dev/urandom | base64`) in bash, Ctrl-C after `--flood`
  seconds: keydown to a fresh prompt painted (PS1 is `@\\#@ `: the command number, so the
  prompt before the flood never counts);
- seq: `seq 1 N` (3,000,000): Enter's keydown to the row "N" painted; the share of seq's
  output bytes that reached the page (the rest skipped by resyncs); painting after the last
  message arrived; the page's JS heap peak (CDP Performance.getMetrics, sampled every 0.1 s)
  and the renderer processes' RSS growth (/proc: the browser's descendants started with
  --type=renderer); whether the screen and the scrollback's end (Shift+PageUp, 3 pages) are
  exact: consecutive numbers up to N.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from harness import bare, install, options, proctable, report, versions
from harness.fleet import Fleet
from harness.report import Results, cell, progress, quantile
from harness.run import Run
from harness.servers import Server, Ttyd
from harness.versions import Version

TARGETS = ("bare", "ours", "ttyd", "before")
LOADS = ("typing", "yes", "base64", "seq")
CHROMIUM = os.environ.get("VIBETUNNEL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""As tests/browser/conftest.py."""
VIEWPORT = {"width": 1100, "height": 700}
PS1 = "@\\#@ "
"""The prompt: bash's command number between two signs base64, yes and seq never print."""
BASH = ["env", f"PS1={PS1}", "bash", "--norc", "--noprofile"]
FLOODS = {"yes": "yes", "base64": "cat /dev/urandom | base64"}
LINE = 40
"""Keys typed on one line before an Enter (not timed): rows stay shorter than the terminal."""
TIMEOUT = 60.0
TTYD_OPTIONS = ("-t", "rendererType=dom", "-t", "fontSize=14", "-t", "disableLeaveAlert=true")
"""ttyd's page with the same xterm.js DOM renderer as ours."""

INIT = r"""
(() => {
  const b = (window.__bench = {
    open: false, keys: [], prefix: "", ctrlAt: null, enterAt: null,
    marker: null, markerAt: null, msgs: [], bytes: 0,
  });
  const rowsText = () => {
    const rows = document.querySelector(".xterm-rows");
    if (!rows) return [];
    return Array.from(rows.children, (r) => r.textContent.replace(/\u00a0/g, " ").trimEnd());
  };
  b.rows = rowsText;
  b.arm = (marker) => { b.marker = marker; b.markerAt = null; b.msgs = []; b.bytes = 0; };
  const check = () => {
    const now = performance.now();
    const key = b.keys[b.keys.length - 1];
    const want = key && key.paint === null ? key.want : null;
    if (want === null && (b.marker === null || b.markerAt !== null)) return;
    for (const row of rowsText()) {
      if (want !== null && row === want) key.paint = now;
      if (b.marker !== null && b.markerAt === null && row.startsWith(b.marker)) b.markerAt = now;
    }
  };
  // Waits of the bench, checked after each batch of mutations and every 20 ms: never by
  // requestAnimationFrame, which would make the page draw frames it would not draw alone.
  const waiters = new Set();
  const settle = () => {
    for (const w of waiters) {
      if (w.pred(w.arg)) { waiters.delete(w); w.resolve(true); }
    }
  };
  setInterval(settle, 20);
  b.until = (pred, arg, ms) => new Promise((resolve, reject) => {
    if (pred(arg)) return resolve(true);
    const w = { pred, arg, resolve };
    waiters.add(w);
    setTimeout(() => { if (waiters.delete(w)) reject(new Error(`timed out: ${pred}`)); }, ms);
  });
  const watch = new MutationObserver(() => { check(); settle(); });
  const find = new MutationObserver(() => {
    const rows = document.querySelector(".xterm-rows");
    if (!rows) return;
    find.disconnect();
    watch.observe(rows, { childList: true, subtree: true, characterData: true });
  });
  find.observe(document, { childList: true, subtree: true });
  window.addEventListener("keydown", (e) => {
    const now = performance.now();
    if (e.ctrlKey && e.key === "c") b.ctrlAt = now;
    else if (e.key === "Enter") { b.enterAt = now; b.prefix = ""; }
    else if (e.key.length === 1 && !e.ctrlKey && !e.shiftKey) {
      b.prefix += e.key;
      b.keys.push({ down: now, echo: null, paint: null, want: b.prefix });
    }
  }, true);
  const onMessage = (e) => {
    const now = performance.now();
    if (!(e.data instanceof ArrayBuffer) || e.data.byteLength === 0) return;
    const head = new Uint8Array(e.data, 0, 1)[0];
    // ours: 0xBF frames (5-byte header); ttyd: "0" then output (other first bytes: title...)
    const n = head === 0xbf ? e.data.byteLength - 5 : head === 0x30 ? e.data.byteLength - 1 : -1;
    if (n < 0) return;
    b.bytes += n;
    if (b.marker !== null && b.markerAt === null) b.msgs.push(now);
    const key = b.keys[b.keys.length - 1];
    if (key && key.echo === null) key.echo = now;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", onMessage);
      this.addEventListener("open", () => { b.open = true; });
    }
  };
})();
"""


def seq_bytes(n: int) -> int:
    """Bytes of `seq 1 n` on a terminal: every number and CR LF."""
    total, digits, low = 0, 1, 1
    while low <= n:
        high = min(n, 10**digits - 1)
        total += (high - low + 1) * (digits + 2)
        low, digits = high + 1, digits + 1
    return total


# -- the targets --------------------------------------------------------------------------------


class Target:
    """One server of a run, as a page sees it."""

    def __init__(self, name: str, fleet: Fleet, version: Version | None) -> None:
        self.name = name
        self.ttyd: Ttyd | None = None
        self.server: Server | None = None
        self.fleet = fleet
        if version is None:
            self.ttyd = fleet.own(Ttyd(*TTYD_OPTIONS))
        else:
            self.server = fleet.start(version, name, "--no-auth")
            self.api = httpx.Client(base_url=self.server.url, timeout=30)

    @contextlib.contextmanager
    def session(self, argv: list[str]) -> Iterator[str]:
        """The URL of a page on a new session running `argv`; the session ends after."""
        if self.ttyd is not None:
            yield f"http://127.0.0.1:{self.ttyd.port}/?{self.ttyd.query(argv)}"
            return
        assert self.server is not None
        r = self.api.post("/api/sessions", json={"command": argv[0], "args": argv[1:]})
        r.raise_for_status()
        sid = r.json()["id"]
        try:
            yield f"{self.server.url}/sessions/{sid}"
        finally:
            self.api.delete(f"/api/sessions/{sid}")

    def ready(self, page: Any) -> None:
        """Wait until the page's terminal is connected, then focus it."""
        if self.server is not None:
            status = page.locator(".term-header [role=status]")
            status.filter(has_text="Connected").wait_for(timeout=TIMEOUT * 1000)
        wait(page, "__bench.open")
        page.locator(".xterm-helper-textarea").focus()

    def stop(self) -> None:
        if self.ttyd is not None:
            self.fleet.stop(self.ttyd)
        elif self.server is not None:
            self.api.close()
            self.fleet.stop(self.server)


def ensure_web(version: Version) -> None:
    """Build the web app of a "before" tree (git ignores it) if it is not there yet."""
    if (version.src / "vibetunnel" / "web" / "index.html").is_file():
        return
    frontend = version.src.parent / "frontend"
    progress(f"building the web app of {frontend.parent}")
    for cmd in (["npm", "ci", "--no-audit", "--no-fund"], ["node", "build.mjs"]):
        subprocess.run(cmd, cwd=frontend, check=True, capture_output=True)


# -- the browser --------------------------------------------------------------------------------


def renderers() -> dict[int, int]:
    """pid -> RSS kB of every Chromium renderer below this process."""
    out = {}
    for pid in proctable.descendants([os.getpid()]):
        try:
            if b"--type=renderer" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            out[pid] = proctable.memory([pid]).rss
        except OSError:
            continue
    return out


class Browser:
    def __init__(self, playwright: Any) -> None:
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    @contextlib.contextmanager
    def page(self, url: str) -> Iterator[Any]:
        context = self.browser.new_context(viewport=VIEWPORT)
        try:
            context.add_init_script(INIT)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(url)
            yield page
        finally:
            context.close()

    def close(self) -> None:
        self.browser.close()


def bench(page: Any, expr: str, arg: Any = None) -> Any:
    return page.evaluate(f"(arg) => {expr}", arg)


def wait(page: Any, expr: str, arg: Any = None, timeout: float = TIMEOUT) -> None:
    """Until `expr` (JS, of `arg`) holds in the page (see `until` in INIT)."""
    page.evaluate(f"(arg) => __bench.until((arg) => {expr}, arg, {timeout * 1000})", arg)


def end_line(page: Any, line: str) -> None:
    """Enter, then wait for the two rows of `line`: its echo and cat's copy (a key typed
    sooner may land on the line before cat's copy)."""
    page.keyboard.press("Enter")
    wait(page, "__bench.rows().filter((r) => r === arg).length >= 2", line)


def type_keys(page: Any, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` keys into `cat`, each once the last is painted; a new line every LINE keys
    and at the end."""
    first = bench(page, "__bench.keys.length")
    line = ""
    for i in range(count):
        if len(line) == LINE:
            end_line(page, line)
            line = ""
        ch = rng.choice(string.ascii_lowercase + string.digits)
        line += ch
        page.keyboard.press(ch)
        try:
            wait(page, "__bench.keys.length > arg && __bench.keys[arg].paint !== null", first + i)
        except Exception as exc:
            state = bench(page, "({rows: __bench.rows(), keys: __bench.keys.slice(-3)})")
            raise RuntimeError(f"key {i} ({ch!r}) not painted: {json.dumps(state)}") from exc
    end_line(page, line)
    keys: list[dict[str, Any]] = bench(page, "__bench.keys.slice(arg)", first)
    return keys


def warm_up(page: Any, rng: random.Random) -> None:
    """A few keys first: the page fits itself to the window on the first key typed, and the
    JIT warms up."""
    type_keys(page, 10, rng)


def prompt(page: Any, n: int) -> None:
    wait(page, "__bench.rows().some((r) => r.startsWith(arg))", f"@{n}@")


def run_typing(browser: Browser, target: Target, args: argparse.Namespace, out: Results) -> None:
    rng = random.Random(len(out["type_paint"][target.name]))
    with target.session(["cat"]) as url, browser.page(url) as page:
        target.ready(page)
        warm_up(page, rng)
        for key in type_keys(page, args.keys, rng):
            out["type_paint"][target.name].append(key["paint"] - key["down"])
            if key["echo"] is not None:
                out["type_echo"][target.name].append(key["echo"] - key["down"])


def run_flood(
    browser: Browser, target: Target, load: str, args: argparse.Namespace, out: Results
) -> None:
    with target.session(BASH) as url, browser.page(url) as page:
        target.ready(page)
        prompt(page, 1)
        page.keyboard.type(FLOODS[load])
        page.keyboard.press("Enter")
        page.wait_for_timeout(args.flood * 1000)
        bench(page, "__bench.arm(arg)", "@2@")
        page.keyboard.press("Control+c")
        wait(page, "__bench.markerAt !== null")
        took = bench(page, "__bench.markerAt - __bench.ctrlAt")
        out[f"{load}_s"][target.name].append(took / 1000)
        # A working prompt: a command typed now runs.
        page.keyboard.type("echo $((6*7))ok")
        page.keyboard.press("Enter")
        prompt(page, 3)


def run_seq(browser: Browser, target: Target, args: argparse.Namespace, out: Results) -> None:
    name, n = target.name, args.seq
    with target.session(BASH) as url, browser.page(url) as page:
        target.ready(page)
        prompt(page, 1)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def heap() -> float:
            metrics = cdp.send("Performance.getMetrics")["metrics"]
            return float(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"))

        page.keyboard.type(f"seq 1 {n}")
        before_rss = sum(renderers().values())
        heap_peak, rss_peak = heap(), before_rss
        bench(page, "__bench.arm(arg)", str(n))
        page.keyboard.press("Enter")
        deadline = time.monotonic() + TIMEOUT * 3
        while not bench(page, "__bench.markerAt !== null"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {n} not painted in {TIMEOUT * 3:.0f} s")
            heap_peak = max(heap_peak, heap())
            rss_peak = max(rss_peak, sum(renderers().values()))
            page.wait_for_timeout(100)
        r = bench(
            page,
            "({took: __bench.markerAt - __bench.enterAt, bytes: __bench.bytes,"
            " after: __bench.markerAt - Math.max(...__bench.msgs.filter("
            "(t) => t <= __bench.markerAt))})",
        )
        prompt(page, 2)
        heap_peak = max(heap_peak, heap())
        rss_peak = max(rss_peak, sum(renderers().values()))
        out["seq_s"][name].append(r["took"] / 1000)
        out["seq_share"][name].append(min(1.0, r["bytes"] / seq_bytes(n)) * 100)
        out["seq_after_s"][name].append(r["after"] / 1000)
        out["heap_mb"][name].append(heap_peak / 1e6)
        out["rss_mb"][name].append((rss_peak - before_rss) / 1024)
        out["exact"][name].append(float(scrollback_exact(page, n)))


def scrollback_exact(page: Any, n: int) -> bool:
    """The screen and 3 pages of scrollback above it hold consecutive numbers up to n."""
    seen: list[str] = []
    for i in range(4):
        rows = bench(page, "__bench.rows()")
        seen = rows + seen if i else rows
        page.keyboard.press("Shift+PageUp")
        wait(page, "__bench.rows()[0] !== arg", rows[0], timeout=10)
    numbers = [r for r in seen if r.isdigit()]
    # Pages overlap by a row or not at all: drop repeats where the pages meet.
    unique = [x for i, x in enumerate(numbers) if i == 0 or x != numbers[i - 1]]
    want = [str(i) for i in range(n - len(unique) + 1, n + 1)]
    return len(unique) > 3 * 10 and unique == want


# -- the bare PTY -------------------------------------------------------------------------------


def run_bare(load: str, args: argparse.Namespace, out: Results) -> None:
    if load == "typing":
        times = [t * 1000 for t in bare.echo(args.keys)]
        out["type_paint"]["bare"] += times
        out["type_echo"]["bare"] += times
        return
    with bare.terminal(BASH) as master:
        bare.read_until(master, b"@1@")
        if load == "seq":
            start = time.perf_counter()
            os.write(master, f"seq 1 {args.seq}\r".encode())
            bare.read_until(master, f"\n{args.seq}\r\n".encode())
            out["seq_s"]["bare"].append(time.perf_counter() - start)
            out["seq_share"]["bare"].append(100.0)
            return
        os.write(master, FLOODS[load].encode() + b"\r")
        bare.read_for(master, args.flood)
        start = time.perf_counter()
        os.write(master, b"\x03")
        bare.read_until(master, b"@2@")
        out[f"{load}_s"]["bare"].append(time.perf_counter() - start)


# -- the run ------------------------------------------------------------------------------------


def one_round(
    browser: Browser, targets: dict[str, Target], args: argparse.Namespace, out: Results
) -> None:
    for load in args.loads:
        for name in args.targets:
            progress(f"  {load} on {name}")
            if name == "bare":
                run_bare(load, args, out)
            elif load == "typing":
                run_typing(browser, targets[name], args, out)
            elif load == "seq":
                run_seq(browser, targets[name], args, out)
            else:
                run_flood(browser, targets[name], load, args, out)


ROWS = (
    ("type_paint", "typing into `cat`, keydown to the character painted, p50 / p99 ms", "keys"),
    ("type_echo", "... keydown to the echo frame arriving at the page, p50 / p99 ms", "keys"),
    ("yes_s", "`yes`, Ctrl-C after {flood:g} s: until a fresh prompt is painted, s", "s"),
    ("base64_s", "`cat /dev/urandom | base64`, Ctrl-C: until the prompt, s", "s"),
    ("seq_s", "`seq 1 {seq}`: until the last line is painted, s", "s"),
    ("seq_share", "... share of the output that reached the page, %", "pct"),
    ("seq_after_s", "... painting still going on after the last message arrived, s", "s"),
    ("heap_mb", "... JS heap peak, MB", "mb"),
    ("rss_mb", "... renderer memory growth (RSS), MB", "mb"),
    ("exact", "... screen and scrollback's end exact (rounds)", "exact"),
)


def table(args: argparse.Namespace, r: Results) -> list[str]:
    names = {"bare": "bare PTY", "ttyd": "ttyd (DOM renderer)"}
    head = ["as the page paints it", *(names.get(t, t) for t in args.targets)]
    lines = []
    for key, label, kind in ROWS:
        if not any(r[key].values()):
            continue
        row = [label.format(flood=args.flood, seq=args.seq)]
        for name in args.targets:
            xs = r[key][name]
            if not xs:
                row.append("-")
            elif kind == "keys":
                row.append(f"{quantile(xs, 0.5):.2f} / {quantile(xs, 0.99):.2f}")
            elif kind == "exact":
                row.append(f"{sum(xs):.0f}/{len(xs)}")
            else:
                row.append(cell(xs, {"s": 2, "pct": 0, "mb": 0}[kind]))
        lines.append(row)
    return report.markdown(head, lines)


def main() -> int:
    ap = options.parser(__doc__)
    options.add_rounds(ap, 5)
    ap.add_argument("--targets", default="bare,ours,ttyd", help=f"of {','.join(TARGETS)}")
    ap.add_argument("--loads", default=",".join(LOADS), help=f"of {','.join(LOADS)}")
    ap.add_argument("--keys", type=int, default=80, help="typing: keys per round")
    ap.add_argument("--flood", type=float, default=2.0, help="seconds of flood before Ctrl-C")
    ap.add_argument("--seq", type=int, default=3_000_000, help="seq: lines of `seq 1 N`")
    options.add_quick(ap, "2 rounds, 40 keys, seq 1000000", rounds=2, keys=40, seq=1_000_000)
    options.add_versions(ap)
    options.add_json(ap)
    args = ap.parse_args()
    args.targets = options.names(ap, args.targets, TARGETS, "targets")
    args.loads = options.names(ap, args.loads, LOADS, "loads")
    options.at_least_one(ap, args, "rounds", "keys", "seq")
    if args.flood <= 0:
        ap.error("--flood must be positive")
    if "before" in args.targets and not (args.compare or args.before):
        ap.error('the "before" target needs --compare REV or --before PATH')
    if "ttyd" in args.targets:
        install.ttyd()
    before, ours = versions.chosen(args, after="ours")
    if before is not None and "before" in args.targets:
        ensure_web(before)

    import playwright.sync_api as playwright_sync

    load_before = report.load_average()
    results = report.results()
    started = time.monotonic()
    # SIGTERM and SIGHUP unwind like Ctrl-C: the targets, the browser and the fleet's sweep end
    # everything the run started (ttyd, our servers, their sessions, Chromium).
    with Run("vt-browser-", cancel_tasks=False) as run, playwright_sync.sync_playwright() as p:
        browser = Browser(p)
        targets: dict[str, Target] = {}
        try:
            for name in args.targets:
                if name != "bare":
                    version = {"ours": ours, "before": before}.get(name)
                    targets[name] = Target(name, run.fleet, version)
            for i in range(args.rounds):
                progress(f"round {i + 1}/{args.rounds}")
                one_round(browser, targets, args, results)
        finally:
            for target in targets.values():
                target.stop()
            browser.close()

    print(report.command_line())
    print()
    print("\n".join(table(args, results)))
    print()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    notes = [
        f"{args.rounds} interleaved rounds ({', '.join(args.targets)}), "
        f"{time.monotonic() - started:.0f} s; typing: {args.keys} keys a round into `cat` "
        f"(p50/p99 over all {args.rounds * args.keys}); floods: Ctrl-C after {args.flood:g} s",
        f"browser: {chromium.strip()}, headless, {VIEWPORT['width']}x{VIEWPORT['height']}, "
        "xterm.js DOM renderer on both; ttyd: " + install.ttyd_version(),
        "ours: " + ours.about + (f"; before: {before.about}" if before else ""),
        f"machine: {report.machine()}, load average before {load_before}, "
        f"after {report.load_average()}",
    ]
    print("\n".join(f"- {line}" for line in notes))
    report.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
