/**
 * The `map` sink: puts each record into an IMap under its id as a decimal string, so
 * `GET /maps/<map>/42` reads record 42. Puts are idempotent (same key, same value), so a
 * task replayed from its last checkpoint rewrites what it already wrote and nothing else:
 * the output stays exact without staging. `prepare` has nothing to flush because every
 * write is awaited before the task moves on.
 */
import { type JobRecord, mapConfigured, type SinkConnector, type SinkWriter } from "./connector.ts";

export const mapSink: SinkConnector = {
  type: "map",
  configure: mapConfigured("map"),
  open(ctx, config): SinkWriter {
    const out = ctx.getMap(config.map as string);
    return {
      async write(records: JobRecord[]) {
        if (records.length === 0) return;
        await out.putAll(records.map((r) => [String(r.id), { id: r.id, value: r.value }] as [unknown, unknown]));
      },
      prepare: () => Promise.resolve(null),
      commit: () => Promise.resolve(),
      pendingCount: () => 0,
    };
  },
};
