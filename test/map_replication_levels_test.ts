/**
 * Unit tests of per-map backup counts (replication_levels.ts) on partition copies, and of
 * the byte limits of a partition copy's buffers (replication log, dedupe records, entry
 * events).
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { MapConfigs } from "../src/map/map_config.ts";
import { EffectCause, type LogEntry, PartitionData } from "../src/map/partition_data.ts";
import { ReplicationLevels } from "../src/map/replication_levels.ts";
import { lockMapOf } from "../src/map/locks.ts";
import { MapBackupOpsMsg } from "../src/map/messages.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const node = { backupCount: 1, asyncBackupCount: 0 };
const configs = new MapConfigs(
  { "two*": { backupCount: 2 }, zero: { backupCount: 0 }, async: { asyncBackupCount: 1 } },
  node,
);
const levels = new ReplicationLevels(configs, node, { backupCount: 2, asyncBackupCount: 0 });

let seq = 0;
beforeEach(() => void (seq = 0));
const put = (m: string, k: string, v: string, c?: string): LogEntry => ({
  seq: ++seq,
  c,
  r: null,
  e: [{ m, k: enc(k), v: enc(v), at: seq }],
});

describe("replication levels", () => {
  test("each map is held by the ranks up to its backups (locks follow their map); writes wait for its sync backups", () => {
    expect(levels.uniform).toBe(false);
    expect(levels.holds("zero", 0)).toBe(true);
    expect(levels.holds("zero", 1)).toBe(false);
    expect(levels.holds("plain", 1)).toBe(true);
    expect(levels.holds("plain", 2)).toBe(false);
    expect(levels.holds("two-a", 2)).toBe(true);
    expect(levels.holds(lockMapOf("zero"), 1)).toBe(false);
    expect(levels.holds(lockMapOf("two-b"), 2)).toBe(true);
    expect(levels.holds("async", 2)).toBe(true);
    expect([levels.sync("zero"), levels.sync("plain"), levels.sync("two-x"), levels.sync("async")]).toEqual([
      0,
      1,
      2,
      1,
    ]);
    const same = new ReplicationLevels(new MapConfigs({ s: { backupCount: 1, ttlMs: 5 } }, node), node, node);
    expect(same.uniform).toBe(true);
    expect(same.holds("s", 3)).toBe(true);
  });

  test("a follower gets the writes of the maps it holds; others come as empty entries without call id", () => {
    const entries = [put("zero", "a", "1", "c1"), put("two-a", "b", "2", "c2")];
    const at1 = levels.filter(entries, 1);
    expect(at1[0]).toEqual({ seq: entries[0].seq, r: null, e: [] });
    // As it travels (every field through the message schema).
    expect(MapBackupOpsMsg.safeParse({ t: 100, p: 0, e: 1, l: 1, ops: at1 }).success).toBe(true);
    expect(at1[1]).toBe(entries[1]);
    expect(levels.filter(entries, 0)).toBe(entries);
  });

  test("the copy of a follower has the digest the primary computes for its level, and so does its snapshot", () => {
    const primary = new PartitionData(0);
    const backup = new PartitionData(0);
    const entries = [put("zero", "a", "1", "c1"), put("plain", "b", "2", "c2"), put("two-a", "c", "3", "c3")];
    for (const e of entries) primary.applyEntry(e);
    for (const e of levels.filter(entries, 2)) backup.applyEntry(e);
    expect(backup.digest).toEqual(levels.digestAt(primary, 2));
    expect([...backup.maps.keys()]).toEqual(["two-a"]);
    // The call ids of writes it does not hold are not deduplicated there (a retry reaching it as primary applies).
    expect([...backup.dedupe.keys()]).toEqual(["c3"]);
    const snap = primary.snapshot(levels.keep(1));
    expect(snap.entries.map((e) => e[0]).sort()).toEqual(["plain", "two-a"]);
    expect(snap.dedupe.map((d) => d[0]).sort()).toEqual(["c2", "c3"]);
    const installed = new PartitionData(0);
    installed.install(snap, 7, 1);
    expect(installed.digest).toEqual(levels.digestAt(primary, 1));
    expect(installed.level).toBe(1);
    // Moving up a rank: the copy drops what it no longer holds and matches the level's digest.
    installed.dropMaps(levels.keep(2)!);
    expect(installed.digest).toEqual(levels.digestAt(primary, 2));
  });

  test("a new primary pulling a copy that holds fewer maps keeps its own of the others", () => {
    const mine = new PartitionData(0);
    const ahead = new PartitionData(0);
    const a = [put("plain", "p", "1", "c1"), put("two-a", "t", "1", "c2")];
    for (const e of a) mine.applyEntry(e);
    // The source (rank 2) has one more write to "two-a", and holds no "plain".
    const b = [...a, put("two-a", "t", "2", "c3")];
    for (const e of levels.filter(b, 2)) ahead.applyEntry(e);
    const merged = new PartitionData(0);
    merged.install(ahead.snapshot(), 1, 2);
    const keep = levels.keep(2)!;
    merged.adoptMaps(mine, (m) => !keep(m));
    const full = new PartitionData(0);
    for (const e of b) full.applyEntry(e);
    expect(merged.digest).toEqual(full.digest);
    expect(new TextDecoder().decode(merged.maps.get("plain")!.get(enc("p"))!.value)).toBe("1");
    expect([...merged.dedupe.keys()].sort()).toEqual(["c1", "c2", "c3"]);
  });
});

describe("byte limits of a partition copy's buffers", () => {
  test("log, dedupe records and events stay under their byte limits with large values; the newest write stays", () => {
    const d = new PartitionData(0, {
      dedupe: 2048,
      log: 256,
      logBytes: 64 * 1024,
      dedupeBytes: 64 * 1024,
      eventBytes: 64 * 1024,
    });
    const big = "x".repeat(10_000);
    for (let i = 0; i < 500; i++) {
      const e = put("plain", `k${i % 50}`, big + i, `call${i}`);
      e.r = enc(big);
      d.applyEntry(e);
      expect(d.logBytes).toBeLessThanOrEqual(1.5 * 64 * 1024 + 12_000);
      expect(d.dedupeBytes).toBeLessThanOrEqual(64 * 1024);
      expect(d.events.bytes).toBeLessThanOrEqual(64 * 1024 + 25_000);
    }
    expect(d.log.length).toBeGreaterThan(0);
    expect(d.log.at(-1)!.seq).toBe(d.seq);
    expect(d.logFrom(d.seq)).toHaveLength(1);
    expect(d.dedupe.has("call499")).toBe(true);
    expect(d.events.size).toBeGreaterThan(0);
    // Without large values the count limits apply as before.
    const small = new PartitionData(0);
    seq = 0;
    for (let i = 0; i < 600; i++) small.applyEntry(put("plain", `k${i}`, "v", `s${i}`));
    expect(small.log.length).toBeLessThanOrEqual(512);
    expect(small.dedupe.size).toBe(600);
  });

  test("expiry and eviction leave no tombstone (a cache under load would fill them); a removal does", () => {
    const d = new PartitionData(0);
    for (const k of ["a", "b", "c"]) d.applyEntry(put("plain", k, "v"));
    d.applyEntry({ seq: ++seq, e: [{ m: "plain", k: enc("a"), v: null, at: seq, why: EffectCause.Evicted }] });
    d.applyEntry({ seq: ++seq, e: [{ m: "plain", k: enc("b"), v: null, at: seq, why: EffectCause.Expired }] });
    expect(d.tombstones.size).toBe(0);
    d.applyEntry({ seq: ++seq, e: [{ m: "plain", k: enc("c"), v: null, at: seq }] });
    expect(d.tombstones.size).toBe(1);
  });
});
