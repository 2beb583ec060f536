/** JSON over fetch, turning the server's error shape into one exception type. */

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly code: string = "",
    readonly requestId: string = "",
  ) {
    super(message);
  }
}

export interface RequestOptions {
  body?: unknown;
  token?: string | null;
  /** More request headers (the sign-in's proof). */
  headers?: Record<string, string>;
  /** Expect text (not JSON) back. */
  text?: boolean;
}

/** Send a request; resolve with the parsed body (undefined for 204), reject with ApiError. */
export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...opts.headers, Accept: opts.text ? "*/*" : "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.token) headers["Authorization"] = `Bearer ${opts.token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "Cannot reach the VibeTunnel server.", "network");
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return undefined as T;
  if (opts.text) return (await response.text()) as T;
  return (await response.json()) as T;
}

async function errorFrom(response: Response): Promise<ApiError> {
  const requestId = response.headers.get("X-Request-ID") ?? "";
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  const error = isRecord(body) && isRecord(body["error"]) ? body["error"] : null;
  const message =
    error && typeof error["message"] === "string" && error["message"]
      ? error["message"]
      : defaultMessage(response);
  const code = error && typeof error["code"] === "string" ? error["code"] : "";
  const rid = error && typeof error["requestId"] === "string" ? error["requestId"] : requestId;
  return new ApiError(response.status, message, code, rid);
}

function defaultMessage(response: Response): string {
  if (response.status === 401) return "Please sign in.";
  if (response.status === 429) return "Too many requests: wait a moment and try again.";
  return `The server answered ${response.status} ${response.statusText}`.trim();
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
