/**
 * One HTTP request whose answer is JSON, with a timeout, for shells that read a member's
 * REST API (scripts, benches, multi-process tests).
 */

/** A response with a status outside 200-299. */
export class HttpStatusError extends Error {
  override name = "HttpStatusError";
  /**
   * @param message method, URL, status and the start of the body
   * @param status the HTTP status
   */
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/**
 * Sends `init` (a GET by default) to `url` and parses the answer as JSON.
 *
 * @param url the full URL
 * @param init method, headers and body, as for `fetch`
 * @param timeoutMs abort the request after this long
 * @returns the parsed body
 * @throws HttpStatusError when the status is not 2xx (the message holds the first 200 characters of the body)
 * @throws DOMException (TimeoutError) when no answer came within `timeoutMs`; SyntaxError when the body is not JSON
 * @example
 * ```ts
 * const view = await fetchJson<{ members: unknown[] }>("http://127.0.0.1:7000/cluster");
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function fetchJson<T = any>(url: string, init: RequestInit = {}, timeoutMs = 5_000): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  if (!res.ok) {
    throw new HttpStatusError(`${init.method ?? "GET"} ${url} → ${res.status} ${body.slice(0, 200)}`, res.status);
  }
  return JSON.parse(body) as T;
}
