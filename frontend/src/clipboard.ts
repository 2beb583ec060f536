/** Copying text: the Clipboard API where the page may use it, else the older copy command. */

/**
 * Put `text` on the clipboard; true when it worked. Call it from a user gesture (a click, a
 * key): browsers refuse both ways otherwise. The Clipboard API needs a secure context (HTTPS
 * or localhost); a server reached over plain HTTP on a LAN gets the copy command instead.
 */
export async function copyText(text: string): Promise<boolean> {
  if (window.isSecureContext && navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // refused (no permission, document not focused): try the copy command
    }
  }
  return copyWithCommand(text);
}

function copyWithCommand(text: string): boolean {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.setAttribute("aria-hidden", "true");
  area.style.position = "fixed";
  area.style.opacity = "0";
  area.style.pointerEvents = "none";
  const focused = document.activeElement;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  if (focused instanceof HTMLElement) focused.focus({ preventScroll: true });
  return ok;
}
