/**
 * The reliable topic between real processes (Bun and Deno members), over REST and SSE:
 *
 * 1. 4 members. Two SSE subscribers (on a Bun and a Deno member that stay up) subscribe at
 *    the sequence of a marker message; three publishers publish numbered messages one after
 *    another through the surviving members while the ring's primary is killed with kill -9.
 *    Each subscriber sees every acknowledged message, each publisher's in the order it
 *    published them, with sequences rising without a hole and no gap event. A message is seen
 *    twice only if its publish failed and was sent again (the first attempt went through
 *    unanswered); nothing is seen that was not published.
 * 2. A ring of 10: a subscriber that stops reading while 200 messages of 64 KB are published (more than the socket buffers hold) is
 *    told how many it missed (a gap event, and the next message's sequence matches), and one
 *    that resumes (`Last-Event-ID`) from a sequence already dropped gets a gap of exactly the
 *    dropped count.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { call, killAll, type Member, postJson, primaryOf, startSettledCluster } from "./support/cluster.ts";
import { sseEvents } from "./support/sse.ts";
import { until } from "./support/until.ts";

afterAll(() => killAll());
const t0 = Date.now();
const note = (s: string) => console.log(`+${Date.now() - t0} ms ${s}`);

const TOPIC = "news";
const PUBLISH_MS = 10_000;

type Seen = { seq: number; msg: unknown } | { missed: number };

/** Follows `topic` on `m` from sequence `from` until `stop`, reconnecting with Last-Event-ID when a stream ends. */
function follow(m: Member, topic: string, from: number, stop: AbortSignal, seen: Seen[]): { reconnects: number } {
  const stats = { reconnects: -1 };
  void (async () => {
    let last = from - 1;
    while (!stop.aborted) {
      stats.reconnects++;
      try {
        const headers: Record<string, string> = last >= 0 ? { "last-event-id": String(last) } : {};
        const res = await fetch(`${m.url}/topics/${topic}/events${last < 0 ? `?from=${from}` : ""}`, {
          headers,
          signal: stop,
        });
        for await (const e of sseEvents<{ missed?: number }>(res)) {
          if (e.event === "gap") seen.push({ missed: e.data.missed! });
          else if (e.event === "message") (last = Number(e.id), seen.push({ seq: last, msg: e.data }));
        }
      } catch {
        if (!stop.aborted) await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  return stats;
}

/** Sequences from `from` must rise by one, or by one plus the count of the gap just before. */
function holes(seen: Seen[], from: number): string[] {
  const out: string[] = [];
  let expected = from, missed = 0;
  for (const e of seen) {
    if ("missed" in e) {
      missed += e.missed;
      continue;
    }
    if (e.seq !== expected + missed) out.push(`seq ${e.seq} after ${expected - 1} with ${missed} reported missed`);
    expected = e.seq + 1;
    missed = 0;
  }
  return out;
}

describe("reliable topic across processes", () => {
  test(
    "subscribers on surviving members see every message in order across kill -9 of the ring's primary; gaps are reported",
    async () => {
      const { members: all, snap } = await startSettledCluster(["bun", "deno", "bun", "deno"]);
      note("settled");
      const victim = primaryOf(all, snap, TOPIC)!;
      const survivors = all.filter((m) => m !== victim);
      const subOn = [survivors.find((m) => m.runtime === "bun")!, survivors.find((m) => m.runtime === "deno")!];

      // ---- 1: failover -------------------------------------------------------------------------
      const marker = await call(`${survivors[0].url}/topics/${TOPIC}?capacity=50000`, postJson({ marker: true }));
      expect(marker.status).toBe(201);
      const from = marker.body.seq as number;
      const stop = new AbortController();
      const streams = subOn.map((m) => {
        const seen: Seen[] = [];
        return { m, seen, stats: follow(m, TOPIC, from, stop.signal, seen) };
      });
      const acked = [-1, -1, -1];
      const retried = [new Set<number>(), new Set<number>(), new Set<number>()];
      const end = Date.now() + PUBLISH_MS;
      let killedAt = 0;
      await Promise.all(survivors.map(async (via, p) => {
        for (let i = 0; Date.now() < end;) {
          if (!killedAt && Date.now() > end - PUBLISH_MS * 0.6) (killedAt = Date.now(), victim.kill9());
          const r = await call(`${via.url}/topics/${TOPIC}?capacity=50000`, postJson({ p, i }));
          if (r.status === 201) acked[p] = i++;
          else if (r.status === 0 || r.status === 503 || r.status === 504) retried[p].add(i);
          else throw new Error(`publish ${p}/${i}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }));
      note("published");
      // Until every subscriber has the last acknowledged message of every publisher.
      const last = (seen: Seen[], p: number) =>
        Math.max(
          -1,
          ...seen.map((e) => "msg" in e ? e.msg as { p?: number; i?: number } : {}).filter((x) => x.p === p).map((x) =>
            x.i!
          ),
        );
      await until(
        () => streams.every((s) => acked.every((n, p) => last(s.seen, p) >= n)),
        60_000,
        "subscribers caught up",
      );
      stop.abort();
      note("caught up");
      console.log(
        `acked ${acked.map((n) => n + 1).join("/")}, retried ${retried.map((r) => r.size).join("/")}, ` +
          streams.map((s) => `${s.m.name}: ${s.seen.length} events, ${s.stats.reconnects} reconnects`).join(", "),
      );
      for (const s of streams) {
        expect(s.seen[0]).toEqual({ seq: from, msg: { marker: true } });
        expect(s.seen.filter((e) => "missed" in e)).toEqual([]);
        expect(holes(s.seen, from)).toEqual([]);
        for (let p = 0; p < 3; p++) {
          const is = s.seen.flatMap((e) =>
            "msg" in e && (e.msg as { p?: number }).p === p ? [(e.msg as { i: number }).i] : []
          );
          const problems: string[] = [];
          for (let k = 1; k < is.length; k++) {
            if (is[k] < is[k - 1]) problems.push(`${is[k]} after ${is[k - 1]}`);
            if (is[k] === is[k - 1] && !retried[p].has(is[k])) problems.push(`${is[k]} twice, never retried`);
          }
          for (let i = 0; i <= acked[p]; i++) if (!is.includes(i)) problems.push(`acknowledged ${i} missing`);
          if (is.some((i) => i > acked[p] + 1)) problems.push(`a message never published`);
          expect({ subscriber: s.m.name, publisher: p, problems }).toEqual({
            subscriber: s.m.name,
            publisher: p,
            problems: [],
          });
        }
      }

      // ---- 2: gaps on a ring of 10 ---------------------------------------------------------------
      const via = survivors[1];
      const tiny = (i: number, pad = 0) =>
        call(`${via.url}/topics/tiny?capacity=10`, postJson({ i, pad: "x".repeat(pad) }));
      const first = (await tiny(0)).body.seq as number;
      const slowStop = new AbortController();
      const res = await fetch(`${subOn[1].url}/topics/tiny/events?from=${first}`, { signal: slowStop.signal });
      const slow = sseEvents<{ missed?: number }>(res);
      // The stream's start, then its first message.
      const ready = await slow.next();
      expect(ready.value?.event).toBe("ready");
      expect(ready.value?.data).toEqual({ seq: first });
      const head = await slow.next();
      expect(head.value?.id).toBe(String(first));
      // Stop reading while far more than the ring and the socket buffers hold is published.
      let lastSeq = first, sent = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (sent < 200) {
          const r = await tiny(++sent, 64_000);
          expect(r.status).toBe(201);
          lastSeq = Math.max(lastSeq, r.body.seq as number);
        }
      }));
      note("200 published");
      const after: Seen[] = [];
      for (let e = await slow.next(); !e.done; e = await slow.next()) {
        const v = e.value;
        after.push(v.event === "gap" ? { missed: v.data.missed! } : { seq: Number(v.id), msg: null });
        if (v.id === String(lastSeq)) break;
      }
      slowStop.abort();
      const gaps = after.filter((e) => "missed" in e);
      console.log(`slow subscriber: ${gaps.length} gap events, ${after.length - gaps.length} messages after the first`);
      expect(gaps.length).toBeGreaterThan(0);
      expect(holes(after, first + 1)).toEqual([]);
      // Resuming from a sequence already dropped: told exactly how many.
      const resumed = await fetch(`${subOn[0].url}/topics/tiny/events`, {
        headers: { "last-event-id": String(first) },
      });
      const r = sseEvents<{ missed?: number }>(resumed);
      expect((await r.next()).value).toEqual({ event: "ready", data: { seq: first + 1 } });
      const gap = (await r.next()).value!;
      expect(gap.event).toBe("gap");
      expect(gap.data.missed).toBe(lastSeq - 9 - (first + 1));
      expect((await r.next()).value!.id).toBe(String(lastSeq - 9));
      await r.return(undefined);
    },
    300_000,
  );
});
