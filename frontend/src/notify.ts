/**
 * Desktop notifications for a terminal that is not in front of the user: the program rang the
 * bell, or the session ended. They are on once the browser allows them (the page asks when
 * the user presses the bell button), and the same button turns them off again here.
 */

import { muteNotifications, notificationsMuted } from "./prefs";

export class Notifier {
  /** Whether this browser, on this page, can show notifications at all. */
  readonly supported = "Notification" in window && window.isSecureContext;

  /** Notifications will be shown (allowed by the browser, not turned off by the user). */
  get enabled(): boolean {
    return this.supported && Notification.permission === "granted" && !notificationsMuted();
  }

  /** The browser refuses them (the user said no): the button can only say so. */
  get blocked(): boolean {
    return this.supported && Notification.permission === "denied";
  }

  /** Turn notifications on (asking the browser when needed) or off; returns `enabled`. */
  async toggle(): Promise<boolean> {
    if (!this.supported) return false;
    if (this.enabled) {
      muteNotifications(true);
      return false;
    }
    if (Notification.permission === "default") await Notification.requestPermission();
    if (Notification.permission === "granted") muteNotifications(false);
    return this.enabled;
  }

  /**
   * Show a notification when the user is not looking at this page (it is hidden, or its window
   * is not focused): someone looking at the terminal sees the bell already. `tag` makes a new
   * one replace the last of the same kind rather than pile up.
   */
  notify(title: string, body: string, tag: string): void {
    if (!this.enabled || (document.visibilityState === "visible" && document.hasFocus())) return;
    try {
      const note = new Notification(title, { body, tag, icon: "/assets/favicon.svg" });
      note.onclick = () => {
        window.focus();
        note.close();
      };
    } catch {
      // some mobile browsers allow only service-worker notifications: nothing to show
    }
  }
}
