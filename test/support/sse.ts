/**
 * Reading a server-sent-events body in tests (map events, topic streams), as EventSource does:
 * blocks split by a blank line, `event:` (default "message"), `id:` and a JSON `data:` line;
 * a block without data (a comment, a keep-alive) dispatches nothing. Runs under Bun and Deno.
 */

/** One event of the stream. */
export interface SseEvent<T = Record<string, unknown>> {
  event: string;
  id?: string;
  data: T;
}

/**
 * The events of `res`, in order, as they arrive, until the body ends. A caller that stops
 * pulling stops reading the body (so the server's stream falls behind, as a slow client's).
 */
export async function* sseEvents<T>(res: Response): AsyncGenerator<SseEvent<T>> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const e: Partial<SseEvent<T>> & { event: string } = { event: "message" };
        let data: string | undefined;
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("id: ")) e.id = line.slice(4);
          else if (line.startsWith("data: ")) data = line.slice(6);
        }
        if (data !== undefined) yield { ...e, data: JSON.parse(data) as T };
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Reads the body of `res` to its end (or until its fetch is aborted), pushing each event to
 * `events` as it arrives, so a test can watch the list grow.
 */
export async function readSse<T>(res: Response, events: SseEvent<T>[]): Promise<void> {
  try {
    for await (const e of sseEvents<T>(res)) events.push(e);
  } catch {
    // aborted
  }
}
