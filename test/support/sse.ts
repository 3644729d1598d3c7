/**
 * A Server-Sent Events reader for the tests over real HTTP (Bun and Deno): yields each event
 * of a `text/event-stream` response as `{ event, id?, data }` until the stream ends.
 */

/** One event of the stream (`event` defaults to "message"). */
export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** The events of `res`, in order, as they arrive. */
export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      buf += r.value;
      for (let cut = buf.indexOf("\n\n"); cut >= 0; cut = buf.indexOf("\n\n")) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const e: SseEvent = { event: "message", data: "" };
        let hasData = false;
        for (const line of block.split("\n")) {
          const i = line.indexOf(":");
          if (i <= 0) continue;
          const field = line.slice(0, i), value = line.slice(i + 1).replace(/^ /, "");
          if (field === "event") e.event = value;
          else if (field === "id") e.id = value;
          else if (field === "data") (e.data += (hasData ? "\n" : "") + value, hasData = true);
        }
        if (hasData) yield e;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
