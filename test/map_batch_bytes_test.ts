/**
 * Reads and writes of large values stay within the 8 MiB message limit (operations.ts
 * MAX_RECORD_BYTES, MAX_WRITE_BYTES, MAX_READ_BYTES). Batches were cut by count only: a getAll,
 * an iteration page or a putAll of 100 values of 100 kB in one partition was dropped by the
 * transport and its caller waited out the 20 s call timeout; a putAll whose caller was the
 * primary was applied there, never reached a backup, and left its keys unreadable; a value near
 * 8 MiB did the same (found by an internal review).
 */
import { describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import { MAX_RESULT_BYTES } from "../src/map/entry_processor.ts";
import { MAX_RECORD_BYTES } from "../src/map/operations.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness, gridStarter } from "./support/grid_harness.ts";

const start = gridStarter(7);
const VALUE = 100_000; // 100 of them in one partition: 10 MB, over the 8 MiB message limit

/** 100 keys of one partition whose primary is `primary`. */
function keysOn(h: GridHarness, primary: string): string[] {
  const table = h.members.get("n0")!.grid.partitions.table;
  const keys: string[] = [];
  let p = -1;
  for (let i = 0; keys.length < 100; i++) {
    const key = `k${i}`, kp = partitionOf(key, 7);
    if (table.replicas[kp][0] !== primary) continue;
    if (p === -1) p = kp;
    if (kp === p) keys.push(key);
  }
  return keys;
}

/** `keys`, each with a value of VALUE bytes. */
const big = (keys: string[]) => keys.map((k) => [k, new Uint8Array(VALUE)] as [string, Uint8Array]);

const settle = <T>(h: GridHarness, p: Promise<T>) => h.until(p, 60_000).then((v) => ({ v }), (e) => ({ e }));

describe("batches of large values", () => {
  test("getAll, keys() and putAll of 10 MB in one partition, from another member: answered, all there", async () => {
    const h = await start(2);
    const keys = keysOn(h, "n1");
    const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
    expect(await settle(h, m.putAll(big(keys)))).toEqual({
      v: undefined,
    });
    expect(await h.until(m.size())).toBe(100);
    const all = await settle(h, m.getAll(keys));
    expect("v" in all && all.v.size).toBe(100);
    let n = 0;
    await h.until(
      (async () => {
        for await (const _ of m.keys()) n++;
      })(),
      60_000,
    );
    expect(n).toBe(100);
    h.stop();
  }, 120_000);

  test("a putAll of 10 MB whose caller is the partition's primary is answered, and its keys read", async () => {
    const h = await start(2);
    const keys = keysOn(h, "n0");
    const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
    expect(await settle(h, m.putAll(big(keys)))).toEqual({
      v: undefined,
    });
    expect((await h.until(m.get(keys[0])))?.byteLength).toBe(VALUE);
    h.stop();
  }, 120_000);

  test(
    "a value over the record limit is refused at once; a write that would grow past it is refused unapplied",
    async () => {
      const h = new GridHarness({
        config: { partitionCount: 7 },
        processors: { "grow": (e) => void (e.value = new Uint8Array(MAX_RECORD_BYTES + 1)) },
      });
      for (const id of ["n0", "n1"]) await h.add(id);
      await h.run(3000);
      const m = h.members.get("n0")!.grid.getMap<string, unknown>("big");
      const big = await settle(h, m.set("k", new Uint8Array(MAX_RECORD_BYTES + 1)));
      expect("e" in big && (big.e as ShoalError).code).toBe("INVALID_ARGUMENT");
      await h.until(m.set("k", 1));
      const grown = await settle(h, m.executeOnKey("k", "grow"));
      expect("e" in grown && (grown.e as ShoalError).code).toBe("INVALID_ARGUMENT");
      expect(await h.until(m.get("k"))).toBe(1);
      h.stop();
    },
    120_000,
  );

  test(
    "a processor rewriting 65 values of 100 kB in one partition: the batch is split, every entry rewritten",
    async () => {
      // Processor calls go by count (keys only): the write of a whole batch was over MAX_WRITE_BYTES
      // and refused; each half now goes as a call of its own.
      const h = new GridHarness({
        config: { partitionCount: 7 },
        processors: { "grow": (e) => void (e.value = new Uint8Array(100_000).fill(2)) },
      });
      for (const id of ["n0", "n1"]) await h.add(id);
      await h.run(3000);
      const keys = keysOn(h, "n1").slice(0, 65);
      const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
      await h.until(m.putAll(big(keys)), 60_000);
      let n = 0;
      await h.until(
        (async () => {
          for await (const _ of m.executeOnEntries("grow")) n++;
        })(),
        60_000,
      );
      expect(n).toBe(65);
      const all = await h.until(m.getAll(keys), 60_000);
      expect([...all.values()].every((v) => v[0] === 2)).toBe(true);
      expect((await h.until(m.executeOnKeys(keys, "grow"), 60_000)).size).toBe(65);
      h.stop();
    },
    120_000,
  );

  test(
    "a processor whose results and values total 20 MB in one partition: answered in parts, every result there",
    async () => {
      // The answer of a batch carried every key's result and value after the call: 1,000 large ones
      // passed the 8 MiB message limit, and the caller waited out its timeout. The primary now runs
      // the first keys up to MAX_READ_BYTES of outcomes and the caller sends the rest again.
      const h = new GridHarness({
        config: { partitionCount: 7 },
        processors: {
          "peek": (e) => e.value,
          "huge": () => new Uint8Array(MAX_RESULT_BYTES + 1),
        },
      });
      for (const id of ["n0", "n1"]) await h.add(id);
      await h.run(3000);
      const keys = keysOn(h, "n1");
      const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
      await h.until(m.putAll(big(keys)), 60_000);
      const got = await settle(h, m.executeOnKeys<Uint8Array>(keys, "peek"));
      expect("v" in got && [...got.v.values()].filter((v) => v.byteLength === VALUE).length).toBe(100);
      let n = 0;
      await h.until(
        (async () => {
          for await (const [, r] of m.executeOnEntries<Uint8Array>("peek")) if (r.byteLength === VALUE) n++;
        })(),
        60_000,
      );
      expect(n).toBe(100);
      // One result over the limit: refused, nothing written.
      const huge = await settle(h, m.executeOnKey(keys[0], "huge"));
      expect("e" in huge && (huge.e as ShoalError).code).toBe("PROCESSOR_FAILED");
      h.stop();
    },
    120_000,
  );
});
