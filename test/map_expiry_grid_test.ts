import { describe, expect, test } from "bun:test";
import type { DataGridConfig } from "../src/map/data_grid.ts";
import type { EntryEvent, GapEvent } from "../src/map/entry_events.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { encodeValue } from "../src/wire/codec.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 13;

async function cluster(n: number, config: Partial<DataGridConfig> = {}) {
  const h = new GridHarness({ config: { partitionCount: P, ...config } });
  for (let i = 0; i < n; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

/** Members (live) whose replica of `key`'s partition still holds it. */
function holders(h: GridHarness, map: string, key: string): string[] {
  const k = encodeValue(key);
  const p = partitionOf(key, P);
  return h.live().filter((m) => m.grid.maps.debugLocalValue(p, map, k) !== undefined).map((m) => m.id);
}

function primaryOf(h: GridHarness, key: string): string {
  return h.live()[0].grid.partitions.table.replicas[partitionOf(key, P)][0];
}

describe("TTL", () => {
  test("an entry is gone from every replica within ttlMs + 1 s, and reads as absent once expired", async () => {
    const h = await cluster(3);
    const m = h.members.get("n0")!.grid.getMap<string, number>("m");
    const t0 = h.clock.now();
    for (let i = 0; i < 20; i++) await h.until(m.set(`k${i}`, i, { ttlMs: 2000 }));
    await h.until(m.set("forever", 1));
    expect(holders(h, "m", "k3").length).toBe(2);
    expect(await h.until(m.get("k3"))).toBe(3);
    await h.run(t0 + 2000 - h.clock.now() + 1000);
    for (let i = 0; i < 20; i++) expect(holders(h, "m", `k${i}`)).toEqual([]);
    expect(await h.until(m.get("k3"))).toBeUndefined();
    expect(await h.until(m.get("forever"))).toBe(1);
    expect(await h.until(m.size())).toBe(1);
    h.stop();
  });

  test("the map's configured TTL applies, and an update starts it again", async () => {
    const h = await cluster(2, { maps: { "sess*": { ttlMs: 1000 } } });
    const m = h.members.get("n1")!.grid.getMap<string, string>("sessions");
    const other = h.members.get("n1")!.grid.getMap<string, string>("other");
    await h.until(m.set("a", "1"));
    await h.until(other.set("a", "1"));
    await h.run(600);
    await h.until(m.put("a", "2"));
    await h.run(600);
    expect(await h.until(m.get("a"))).toBe("2");
    await h.run(500);
    expect(await h.until(m.get("a"))).toBeUndefined();
    expect(await h.until(other.get("a"))).toBe("1");
    await h.until(m.set("b", "x", { ttlMs: 0 }));
    await h.run(3000);
    expect(await h.until(m.get("b"))).toBe("x");
    h.stop();
  });

  test("a backup promoted after kill -9 of the primary in the middle of the TTL expires the entry on time", async () => {
    const h = await cluster(3);
    const key = "victim";
    const client = h.members.get(primaryOf(h, key) === "n2" ? "n1" : "n2")!;
    const m = client.grid.getMap<string, number>("m");
    const t0 = h.clock.now();
    await h.until(m.set(key, 1, { ttlMs: 4000 }));
    await h.run(1500);
    const dead = primaryOf(h, key);
    h.crash(dead, 1000);
    await h.run(t0 + 4000 - h.clock.now() - 200);
    expect(holders(h, "m", key).length).toBeGreaterThan(0); // the promoted copy still holds it before the TTL
    await h.run(1200);
    expect(holders(h, "m", key)).toEqual([]);
    expect(await h.until(m.get(key))).toBeUndefined();
    h.stop();
  });
});

describe("max-idle", () => {
  test("an entry read every 100 ms survives 10 s and a failover, and expires once reading stops", async () => {
    const h = await cluster(3);
    const key = "session-1";
    const reader = h.members.get(primaryOf(h, key) === "n2" ? "n1" : "n2")!;
    const m = reader.grid.getMap<string, string>("m");
    await h.until(m.set(key, "alive", { maxIdleMs: 1000 }));
    const start = h.clock.now();
    let crashed = false;
    while (h.clock.now() - start < 10_000) {
      expect(await h.until(m.get(key))).toBe("alive");
      if (!crashed && h.clock.now() - start > 4000) {
        h.crash(primaryOf(h, key), 1000);
        crashed = true;
      }
      await h.run(100);
    }
    expect(crashed).toBe(true);
    expect(holders(h, "m", key).length).toBe(2);
    await h.run(1500);
    expect(holders(h, "m", key)).toEqual([]);
    expect(await h.until(m.get(key))).toBeUndefined();
    h.stop();
  });
});

describe("eviction", () => {
  test("a member stays at its maxSizePerMember, and evicted entries are gone on the backups too", async () => {
    const limit = 40;
    const h = await cluster(3, { maps: { "cache*": { maxSizePerMember: limit, eviction: "lru" } } });
    const m = h.members.get("n0")!.grid.getMap<number, number>("cache-1");
    for (let i = 0; i < 400; i++) {
      await h.until(m.set(i, i));
      if (i % 50 === 0) {
        for (const mem of h.live()) {
          const own = mem.grid.localMaps().find((x) => x.name === "cache-1")?.size ?? 0;
          expect(own).toBeLessThanOrEqual(limit);
        }
      }
    }
    await h.run(500);
    let total = 0;
    for (const mem of h.live()) {
      const own = mem.grid.localMaps().find((x) => x.name === "cache-1")?.size ?? 0;
      expect(own).toBeLessThanOrEqual(limit);
      total += own;
    }
    expect(total).toBeGreaterThan(limit * 3 * 0.9);
    // Backups hold exactly the primaries' entries (same digest), so evicted entries are gone there too.
    for (let p = 0; p < P; p++) {
      const reps = h.live().map((x) => x.grid.maps.debugReplicas().find((r) => r.p === p)).filter((r) => r);
      expect(new Set(reps.map((r) => `${r!.seq}/${r!.digest}`)).size).toBe(1);
    }
    // The most recent writes survived (LRU).
    expect(await h.until(m.get(399))).toBe(399);
    h.stop();
  });
});

describe("entry listeners", () => {
  test("a listener gets every acknowledged write's event in order per key, with old values, across kill -9 of a primary", async () => {
    const h = await cluster(3);
    const writer = h.members.get("n1")!.grid.getMap<string, number>("m");
    const events: Array<EntryEvent<string, number> | GapEvent> = [];
    const id = await h.until(
      h.members.get("n2")!.grid.getMap<string, number>("m").addEntryListener((e) => void events.push(e)),
    );
    expect(typeof id).toBe("string");
    const acked: Array<[string, number]> = [];
    for (let i = 0; i < 120; i++) {
      const key = `k${i % 10}`;
      if (i === 60) h.crash("n0", 1000);
      try {
        await h.until(writer.set(key, i));
        acked.push([key, i]);
      } catch {
        // indeterminate: may or may not have an event
      }
    }
    await h.until(writer.delete("k1"));
    await h.run(3000);
    expect(events.filter((e) => e.type === "gap")).toEqual([]);
    const byKey = new Map<string, number[]>();
    for (const e of events as Array<EntryEvent<string, number>>) {
      if (e.type === "removed" || e.type === "cleared") continue;
      const l = byKey.get(e.key) ?? [];
      l.push(e.value!);
      byKey.set(e.key, l);
    }
    for (const [key, v] of acked) expect(byKey.get(key)).toContain(v);
    for (const l of byKey.values()) {
      expect([...l].sort((a, b) => a - b)).toEqual(l); // in order per key
      expect(new Set(l).size).toBe(l.length); // exactly once
    }
    const first = (events as EntryEvent<string, number>[]).find((e) => e.key === "k3");
    expect(first?.type).toBe("added");
    const removed = (events as EntryEvent<string, number>[]).find((e) => e.type === "removed");
    expect(removed?.key).toBe("k1");
    expect(removed?.oldValue).toBe(acked.filter(([k]) => k === "k1").at(-1)![1]);
    h.stop();
  });

  test("a listener behind in time, not in events, resumes without a gap on primaries whose copies came by snapshot", async () => {
    // The listener's member stalls (its links slow to 2 s a message) while writes go on and a
    // member joins: primaries move to the new member, each on a copy a snapshot filled. The
    // snapshot carries the last events, so the listener's polls find theirs there.
    const h = await cluster(2);
    const host = await h.add("l", true);
    await h.run(2000);
    const writer = h.members.get("n1")!.grid.getMap<string, number>("m");
    const events: Array<EntryEvent<string, number> | GapEvent> = [];
    await h.until(host.grid.getMap<string, number>("m").addEntryListener((e) => void events.push(e)));
    const acked: Array<[string, number]> = [];
    const write = async (i: number) => {
      await h.until(writer.set(`k${i % 10}`, i));
      acked.push([`k${i % 10}`, i]);
    };
    for (let i = 0; i < 20; i++) await write(i);
    for (const id of ["n0", "n1"]) for (const [a, b] of [["l", id], [id, "l"]]) h.net.setLink(a, b, { delayMs: 2000 });
    for (let i = 20; i < 40; i++) await write(i);
    await h.add("n2");
    await h.run(5000);
    // Partitions the new member is primary of now, that held events the listener had not received.
    const moved = new Set(
      [...Array(10).keys()].map((i) => partitionOf(`k${i}`, P)).filter((p) =>
        h.members.get("n0")!.grid.partitions.table.replicas[p][0] === "n2"
      ),
    );
    for (let i = 40; i < 60; i++) await write(i);
    for (const id of ["n0", "n1"]) for (const [a, b] of [["l", id], [id, "l"]]) h.net.setLink(a, b, { delayMs: 1 });
    await h.run(10_000);
    expect(events.filter((e) => e.type === "gap")).toEqual([]);
    const heard = new Set((events as EntryEvent<string, number>[]).map((e) => `${e.key}=${e.value}`));
    expect(acked.filter(([k, v]) => !heard.has(`${k}=${v}`))).toEqual([]);
    expect(moved.size).toBeGreaterThan(0);
    h.stop();
  });

  test("expired and evicted entries emit events; a key filter and includeValue: false apply", async () => {
    const h = await cluster(2, { maps: { c: { maxSizePerMember: 5 } } });
    const g = h.members.get("n0")!.grid;
    const seen: string[] = [];
    const forKey: Array<EntryEvent<string, string> | GapEvent> = [];
    await h.until(g.getMap<string, string>("t").addEntryListener((e) => void seen.push(`t:${e.type}`)));
    await h.until(g.getMap<string, string>("c").addEntryListener((e) => void seen.push(`c:${e.type}`)));
    await h.until(
      g.getMap<string, string>("t").addEntryListener((e) => void forKey.push(e), { key: "x", includeValue: false }),
    );
    await h.until(g.getMap<string, string>("t").set("x", "1", { ttlMs: 500 }));
    await h.until(g.getMap<string, string>("t").set("y", "1"));
    for (let i = 0; i < 20; i++) await h.until(g.getMap<string, string>("c").set(`k${i}`, "v"));
    await h.run(2000);
    expect(seen.filter((s) => s === "t:added").length).toBe(2);
    expect(seen).toContain("t:expired");
    expect(seen.filter((s) => s === "c:evicted").length).toBeGreaterThanOrEqual(20 - 10);
    expect(forKey.map((e) => e.type)).toEqual(["added", "expired"]);
    expect(forKey.every((e) => e.type === "gap" || (e.value === undefined && e.oldValue === undefined))).toBe(true);
    h.stop();
  });

  test("events() iterates until aborted, and a removed listener hears nothing more", async () => {
    const h = await cluster(2);
    const map = h.members.get("n1")!.grid.getMap<string, number>("m");
    const ac = new AbortController();
    const got: number[] = [];
    const it = map.events({ signal: ac.signal });
    const reading = (async () => {
      for await (const e of it) if (e.type !== "gap") got.push(e.value!);
    })();
    await h.run(500);
    const heard: number[] = [];
    const id = await h.until(map.addEntryListener((e) => void (e.type !== "gap" && heard.push(e.value!))));
    for (let i = 0; i < 5; i++) await h.until(map.set("k", i));
    await h.run(500);
    expect(map.removeEntryListener(id)).toBe(true);
    await h.until(map.set("k", 99));
    await h.run(500);
    ac.abort();
    await h.run(100);
    await reading;
    expect(heard).toEqual([0, 1, 2, 3, 4]);
    expect(got.slice(-1)).toEqual([99]);
    h.stop();
  });
});

describe("idle clocks of backups", () => {
  test("reads on the primary reach the backups' idle clocks within touchFlushMs, as replicated touches", async () => {
    const h = await cluster(2, { map: { housekeeping: { touchFlushMs: 200 } } });
    const key = "s";
    const p = partitionOf(key, P);
    const m = h.members.get("n0")!.grid.getMap<string, string>("m");
    await h.until(m.set(key, "v", { maxIdleMs: 5000 }));
    await h.until(m.set("plain", "v"));
    const written = h.clock.now();
    for (let i = 0; i < 20; i++) {
      await h.until(m.get(key));
      await h.until(m.get("plain"));
      await h.run(100);
    }
    const lastRead = h.clock.now() - 100;
    await h.run(300);
    const row = h.live()[0].grid.partitions.table.replicas[p];
    const backup = h.members.get(row[1])!.grid.maps.debugLocalRecord(p, "m", encodeValue(key))!;
    expect(backup.maxIdleMs).toBe(5000);
    expect(backup.lastAccessAt).toBeGreaterThanOrEqual(lastRead - 300);
    expect(backup.lastAccessAt).toBeGreaterThan(written + 1500);
    // Entries without a max-idle cause no touches: the backup's copy keeps its write time.
    const pp = partitionOf("plain", P);
    const rowP = h.live()[0].grid.partitions.table.replicas[pp];
    const plainBackup = h.members.get(rowP[1])!.grid.maps.debugLocalRecord(pp, "m", encodeValue("plain"))!;
    expect(plainBackup.lastAccessAt).toBeLessThanOrEqual(written);
    h.stop();
  });
});

describe("slow listeners", () => {
  test("a blocked listener never blocks writes; what its queue could not hold is reported as a gap, then delivery continues in order", async () => {
    const h = await cluster(2, { map: { eventsPerPartition: 16, listeners: { queueCapacity: 10, pollBatch: 5 } } });
    const g = h.members.get("n1")!.grid;
    const m = g.getMap<string, number>("m");
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const got: Array<EntryEvent<string, number> | GapEvent> = [];
    await h.until(m.addEntryListener(async (e) => {
      got.push(e);
      await blocked;
    }, { key: "hot" }));
    const t0 = h.clock.now();
    for (let i = 0; i < 100; i++) await h.until(m.set("hot", i));
    expect(h.clock.now() - t0).toBeLessThan(100 * 50); // writes went on at their usual pace
    expect(got.length).toBe(1);
    release();
    await h.run(1000);
    for (let i = 100; i < 105; i++) await h.until(m.set("hot", i)); // after the gap, delivery goes on
    await h.run(2000);
    const gaps = got.filter((e): e is GapEvent => e.type === "gap");
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    const values = got.filter((e): e is EntryEvent<string, number> => e.type !== "gap").map((e) => e.value!);
    expect(values[0]).toBe(0);
    expect(values.slice(-5)).toEqual([100, 101, 102, 103, 104]);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
    // Every write's seq is either delivered or inside a reported gap.
    const seqs = got.filter((e): e is EntryEvent<string, number> => e.type !== "gap").map((e) => e.seq);
    const covered = (s: number) => seqs.includes(s) || gaps.some((g) => s >= g.fromSeq && s <= g.toSeq);
    const all = got.filter((e): e is EntryEvent<string, number> => e.type !== "gap");
    for (let s = all[0].seq; s <= all.at(-1)!.seq; s++) expect(covered(s)).toBe(true);
    h.stop();
  });
});

describe("local listeners", () => {
  test("local: true hears only the partitions this member is primary of", async () => {
    const h = await cluster(3);
    const n1 = h.members.get("n1")!.grid;
    const mine = new Set(n1.partitions.table.replicas.flatMap((r, p) => (r[0] === "n1" ? [p] : [])));
    const heard: number[] = [];
    await h.until(
      n1.getMap<string, number>("m").addEntryListener((e) => void heard.push(e.partition), { local: true }),
    );
    const m = h.members.get("n0")!.grid.getMap<string, number>("m");
    let expected = 0;
    for (let i = 0; i < 60; i++) {
      await h.until(m.set(`k${i}`, i));
      if (mine.has(partitionOf(`k${i}`, P))) expected++;
    }
    await h.run(1500);
    expect(expected).toBeGreaterThan(0);
    expect(heard.length).toBe(expected);
    expect(heard.every((p) => mine.has(p))).toBe(true);
    h.stop();
  });
});

describe("listener limits", () => {
  test("a member refuses a listener that would hold more polls than allowed, and frees them on removal", async () => {
    const h = await cluster(2, { map: { listeners: { maxPolls: 20 } } });
    const m = h.members.get("n0")!.grid.getMap<string, number>("m");
    const id = await h.until(m.addEntryListener(() => {})); // 13 partitions
    const same = await h.until(m.addEntryListener(() => {})); // shares the first one's polls
    await expect(h.until(m.addEntryListener(() => {}, { includeValue: false }))).rejects.toThrow(
      /needs 13 polls .* 13 of at most 20/,
    );
    const keyed = await h.until(m.addEntryListener(() => {}, { key: "a" })); // 1 more
    expect(m.removeEntryListener(id)).toBe(true);
    await expect(h.until(m.addEntryListener(() => {}, { includeValue: false }))).rejects.toThrow(/needs 13 polls/);
    // The last reader of the feed: its polls are freed as they end (each is held on its primary
    // for at most half an attempt timeout), not at once while they are still pending.
    expect(m.removeEntryListener(same)).toBe(true);
    await expect(h.until(m.addEntryListener(() => {}, { includeValue: false }))).rejects.toThrow(/needs 13 polls/);
    await h.run(1000);
    expect(typeof (await h.until(m.addEntryListener(() => {}, { includeValue: false })))).toBe("string");
    expect(m.removeEntryListener(keyed)).toBe(true);
    h.stop();
  });
});

describe("eviction by bytes", () => {
  test("maxBytesPerMember keeps each member's primary bytes of the map under the limit", async () => {
    const limit = 20_000;
    const h = await cluster(2, { maps: { blobs: { maxBytesPerMember: limit, eviction: "lfu" } } });
    const m = h.members.get("n0")!.grid.getMap<number, string>("blobs");
    for (let i = 0; i < 300; i++) await h.until(m.set(i, "x".repeat(200)));
    await h.run(500);
    for (const mem of h.live()) {
      const u = mem.grid.maps.housekeeping.usage.get("blobs");
      expect(u.bytes).toBeLessThanOrEqual(limit);
      expect(u.bytes).toBeGreaterThan(limit * 0.8);
    }
    h.stop();
  });
});

describe("resuming", () => {
  test("a resume from a position the event log no longer holds opens with a gap, then continues from the log", async () => {
    const h = await cluster(2, { map: { eventsPerPartition: 16 } });
    const m = h.members.get("n1")!.grid.getMap<string, number>("m");
    for (let i = 0; i < 50; i++) await h.until(m.set("r", i));
    const p = partitionOf("r", P);
    const sub = await h.until(m.openEvents({ key: "r", from: new Map([[p, { s: 0, i: -1 }]]) }));
    const got: Array<EntryEvent<string, number> | GapEvent> = [];
    void (async () => {
      for await (const e of sub) got.push(e);
    })();
    await h.run(1000);
    expect(got[0]).toMatchObject({ type: "gap", partition: p, fromSeq: 1 });
    const values = got.slice(1).map((e) => (e as EntryEvent<string, number>).value);
    expect(values.length).toBeGreaterThan(0);
    expect(values.at(-1)).toBe(49);
    expect(values).toEqual([...values].sort((a, b) => a! - b!));
    sub.close();
    h.stop();
  });
});

describe("locks and queues under a map's default TTL", () => {
  test("a lock outlives the map's TTL (lock records never expire) while the locked entry expires", async () => {
    const h = await cluster(3, { maps: { "sess*": { ttlMs: 1000 } } });
    const m0 = h.members.get("n0")!.grid.getMap<string, string>("sessions");
    const m1 = h.members.get("n1")!.grid.getMap<string, string>("sessions");
    const token = await h.until(m0.lock("k"));
    await h.until(m0.set("k", "v"));
    await h.run(2500);
    // The entry expired (on every replica); the lock did not.
    expect(await h.until(m1.get("k"))).toBeUndefined();
    expect(holders(h, "sessions", "k")).toEqual([]);
    expect(await h.until(m1.isLocked("k"))).toBe(true);
    expect(await h.until(m1.tryLock("k"))).toBeUndefined();
    expect((await h.until(m1.set("k", "other")).catch((e) => e))?.code).toBe("LOCKED");
    // Still held after a failover of its primary, long past the TTL.
    h.crash(primaryOf(h, "k") === "n0" ? "n1" : primaryOf(h, "k"));
    await h.run(3000);
    expect(await h.until(m0.isLocked("k"))).toBe(true);
    await h.until(m0.unlock("k"));
    const other = h.live().find((m) => m.id !== "n0")!.grid.getMap<string, string>("sessions");
    expect(await h.until(other.lock("k"))).toBeGreaterThan(token);
    h.stop();
  });

  test("isLocked is no access of the entry: it does not keep an idle entry alive (as in Hazelcast)", async () => {
    const h = await cluster(2);
    const m = h.members.get("n0")!.grid.getMap<string, string>("idle");
    await h.until(m.set("k", "v", { maxIdleMs: 1000 }));
    // Asked every 200 ms for 2 s: before, each ask moved the entry's last access and it never expired.
    for (let t = 0; t < 2000; t += 200) {
      expect(await h.until(m.isLocked("k"))).toBe(false);
      await h.run(200);
    }
    await h.run(500);
    expect(await h.until(m.get("k"))).toBeUndefined();
    h.stop();
  });

  test("queue items outlive a wildcard TTL and size limit matching the queue's name; map entries expire and are evicted", async () => {
    // "*" matches every name, the grid's own internal ones included.
    const h = await cluster(2, { maps: { "*": { ttlMs: 1000, maxSizePerMember: 3 } } });
    const g = h.members.get("n1")!.grid;
    const q = g.getQueue<number>("q-jobs");
    for (let i = 0; i < 10; i++) expect(await h.until(q.offer(i))).toBe(true);
    const map = g.getMap<string, number>("q-map");
    for (let i = 0; i < 10; i++) await h.until(map.set(`k${i}`, i));
    await h.run(200);
    expect(await h.until(map.size())).toBeLessThanOrEqual(6); // ≤ 3 per member
    await h.run(2500);
    expect(await h.until(map.size())).toBe(0);
    expect(await h.until(q.size())).toBe(10);
    expect(await h.until(q.drain())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    h.stop();
  });
});
