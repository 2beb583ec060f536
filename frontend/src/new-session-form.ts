/** The "New session" form of the list page: command, folder, name, and the node of a cluster. */

import type { AppContext } from "./app-context";
import { h } from "./dom";
import { ApiError } from "./http";
import { nodePicker, type NodePicker } from "./nodes";
import { rememberNode } from "./prefs";
import type { ClusterNode, NewSession } from "./types";

/**
 * The body of POST /api/sessions for what the user typed in the form. `node` is sent only when
 * the user picked a node other than the default (""): the default is the server serving the
 * page, which is where the server puts a session that names no node.
 */
export function newSessionBody(
  commandText: string,
  cwd: string,
  name: string,
  size: { cols: number; rows: number } | null,
  node = "",
): NewSession {
  const body: NewSession = {};
  const line = commandText.trim();
  // The shell parses the line, so pipes, quotes and variables work as typed.
  if (line) {
    body.command = "/bin/sh";
    body.args = ["-c", line];
  }
  if (cwd.trim()) body.cwd = cwd.trim();
  if (name.trim()) body.name = name.trim();
  if (size) {
    body.cols = size.cols;
    body.rows = size.rows;
  }
  if (node) body.node = node;
  return body;
}

/** A guess of the terminal size the new session will get in this window (refined on connect). */
function guessSize(): { cols: number; rows: number } {
  const narrow = window.innerWidth <= 600;
  const cell = narrow ? { w: 7.2, h: 15 } : { w: 8.4, h: 17 };
  const clamp = (n: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, Math.floor(n)));
  return {
    cols: clamp((window.innerWidth - 8) / cell.w, 20, 400),
    rows: clamp((window.innerHeight - (narrow ? 110 : 50)) / cell.h, 5, 200),
  };
}

export interface NewSessionForm {
  el: HTMLFormElement;
  toggle(): void;
  onToggle: (open: boolean) => void;
  /** The cluster changed: show, update or hide the node picker. */
  setNodes(nodes: readonly ClusterNode[] | null, own: string | null): void;
}

export function newSessionForm(ctx: AppContext, showError: (message: string) => void): NewSessionForm {
  const field = (id: string, label: string, placeholder: string, autocomplete = "off"): [HTMLElement, HTMLInputElement] => {
    const input = h("input", { id, name: id, type: "text", placeholder, autocomplete, spellcheck: "false", autocapitalize: "off" });
    return [h("div", { class: "field" }, h("label", { for: id }, label), input), input];
  };
  const [commandField, command] = field("new-command", "Command", "default shell");
  const [cwdField, cwd] = field("new-cwd", "Working directory", "home folder");
  const [nameField, name] = field("new-name", "Name", "optional");
  const node = h("select", { id: "new-node", name: "new-node" });
  const nodeField = h("div", { class: "field", hidden: true }, h("label", { for: "new-node" }, "Node"), node);
  /** The node the user picked ("" = the default); kept across updates of the node list. */
  let chosen = "";
  let picker: NodePicker | null = null;
  node.addEventListener("change", () => {
    chosen = node.value;
  });
  const create = h("button", { type: "submit", class: "primary" }, "Create");
  const cancel = h("button", { type: "button" }, "Cancel");
  const el = h(
    "form",
    { id: "new-session", class: "card new-session", hidden: true, "aria-label": "New session" },
    commandField,
    cwdField,
    nameField,
    nodeField,
    h("div", { class: "actions" }, create, cancel),
  );
  const result: NewSessionForm = {
    el,
    toggle(): void {
      el.hidden = !el.hidden;
      result.onToggle(!el.hidden);
      if (!el.hidden) command.focus();
    },
    onToggle: () => undefined,
    setNodes(nodes, own): void {
      const next = nodePicker(nodes, own, chosen);
      // Rebuilt only on a change: an open picker (a phone's sheet) is not disturbed every poll.
      if (JSON.stringify(next) === JSON.stringify(picker)) return;
      picker = next;
      nodeField.hidden = next === null;
      node.replaceChildren(
        ...(next?.options ?? []).map((option) =>
          h("option", { value: option.value, disabled: option.disabled }, option.label),
        ),
      );
      node.value = next?.value ?? "";
    },
  };
  cancel.addEventListener("click", () => result.toggle());
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    create.disabled = true;
    const body = newSessionBody(command.value, cwd.value, name.value, guessSize(), picker === null ? "" : node.value);
    ctx.api
      .createSession(body)
      .then((session) => {
        showError("");
        // Made here without naming a node: the server put it on its own node.
        if (body.node === undefined && session.node) rememberNode(session.node);
        // Made for this window: its terminal page fits it at once (and only this once).
        ctx.navigate(`/sessions/${encodeURIComponent(session.id)}`, false, { fit: true });
      })
      .catch((e: unknown) => {
        if (!(e instanceof ApiError && e.status === 401)) showError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => {
        create.disabled = false;
      });
  });
  return result;
}
