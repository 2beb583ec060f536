/** The sign-in form: shown when the server wants a password and this tab has no valid token. */

import type { AppContext, Page } from "./app-context";
import { h, replaceChildren } from "./dom";
import { ApiError } from "./http";

export function mountSignInPage(root: HTMLElement, ctx: AppContext, message: string, onSignedIn: () => void): Page {
  document.title = "Sign in · VibeTunnel";
  const notice = h("p", { class: "error", role: "alert", hidden: message === "" }, message);
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-label": "Sign in" },
    h("h1", {}, "VibeTunnel"),
    h("p", { class: "hint" }, "Enter the server's password to reach your terminals."),
    notice,
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), password),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    ctx.auth
      .login(password.value)
      .then(onSignedIn, (e: unknown) => {
        let text = e instanceof Error ? e.message : String(e);
        if (e instanceof ApiError && e.status === 401 && !e.code) text = "Wrong password.";
        notice.textContent = text;
        notice.hidden = false;
        password.select();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  replaceChildren(root, h("main", { class: "content narrow" }, form));
  password.focus();
  return { dispose: () => undefined };
}
