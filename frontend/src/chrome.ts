/** The top bar shared by the list pages. */

import type { AppContext } from "./app-context";
import { h } from "./dom";

export function topBar(ctx: AppContext, current: "sessions" | "recordings" | null): HTMLElement {
  const link = (href: string, label: string, page: "sessions" | "recordings"): HTMLAnchorElement =>
    h("a", { href, "aria-current": current === page ? "page" : undefined }, label);
  const signOut = ctx.auth.canSignOut
    ? h("button", { type: "button", class: "link-button", onclick: () => void ctx.auth.logout() }, "Sign out")
    : null;
  return h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", class: "brand" }, "VibeTunnel"),
    h("nav", { "aria-label": "Main" }, link("/", "Sessions", "sessions"), link("/recordings", "Recordings", "recordings"), signOut),
  );
}

/** A banner for errors; empty text hides it. */
export function errorBanner(): { el: HTMLElement; show(message: string): void } {
  const el = h("p", { class: "error", role: "alert", hidden: true });
  return {
    el,
    show(message: string): void {
      el.textContent = message;
      el.hidden = message === "";
    },
  };
}
