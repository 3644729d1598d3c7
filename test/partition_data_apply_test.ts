/**
 * PartitionData.applyEntry (src/map/partition_data.ts) on writes whose keys and values are views
 * into one received frame, as a backup gets them: the records, the digest (the XOR over the
 * records of murmur3(value, murmur3(key, murmur3(map name, seed))), seeds 1 and 2), the entry
 * events and the log are what the writes say, and nothing it keeps (records, log, events,
 * tombstones) is a view into the frame: the frame can be reused without changing any of them.
 */
import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import { type LogEntry, PartitionData } from "../src/map/partition_data.ts";
import { murmur3_32 } from "../src/partition/murmur3.ts";

const te = new TextEncoder(), td = new TextDecoder();

/** The digest of `d`'s records computed by the rule, from their bytes. */
function digestByRule(d: PartitionData): [number, number] {
  const out: [number, number] = [0, 0];
  for (const [m, s] of d.maps) {
    const name = te.encode(m);
    for (const r of s.values()) {
      for (const i of [0, 1] as const) {
        out[i] = (out[i] ^ murmur3_32(r.value, murmur3_32(r.key, murmur3_32(name, i + 1)))) >>> 0;
      }
    }
  }
  return out;
}

describe("applyEntry", () => {
  test("records, digest, events and log follow the writes; nothing held is a view of the frame", () => {
    const rng = new Random(7);
    const d = new PartitionData(0, { dedupe: 64, log: 64, events: 1000, eventBytes: 1 << 20 });
    const model = new Map<string, string>();
    const events: string[] = [];
    const frames: Uint8Array[] = [];
    for (let seq = 1; seq <= 400; seq++) {
      // One frame per write, holding its keys and values (and other bytes around them).
      const frame = new Uint8Array(4096).fill(0x55);
      frames.push(frame);
      let at = 100;
      const view = (text: string) => {
        const b = te.encode(text);
        frame.set(b, at);
        at += b.length + 3;
        return frame.subarray(at - b.length - 3, at - 3);
      };
      const n = 1 + Math.floor(rng.next() * 3);
      const entry: LogEntry = { seq, c: `x${seq}`, r: null, e: [] };
      for (let i = 0; i < n; i++) {
        const m = rng.next() < 0.7 ? "a" : "b";
        const key = `k${Math.floor(rng.next() * 40)}`;
        const id = `${m}/${key}`;
        const at = 1_765_000_000_000 + seq;
        if (rng.next() < 0.25) {
          entry.e.push({ m, k: view(key), v: null, at });
          if (model.has(id)) events.push(`${seq}.${i} removed ${id} old=${model.get(id)}`);
          model.delete(id);
        } else {
          const value = `v${seq}.${i}-${"x".repeat(Math.floor(rng.next() * 200))}`;
          entry.e.push({ m, k: view(key), v: view(value), at });
          events.push(`${seq}.${i} ${model.has(id) ? "updated" : "added"} ${id}=${value} old=${model.get(id)}`);
          model.set(id, value);
        }
      }
      d.applyEntry(entry);
    }
    const check = () => {
      const got = new Map<string, string>();
      for (const [m, s] of d.maps) for (const r of s.values()) got.set(`${m}/${td.decode(r.key)}`, td.decode(r.value));
      expect(got).toEqual(model);
      expect(d.digest).toEqual(digestByRule(d));
      const held = d.events.since({ seq: d.events.coveredFrom, i: Number.MAX_SAFE_INTEGER }, d.seq, 10_000).events;
      const dec = (x?: Uint8Array) => x && td.decode(x);
      expect(
        held.map((e) =>
          `${e.seq}.${e.i} ${e.type} ${e.m}/${dec(e.key)}${e.type === "removed" ? "" : `=${dec(e.value)}`} old=${
            dec(e.oldValue)
          }`
        ),
      ).toEqual(events.slice(events.length - held.length));
      expect(held.length).toBeGreaterThan(100);
      const logged = d.logFrom(d.seq - 20)!;
      expect(logged.length).toBe(21);
      return { held, logged, tombs: [...d.tombstones.values()] };
    };
    const { held, logged, tombs } = check();
    expect(tombs.length).toBeGreaterThan(0);
    const frameBuffers = new Set(frames.map((f) => f.buffer));
    for (const e of held) {
      expect(frameBuffers.has(e.bytes.buffer)).toBe(false);
      if (e.oldValue) expect(frameBuffers.has(e.oldValue.buffer)).toBe(false);
    }
    for (const en of logged) {
      for (const e of en.e) for (const b of [e.k, e.v]) if (b) expect(frameBuffers.has(b.buffer)).toBe(false);
    }
    for (const t of tombs) expect(frameBuffers.has(t.key.buffer)).toBe(false);
    // The frames are reused for other traffic: nothing the partition holds changes.
    for (const f of frames) f.fill(0xaa);
    check();
  });
});
