/**
 * The write log (src/map/write_log.ts) keeps writes as offsets into one buffer per write and
 * builds plain entries again to re-ship them: what it ships is the entry as applied, field
 * for field (a removal's `v: null` stays null, an absent value stays absent), and it holds
 * no view into the frame an entry arrived in.
 */
import { describe, expect, test } from "bun:test";
import { EffectCause, type LogEntry, packBytes, WriteLog } from "../src/map/write_log.ts";

const te = new TextEncoder();

function entry(seq: number): LogEntry {
  const frame = te.encode(`key-${seq}|value-${seq}|k2|other`);
  const at = 1_765_000_000_000 + seq / 1024;
  return {
    seq,
    c: `client-${seq}`,
    w: seq - 1,
    r: { ok: seq },
    o: "caller",
    e: [
      { m: "m", k: frame.subarray(0, 5), v: frame.subarray(6, 13), at, ttl: 500, mi: 250 },
      { m: "m", k: frame.subarray(14, 16), v: null, at, why: EffectCause.Expired },
      { m: "m", k: frame.subarray(17, 22), at, touch: true },
      { m: "n", k: new Uint8Array(0), v: new Uint8Array(0), at },
      { m: "m", at, floor: true },
      { m: "m", at, clear: true },
      { m: "n", at, destroy: true },
    ],
  };
}

/** A deep copy with fresh byte arrays (the entry as it was before the log saw it). */
function copy(en: LogEntry): LogEntry {
  return structuredClone({ ...en, e: en.e.map((e) => ({ ...e, k: e.k?.slice(), v: e.v?.slice() ?? e.v })) });
}

describe("write log", () => {
  test("re-ships each write exactly as applied, from its own buffer", () => {
    const log = new WriteLog(256, 1 << 20);
    const applied: LogEntry[] = [];
    for (let seq = 1; seq <= 5; seq++) {
      const en = entry(seq);
      const want = copy(en);
      const buf = packBytes(en);
      log.push(en, buf);
      applied.push(want);
    }
    // A write without a plain entry to build from the caller's side: a minimal one.
    log.push({ seq: 6, e: [{ m: "m", k: te.encode("x"), v: te.encode("y"), at: 1 }] }, null);
    applied.push({ seq: 6, e: [{ m: "m", k: te.encode("x"), v: te.encode("y"), at: 1 }] });
    expect(log.from(1, 6)).toEqual(applied);
    expect(log.from(4, 6)).toEqual(applied.slice(3));
    expect(log.from(7, 6)).toEqual([]);
    const shipped = log.from(6, 6)![0].e[0];
    expect(Object.keys(shipped).sort()).toEqual(["at", "k", "m", "v"]);
    expect(log.at(0)!.e[1].v).toBeNull();
    expect(log.at(0)!.e[2].v).toBeUndefined();
    // The bytes are the write's own, not the frame's.
    for (const w of log.values()) {
      for (const e of w.e) if (e.kl > 0) expect(e.k!.buffer.byteLength).toBeLessThan(40);
    }
  });

  test("keeps at most its limits, newest kept, and says when it no longer reaches back", () => {
    const log = new WriteLog(4, 1 << 20);
    for (let seq = 1; seq <= 20; seq++) {
      const en = entry(seq);
      log.push(en, packBytes(en));
    }
    expect(log.length).toBeLessThanOrEqual(8);
    expect(log.at(-1)!.seq).toBe(20);
    expect(log.from(1, 20)).toBeNull();
    expect(log.from(17, 20)!.map((e) => e.seq)).toEqual([17, 18, 19, 20]);
    const small = new WriteLog(256, 100);
    for (let seq = 1; seq <= 20; seq++) small.push(entry(seq), null);
    expect(small.length).toBe(1);
    expect(small.bytes).toBeGreaterThan(100);
    small.clear();
    expect([small.length, small.bytes, small.from(1, 0)]).toEqual([0, 0, []]);
  });
});
