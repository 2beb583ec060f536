/**
 * `/sessions/{id}`: the session's terminal in the whole window (xterm.js, DOM renderer, so the
 * text is in the page for screen readers and tests), a status line, and the phone keys bar.
 */

import type { Terminal as XTerm } from "@xterm/xterm";
import type { AppContext, Page } from "./app-context";
import { askServer, TerminalConnection, type ConnectionState } from "./connection";
import { h, replaceChildren, setText } from "./dom";
import { KeysBar } from "./keys";
import { debounce } from "./timing";
import type { ClientMessage } from "./types";

const RESIZE_DEBOUNCE_MS = 120;

/** The status line's words for a connection state. */
export function describeState(state: ConnectionState): string {
  switch (state.kind) {
    case "connecting":
      return "Connecting…";
    case "connected":
      return "Connected";
    case "reconnecting":
      return `Connection lost: reconnecting in ${(state.delayMs / 1000).toFixed(1)} s…`;
    case "ended":
      if (state.exitCode !== null) return `Session ended with exit code ${state.exitCode}`;
      return state.reason ? `Session ended (${state.reason})` : "Session ended";
    case "not-found":
      return "Session not found: it has ended or was deleted";
    case "unauthorized":
      return "Access refused: sign in again";
    case "protocol-error":
      return `Protocol error: ${state.reason || "the server refused a message"}`;
  }
}

/** The status line's look for a state: a class computed from the state, never read back. */
export function stateTone(state: ConnectionState): "ok" | "busy" | "bad" {
  switch (state.kind) {
    case "connected":
      return "ok";
    case "connecting":
    case "reconnecting":
      return "busy";
    default:
      return "bad";
  }
}

export function mountTerminalPage(root: HTMLElement, ctx: AppContext, id: string): Page {
  const status = h("span", { class: "status busy", role: "status" }, "Connecting…");
  const title = h("span", { class: "term-title" }, "Terminal");
  const host = h("div", { class: "term-host", "aria-label": "Terminal" });
  const scoped = ctx.auth.scopedSession !== null;
  const readOnly = ctx.auth.readOnly;
  const header = h(
    "header",
    { class: "term-header" },
    scoped ? null : h("a", { href: "/", class: "back", "aria-label": "Back to sessions" }, "‹ Sessions"),
    title,
    readOnly ? h("span", { class: "read-only", title: "This link can watch, not type" }, "read-only") : null,
    status,
  );
  const page = h("div", { class: "term-page" }, header, host);
  replaceChildren(root, page);
  document.title = "Terminal · VibeTunnel";

  let disposed = false;
  const cleanups: (() => void)[] = [];
  const dispose = (): void => {
    disposed = true;
    for (const cleanup of cleanups.splice(0)) cleanup();
  };

  // The session's name, for the title: a nicety, so a refusal here is not an error.
  ctx.api.getSession(id, true).then(
    (session) => {
      if (disposed) return;
      const name = session.name || session.command || "Terminal";
      setText(title, name);
      document.title = `${name} · VibeTunnel`;
    },
    () => undefined,
  );

  void loadXterm().then((xterm) => {
    if (!disposed) cleanups.push(start(xterm));
  });

  function start({ Terminal, FitAddon, WebLinksAddon }: XtermModules): () => void {
    const narrow = window.matchMedia("(max-width: 600px)").matches;
    const term: XTerm = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: narrow ? 12 : 14,
      scrollback: 10_000,
      // Not screen-reader mode: in it xterm drops `insertText` input (phone keyboards, IMEs,
      // dictation, emoji pickers). The DOM renderer still puts the text in the page.
      screenReaderMode: false,
      disableStdin: readOnly,
      theme: { background: "#101216", foreground: "#e6e6e6", cursor: "#8bd5ff" },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.loadAddon(new WebLinksAddon());
    term.open(host);

    let connection: TerminalConnection | null = null;
    const send = (message: ClientMessage): void => {
      connection?.send(message);
    };
    const keys = new KeysBar({
      send: (data) => send({ type: "input", data }),
      applicationCursor: () => term.modes.applicationCursorKeysMode,
      focus: () => term.focus(),
    });
    if (!readOnly) page.append(keys.el);

    const refit = (): void => {
      if (host.clientWidth > 0 && host.clientHeight > 0) fit.fit();
    };
    refit();

    // A read-only viewer fits its window but never resizes the shared terminal.
    const sendResize = debounce(() => {
      if (!readOnly) send({ type: "resize", cols: term.cols, rows: term.rows });
    }, RESIZE_DEBOUNCE_MS);
    term.onResize(() => sendResize());
    term.onData((data) => send({ type: "input", data: keys.transform(data) }));
    term.onBinary((data) => send({ type: "input", data }));

    // iOS keeps the layout height when the on-screen keyboard opens: follow the visual viewport
    // (unless pinch-zoomed) so the terminal and keys bar stay above the keyboard.
    const viewport = window.visualViewport;
    const followViewport = (): void => {
      if (viewport && Math.abs(viewport.scale - 1) < 0.01) {
        document.documentElement.style.setProperty("--app-height", `${Math.round(viewport.height)}px`);
      }
    };
    viewport?.addEventListener("resize", followViewport);
    followViewport();

    const onLayout = debounce(refit, RESIZE_DEBOUNCE_MS);
    const observer = new ResizeObserver(() => onLayout());
    observer.observe(host);
    window.addEventListener("resize", onLayout);
    host.addEventListener("click", () => term.focus());

    connection = new TerminalConnection(() => ctx.api.socketUrl(id), {
      onOpen: () => {
        // The server replays the current screen on every (re)connection: start from blank.
        term.reset();
        if (!readOnly) send({ type: "resize", cols: term.cols, rows: term.rows });
      },
      onOutput: (data) => term.write(data),
      whyClosed: (reason) => askServer(() => ctx.api.getSession(id, true), reason),
      onState: (state) => {
        setText(status, describeState(state));
        status.className = `status ${stateTone(state)}`;
        if (state.kind === "unauthorized") {
          ctx.auth.signOut("Your access to this session was refused. Please sign in again.");
        }
      },
    });
    const wake = (): void => {
      if (document.visibilityState === "visible") connection?.retryNow();
    };
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("online", wake);
    connection.start();
    term.focus();

    return () => {
      connection?.dispose();
      observer.disconnect();
      window.removeEventListener("resize", onLayout);
      viewport?.removeEventListener("resize", followViewport);
      document.documentElement.style.removeProperty("--app-height");
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("online", wake);
      sendResize.cancel();
      onLayout.cancel();
      term.dispose();
    };
  }

  return { dispose };
}

interface XtermModules {
  Terminal: typeof import("@xterm/xterm").Terminal;
  FitAddon: typeof import("@xterm/addon-fit").FitAddon;
  WebLinksAddon: typeof import("@xterm/addon-web-links").WebLinksAddon;
}

/** xterm.js is loaded only by the terminal page (a separate chunk). */
async function loadXterm(): Promise<XtermModules> {
  const [xterm, fit, links] = await Promise.all([
    import("@xterm/xterm"),
    import("@xterm/addon-fit"),
    import("@xterm/addon-web-links"),
  ]);
  return { Terminal: xterm.Terminal, FitAddon: fit.FitAddon, WebLinksAddon: links.WebLinksAddon };
}
