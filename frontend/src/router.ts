/** Which page a path shows. The server sends the same index.html for every one of them. */

export type Route =
  | { page: "sessions" }
  | { page: "terminal"; id: string }
  | { page: "recordings" }
  | { page: "not-found" };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  // `/login` is where a sign-in lands: the list, behind the sign-in form when one is needed.
  if (path === "/" || path === "/sessions" || path === "/login") return { page: "sessions" };
  if (path === "/recordings") return { page: "recordings" };
  const match = /^\/sessions\/([^/]+)$/.exec(path);
  if (match?.[1]) {
    try {
      return { page: "terminal", id: decodeURIComponent(match[1]) };
    } catch {
      return { page: "not-found" };
    }
  }
  return { page: "not-found" };
}
