/**
 * `/sessions/{id}`: the session's terminal in the whole window (xterm.js, DOM renderer), a
 * header with the status and tools, and the phone keys bar.
 *
 * Size (size-policy.ts): the page renders the session at the session's size, shrunk to fit
 * its window, until the user types here or presses Fit; only then does it fit the session
 * to this window and send resize messages, and it stops when another device does the same.
 */

import type { Terminal as XTerm } from "@xterm/xterm";
import type { AppContext, Page } from "./app-context";
import { copyText } from "./clipboard";
import { askServer, TerminalConnection, type ConnectionState } from "./connection";
import { h, replaceChildren, setText } from "./dom";
import { KeysBar } from "./keys";
import { Notifier } from "./notify";
import { loadFontSize, saveFontSize, stepFontSize } from "./prefs";
import { SearchBar } from "./search-bar";
import { SessionFeed } from "./session-feed";
import { ECHO_WAIT_MS, MIN_WATCH_FONT, SizePolicy, watchFontSize, type Size } from "./size-policy";
import { ConnectionOverlay, Toast, toolsBar } from "./terminal-tools";
import { debounce } from "./timing";
import type { ClientMessage, Session } from "./types";

const RESIZE_DEBOUNCE_MS = 120;
/** Data from xterm this soon after a key, paste or composition is the user typing. */
const TYPED_WINDOW_MS = 500;

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

/** The words of a copy's note: "Copied 3 lines", "Copied the screen". */
export function copiedNote(text: string, whole: boolean): string {
  if (whole) return "Copied the screen";
  const lines = text.split("\n").length;
  return lines === 1 ? "Copied" : `Copied ${lines} lines`;
}

export function mountTerminalPage(root: HTMLElement, ctx: AppContext, id: string): Page {
  const status = h("span", { class: "status busy", role: "status" }, "Connecting…");
  const title = h("h1", { class: "term-title" }, "Terminal");
  const sizeLabel = h("span", { class: "term-size" });
  const host = h("div", { class: "term-host" });
  const stage = h("div", { class: "term-stage" }, host);
  const scoped = ctx.auth.scopedSession !== null;
  const readOnly = ctx.auth.readOnly;
  const header = h(
    "header",
    { class: "term-header" },
    scoped ? null : h("a", { href: "/", class: "back", "aria-label": "Back to sessions" }, "‹ Sessions"),
    title,
    readOnly ? h("span", { class: "read-only", title: "This link can watch, not type" }, "read-only") : null,
    sizeLabel,
    status,
  );
  const main = h("main", { class: "term-main" }, stage);
  const page = h("div", { class: "term-page" }, header, main);
  replaceChildren(root, page);
  document.title = "Terminal · VibeTunnel";

  // A session created in this tab's form is fitted to it at once: it was made for this window.
  const createdHere = (history.state as { fit?: unknown } | null)?.fit === true;
  if (createdHere) history.replaceState(null, "");

  let disposed = false;
  let sessionName = "";
  let programTitle = "";
  const cleanups: (() => void)[] = [];
  const dispose = (): void => {
    disposed = true;
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  const showTitle = (): void => {
    const text = programTitle || sessionName || "Terminal";
    setText(title, text);
    title.title = sessionName && programTitle ? `${programTitle} (session ${sessionName})` : text;
    document.title = `${text} · VibeTunnel`;
  };

  /** The session as last heard, until the terminal is there to take its size. */
  let heard: Session | null = null;
  let onSession = (session: Session): void => {
    heard = session;
    sessionName = session.name || session.command || "Terminal";
    showTitle();
  };
  // The session's name and size: the terminal waits for neither to start.
  ctx.api.getSession(id, true).then(
    (session) => {
      if (!disposed) onSession(session);
    },
    () => undefined,
  );

  void loadXterm().then((xterm) => {
    if (!disposed) cleanups.push(start(xterm));
  });

  function start({ Terminal, FitAddon, WebLinksAddon, SearchAddon, Unicode11Addon }: XtermModules): () => void {
    const narrow = window.matchMedia("(max-width: 600px)").matches;
    let fontSize = loadFontSize(narrow ? 12 : 14);
    const term: XTerm = new Terminal({
      cursorBlink: false,
      fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize,
      scrollback: 10_000,
      // Not screen-reader mode: in it xterm drops `insertText` input (phone keyboards, IMEs,
      // dictation, emoji pickers). The DOM renderer still puts the text in the page.
      screenReaderMode: false,
      disableStdin: readOnly,
      // Programs pick colours for a black or a white background; this keeps every one legible.
      minimumContrastRatio: 4.5,
      // The unicode API (wide characters, emoji) and search highlights are "proposed" API.
      allowProposedApi: true,
      theme: { background: "#101216", foreground: "#e6e6e6", cursor: "#8bd5ff" },
    });
    const fit = new FitAddon();
    const search = new SearchAddon();
    term.loadAddon(fit);
    term.loadAddon(search);
    term.loadAddon(new WebLinksAddon());
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = "11";
    term.open(host);

    const policy = new SizePolicy(readOnly);
    const notifier = new Notifier();
    const toast = new Toast();
    let connection: TerminalConnection | null = null;
    let ended = false;
    /** A resize sent while the socket was down: the session has not heard it yet. */
    let unsentResize = false;
    const timers = new Set<number>();

    const overlay = new ConnectionOverlay(() => connection?.retryNow());
    // The search box floats over the terminal: opening it must not resize the session.
    const searchBar = new SearchBar(search, () => term.focus());
    searchBar.el.id = "term-search-bar";
    stage.append(searchBar.el, overlay.el, toast.el);

    const send = (message: ClientMessage): boolean => connection?.send(message) ?? false;
    const input = (data: string): void => {
      if (!send({ type: "input", data })) overlay.refused();
    };

    // -- size --------------------------------------------------------------------------------
    const setFont = (px: number): void => {
      if (term.options.fontSize !== px) term.options.fontSize = px;
    };
    const sendResize = (size: Size): void => {
      unsentResize = !send({ type: "resize", cols: size.cols, rows: size.rows });
      const timer = window.setTimeout(() => {
        timers.delete(timer);
        if (!policy.awaitingEcho) return;
        // Not seen back: ask what size the session has (a vt session keeps its own).
        ctx.api.getSession(id, true).then((s) => {
          if (!disposed && policy.echoTimedOut({ cols: s.cols, rows: s.rows })) layout();
        }, () => undefined);
      }, ECHO_WAIT_MS);
      timers.add(timer);
    };
    /** Show a session of `size` whole: the user's font when it fits, smaller when not. */
    const showWhole = (size: Size): void => {
      if (term.cols !== size.cols || term.rows !== size.rows) term.resize(size.cols, size.rows);
      setFont(fontSize);
      const fits = fit.proposeDimensions();
      if (!fits) return;
      let font = watchFontSize(fontSize, fits, size);
      setFont(font);
      // Cells do not shrink exactly with the font: step down until the session fits.
      for (let p = fit.proposeDimensions(); p && font > MIN_WATCH_FONT && (p.cols < size.cols || p.rows < size.rows); ) {
        font -= 0.5;
        setFont(font);
        p = fit.proposeDimensions();
      }
    };
    const layout = (): void => {
      if (disposed || host.clientWidth === 0 || host.clientHeight === 0) return;
      const driving = policy.mode === "drive";
      host.classList.toggle("watching", !driving);
      if (driving) {
        setFont(fontSize);
        fit.fit();
        const size = policy.fitted({ cols: term.cols, rows: term.rows });
        if (size) sendResize(size);
      } else if (policy.session) {
        showWhole(policy.session);
      }
      setText(sizeLabel, `${term.cols}×${term.rows}`);
      sizeLabel.title = driving
        ? "This window sets the session's size"
        : "The session's size, set by the device last typed in; type here or press Fit to fit it to this window";
      tools.fit.setAttribute("aria-pressed", String(driving));
    };
    /** The user typed here, or pressed Fit: take the session's size. */
    const drive = (explicit: boolean): void => {
      if (!ended && policy.drive(explicit)) layout();
    };
    onSession = (session) => {
      sessionName = session.name || session.command || "Terminal";
      showTitle();
      const switched = policy.heard({ cols: session.cols, rows: session.rows });
      if (switched || policy.mode === "watch") layout();
    };

    // -- tools -------------------------------------------------------------------------------
    const changeFont = (step: number): void => {
      fontSize = stepFontSize(fontSize, step);
      saveFontSize(fontSize);
      layout();
    };
    const copy = async (): Promise<void> => {
      const selected = term.hasSelection() ? term.getSelection() : "";
      const text = selected || visibleText(term);
      const ok = await copyText(text);
      toast.show(ok ? copiedNote(text, selected === "") : "Copy refused by the browser: select the text and use its menu");
    };
    const showNotifyState = (): void => {
      tools.notify.setAttribute("aria-pressed", String(notifier.enabled));
      tools.notify.title = notifier.blocked
        ? "Notifications are blocked for this site in the browser's settings"
        : notifier.enabled
          ? "Notifying of bells and exit when this tab is not in front: press to stop"
          : "Notify me of bells and exit when this tab is not in front";
    };
    const tools = toolsBar(
      {
        fit: () => {
          drive(true);
          term.focus();
        },
        fontSmaller: () => changeFont(-1),
        fontLarger: () => changeFont(1),
        copy: () => void copy(),
        search: () => (searchBar.isOpen ? searchBar.close() : searchBar.open()),
        notifications: () => {
          void notifier.toggle().then(() => {
            showNotifyState();
            toast.show(notifier.enabled ? "Notifications on" : notifier.blocked ? "Notifications are blocked" : "Notifications off");
          });
        },
        fullscreen: () => {
          if (document.fullscreenElement) void document.exitFullscreen();
          else void document.documentElement.requestFullscreen().catch(() => undefined);
        },
      },
      { readOnly, notifications: notifier.supported },
    );
    header.append(tools.el);
    searchBar.onToggle = (open) => tools.search.setAttribute("aria-expanded", String(open));
    showNotifyState();
    const onFullscreen = (): void => tools.fullscreen.setAttribute("aria-pressed", String(document.fullscreenElement !== null));
    document.addEventListener("fullscreenchange", onFullscreen);

    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return true;
      if (event.code === "KeyF") {
        event.preventDefault();
        searchBar.open();
        return false;
      }
      if (event.code === "KeyC" && term.hasSelection()) {
        event.preventDefault();
        void copy();
        return false;
      }
      return true;
    });

    // -- input -------------------------------------------------------------------------------
    const keys = new KeysBar({
      send: (data) => {
        drive(false);
        input(data);
      },
      applicationCursor: () => term.modes.applicationCursorKeysMode,
      focus: () => term.focus(),
    });
    if (!readOnly) main.append(keys.el);

    // xterm's data is also its answers to a program's queries: only data right after a key,
    // a paste or a composition is the user typing, which takes the session's size.
    let typedAt = -Infinity;
    const typed = (): void => {
      typedAt = performance.now();
    };
    for (const type of ["keydown", "beforeinput", "paste", "compositionend"]) host.addEventListener(type, typed, true);
    term.onData((data) => {
      if (performance.now() - typedAt < TYPED_WINDOW_MS) drive(false);
      input(keys.transform(data));
    });
    term.onBinary((data) => input(data));

    // -- what the program says ---------------------------------------------------------------
    term.onTitleChange((text) => {
      programTitle = text.trim();
      showTitle();
    });
    term.onBell(() => {
      stage.classList.remove("bell");
      void stage.offsetWidth; // restart the flash
      stage.classList.add("bell");
      notifier.notify(`Bell: ${programTitle || sessionName || "terminal"}`, "The program rang the bell.", `bell-${id}`);
    });

    // -- layout ------------------------------------------------------------------------------
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

    const onLayout = debounce(layout, RESIZE_DEBOUNCE_MS);
    const observer = new ResizeObserver(() => onLayout());
    observer.observe(host);
    window.addEventListener("resize", onLayout);
    host.addEventListener("click", () => term.focus());
    if (createdHere) policy.drive(true);
    if (heard) onSession(heard);
    layout();

    // -- connection --------------------------------------------------------------------------
    const feed = new SessionFeed(
      () => ctx.api.sessionEventsUrl(id),
      () => ctx.api.getSession(id, true),
      { onSession: (session) => onSession(session), onGone: () => undefined },
    );
    connection = new TerminalConnection(() => ctx.api.socketUrl(id), {
      onOpen: () => {
        // The server replays the current screen on every (re)connection: start from blank.
        term.reset();
        // A resize that never left (typed or fitted while the socket was down) goes now.
        if (unsentResize && policy.mode === "drive") sendResize({ cols: term.cols, rows: term.rows });
        feed.wake();
      },
      onOutput: (data, written) => term.write(data, written),
      whyClosed: (reason) => askServer(() => ctx.api.getSession(id, true), reason),
      onState: (state) => {
        setText(status, describeState(state));
        status.className = `status ${stateTone(state)}`;
        if (state.kind === "reconnecting") {
          overlay.show(`The session keeps running. Reconnecting in ${(state.delayMs / 1000).toFixed(1)} s…`);
        } else {
          overlay.hide();
        }
        if (state.kind === "ended" || state.kind === "not-found" || state.kind === "protocol-error") {
          ended = true;
          term.options.disableStdin = true;
          term.options.cursorBlink = false;
          feed.stop();
        }
        if (state.kind === "ended") {
          const code = state.exitCode === null ? "" : ` with exit code ${state.exitCode}`;
          notifier.notify(`${programTitle || sessionName || "Session"} ended`, `The session ended${code}.`, `exit-${id}`);
        }
        if (state.kind === "unauthorized") {
          ctx.auth.signOut("Your access to this session was refused. Please sign in again.");
        }
      },
    });
    const wake = (): void => {
      if (document.visibilityState === "visible") connection?.retryNow();
      else unsentResize = false; // a hidden tab does not take the size when it comes back
    };
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("online", wake);
    connection.start();
    feed.start();
    term.focus();

    return () => {
      connection?.dispose();
      feed.stop();
      observer.disconnect();
      for (const timer of timers) window.clearTimeout(timer);
      toast.dispose();
      window.removeEventListener("resize", onLayout);
      viewport?.removeEventListener("resize", followViewport);
      document.documentElement.style.removeProperty("--app-height");
      document.removeEventListener("visibilitychange", wake);
      document.removeEventListener("fullscreenchange", onFullscreen);
      window.removeEventListener("online", wake);
      onLayout.cancel();
      term.dispose();
    };
  }

  return { dispose };
}

/** The text on the terminal's screen now (what a phone copies when nothing is selected). */
function visibleText(term: XTerm): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = buffer.viewportY; y < buffer.viewportY + term.rows; y++) {
    lines.push(buffer.getLine(y)?.translateToString(true) ?? "");
  }
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}

interface XtermModules {
  Terminal: typeof import("@xterm/xterm").Terminal;
  FitAddon: typeof import("@xterm/addon-fit").FitAddon;
  WebLinksAddon: typeof import("@xterm/addon-web-links").WebLinksAddon;
  SearchAddon: typeof import("@xterm/addon-search").SearchAddon;
  Unicode11Addon: typeof import("@xterm/addon-unicode11").Unicode11Addon;
}

/** xterm.js is loaded only by the terminal page (a separate chunk). */
async function loadXterm(): Promise<XtermModules> {
  const [xterm, fit, links, search, unicode] = await Promise.all([
    import("@xterm/xterm"),
    import("@xterm/addon-fit"),
    import("@xterm/addon-web-links"),
    import("@xterm/addon-search"),
    import("@xterm/addon-unicode11"),
  ]);
  return {
    Terminal: xterm.Terminal,
    FitAddon: fit.FitAddon,
    WebLinksAddon: links.WebLinksAddon,
    SearchAddon: search.SearchAddon,
    Unicode11Addon: unicode.Unicode11Addon,
  };
}
