/** What every page gets from the app shell. */

import type { Api } from "./api";
import type { Auth } from "./auth";

export interface AppContext {
  api: Api;
  auth: Auth;
  /** Go to a path inside the app without reloading the page; `state` goes to history.state. */
  navigate(path: string, replace?: boolean, state?: unknown): void;
}

/** A mounted page; `dispose` stops its timers and sockets. */
export interface Page {
  dispose(): void;
}
