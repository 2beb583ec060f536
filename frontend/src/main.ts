/**
 * The app shell: take a token or login token from the address bar, learn whether the server
 * wants a password, then show the page the path names, re-rendering on navigation and sign-out.
 */

import { Api } from "./api";
import type { AppContext, Page } from "./app-context";
import { Auth } from "./auth";
import { h, replaceChildren } from "./dom";
import { ApiError } from "./http";
import { mountRecordingsPage } from "./recordings-page";
import { parseRoute } from "./router";
import { mountNotFoundPage } from "./not-found-page";
import { mountSessionsPage } from "./sessions-page";
import { mountSignInPage } from "./signin-page";
import { mountTerminalPage } from "./terminal-page";

const root = document.getElementById("app") ?? document.body;
const auth = new Auth();
const api = new Api(auth);
let authRequired = false;
let current: Page | null = null;

const ctx: AppContext = {
  api,
  auth,
  navigate(path: string, replace = false, state: unknown = null): void {
    if (replace) history.replaceState(state, "", path);
    else history.pushState(state, "", path);
    render();
  },
};

function show(page: Page): void {
  current?.dispose();
  current = page;
}

function render(signInMessage = ""): void {
  current?.dispose();
  current = null;
  let route = parseRoute(location.pathname);
  if (route.page === "not-found") {
    // Signed in or not: the server answered this path with 404, and the page says so.
    show(mountNotFoundPage(root, ctx));
    return;
  }
  if ((authRequired && !auth.signedIn) || signInMessage) {
    show(mountSignInPage(root, ctx, signInMessage, () => render()));
    return;
  }
  const scoped = auth.scopedSession;
  if (scoped !== null) {
    // A share link opens one session, and only that one.
    if (route.page !== "terminal") {
      history.replaceState(null, "", `/sessions/${encodeURIComponent(scoped)}`);
      route = { page: "terminal", id: scoped };
    } else if (route.id !== scoped) {
      show(
        mountSignInPage(
          root,
          ctx,
          "Access refused: this share link opens another session. Sign in to open this one.",
          () => render(),
        ),
      );
      return;
    }
  }
  switch (route.page) {
    case "sessions":
      show(mountSessionsPage(root, ctx));
      break;
    case "recordings":
      show(mountRecordingsPage(root, ctx));
      break;
    case "terminal":
      show(mountTerminalPage(root, ctx, route.id));
      break;
  }
}

/** Follow in-app links without reloading (and without dropping the terminal's socket twice). */
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const target = event.target instanceof Element ? event.target.closest("a") : null;
  if (!target || target.target || target.hasAttribute("download")) return;
  const url = new URL(target.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) ctx.navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());
auth.onSignedOut((message) => render(message));

async function start(): Promise<void> {
  // Tokens in the address bar are used once, then dropped from it (and from the history).
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  const loginToken = url.searchParams.get("login");
  if (token !== null || loginToken !== null) {
    url.searchParams.delete("token");
    url.searchParams.delete("login");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  let message = "";
  if (token) {
    auth.useBareToken(token);
  } else if (loginToken) {
    try {
      await auth.exchange(loginToken);
    } catch (e) {
      message =
        e instanceof ApiError && e.status !== 0
          ? `This login link no longer works (${e.message}). Sign in with the password.`
          : "Cannot reach the VibeTunnel server.";
    }
  }
  try {
    authRequired = (await api.authConfig()).authRequired;
    if (authRequired && !auth.signedIn) await auth.resume(); // signed in in another tab?
  } catch (e) {
    // An older server without the endpoint: let a 401 say whether a password is needed.
    if (e instanceof ApiError && e.status === 0) {
      replaceChildren(root, h("main", { class: "content" }, h("p", { class: "error", role: "alert" }, e.message)));
      return;
    }
  }
  render(message);
}

void start();
