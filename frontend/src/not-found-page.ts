/** Any path the app does not know (the server answers it with status 404 and this page). */

import type { AppContext, Page } from "./app-context";
import { topBar } from "./chrome";
import { h, replaceChildren } from "./dom";

export function mountNotFoundPage(root: HTMLElement, ctx: AppContext): Page {
  document.title = "Page not found · VibeTunnel";
  replaceChildren(
    root,
    topBar(ctx, null),
    h(
      "main",
      { class: "content" },
      h("h1", {}, "Page not found"),
      h("p", {}, "There is no page at ", h("code", {}, location.pathname), "."),
      h("p", {}, h("a", { href: "/" }, "Back to the sessions")),
    ),
  );
  return { dispose: () => undefined };
}
