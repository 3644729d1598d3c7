/**
 * Expiry and entry events between real processes over real WebRTC, Bun and Deno mixed,
 * configured through the CLI (`--map`): 3 members; an SSE listener on a member that
 * survives; writes through REST before and after kill -9 of the master (which is also a
 * primary), read from the Deno member; a TTL entry whose primary dies in the middle of its TTL; a max-idle entry read
 * every 100 ms through the failover.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { readSse, type SseEvent } from "./support/sse.ts";
import { until } from "./support/until.ts";

const started: Member[] = [];
afterAll(() => killAll());
const note = (s: string) => console.log(`${new Date().toISOString()} ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAX_IDLE_MS = 5000;

interface ClusterJson {
  master: string;
  members: { id: string }[];
  partitions: { replicasMissing: number; migrating: number };
}

async function settled(members: Member[], n: number): Promise<void> {
  await until(
    async () => {
      const vs = await Promise.all(members.map((m) => m.json<ClusterJson>("/cluster")));
      const ok = vs.every((v) =>
        v.members.length === n && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
      );
      return ok ? true : undefined;
    },
    90_000,
    `${n} members with full replicas`,
  );
}

const put = (m: Member, path: string, v: unknown) =>
  fetch(m.url + path, { method: "PUT", body: JSON.stringify(v), headers: { "content-type": "application/json" } });

/** Collects SSE events from `url` until `stop()`. */
function listen(url: string) {
  const ac = new AbortController();
  const events: SseEvent<{ key: string; value?: number; seq: number; partition: number }>[] = [];
  let ready!: () => void;
  const opened = new Promise<void>((r) => (ready = r));
  const done = (async () => {
    const res = await fetch(url, { signal: ac.signal, headers: { accept: "text/event-stream" } });
    ready();
    await readSse(res, events);
  })();
  return { events, opened, stop: async () => (ac.abort(), await done.catch(() => {})) };
}

describe("expiry and entry events across processes", () => {
  test("TTL, max-idle and an SSE listener survive kill -9 of the master", async () => {
    // maxIdle 5 s: on a loaded 2-core machine one REST call can stall for seconds.
    const mapArgs = ["--map", "ttl*:ttlMs=8000", "--map", `sess*:maxIdleMs=${MAX_IDLE_MS}`];
    const a = await startMember({ name: "a", runtime: "bun", args: mapArgs });
    const b = await startMember({ name: "b", runtime: "deno", join: a.url, args: mapArgs });
    const c = await startMember({ name: "c", runtime: "bun", join: a.url, args: mapArgs });
    started.push(a, b, c);
    await settled([a, b, c], 3);

    const sse = listen(`${b.url}/maps/ev/events`); // served by the Deno member
    await sse.opened;
    expect((await put(a, "/maps/sess-1/s", "alive")).status).toBe(200);
    // Reads of the max-idle entry every 100 ms, through b, from right after its write to the end of the test.
    let reading = true;
    const readFailures: string[] = [];
    let lastOk = Date.now();
    let longestGapMs = 0;
    const reader = (async () => {
      while (reading) {
        const r = await fetch(`${b.url}/maps/sess-1/s`);
        const now = Date.now();
        if (r.status !== 200) {
          // Say how long before it the last read succeeded: longer than maxIdle means the reads themselves stalled.
          readFailures.push(`${r.status} ${now - lastOk} ms after the last successful read`);
        } else {
          longestGapMs = Math.max(longestGapMs, now - lastOk);
          lastOk = now;
          await r.body?.cancel();
        }
        await sleep(100);
      }
    })();

    for (let i = 0; i < 20; i++) expect((await put(a, `/maps/ttl-1/k${i}`, i)).status).toBe(200);
    const ttlWritten = Date.now(); // every TTL entry was written (acknowledged) by now

    const acked = new Map<string, number[]>();
    const write = async (via: Member, i: number) => {
      const key = `k${i % 25}`;
      const r = await put(via, `/maps/ev/${key}`, i).catch(() => null);
      if (r?.ok) acked.set(key, [...(acked.get(key) ?? []), i]);
    };
    for (let i = 0; i < 100; i++) await write([a, b, c][i % 3], i);
    await sleep(2000);
    note("kill -9 a (master)");
    a.kill9();
    for (let i = 100; i < 200; i++) await write([b, c][i % 2], i);
    await settled([b, c], 2);
    note("2 members with full replicas");

    // TTL: gone for every reader within ttlMs + 1 s of the write, though the primary died mid-TTL.
    await sleep(Math.max(0, ttlWritten + 8000 + 1000 - Date.now()));
    for (const m of [b, c]) {
      for (let i = 0; i < 20; i++) expect((await fetch(`${m.url}/maps/ttl-1/k${i}`)).status).toBe(404);
      expect((await m.json<{ size: number }>("/maps/ttl-1")).size).toBe(0);
    }

    // Max-idle: survived the failover while read; once reading stops, it expires.
    reading = false;
    await reader;
    note(`longest time between two successful reads: ${longestGapMs} ms`);
    expect(readFailures.slice(0, 3)).toEqual([]);
    await sleep(MAX_IDLE_MS + 1000);
    expect((await fetch(`${c.url}/maps/sess-1/s`)).status).toBe(404);

    // The listener saw every acknowledged write, per key in order, without duplicates.
    await sleep(2000);
    await sse.stop();
    const seen = new Map<string, number[]>();
    const others = sse.events.filter((e) => e.event !== "added" && e.event !== "updated");
    expect(others.map((e) => `${e.event} ${JSON.stringify(e.data)}`)).toEqual([]);
    for (const e of sse.events) seen.set(e.data.key, [...(seen.get(e.data.key) ?? []), e.data.value!]);
    let missing = 0;
    for (const [key, values] of acked) {
      const got = seen.get(key) ?? [];
      for (const v of values) if (!got.includes(v)) missing++;
      expect([...got].sort((x, y) => x - y)).toEqual(got);
      expect(new Set(got).size).toBe(got.length);
    }
    note(`${[...acked.values()].flat().length} acknowledged writes, ${sse.events.length} events, ${missing} missing`);
    expect(missing).toBe(0);
  }, 300_000);
});
