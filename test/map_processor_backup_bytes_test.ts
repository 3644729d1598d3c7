/**
 * A processor write travels to the backups with its result (the dedupe record: each key's result
 * and value after the call) beside its effects (the values again). Processor calls were cut by
 * the size of the answer only, so a call within those limits could make a backup message over
 * the 8 MiB message limit: the transport dropped it, the write never committed, and the caller
 * got INDETERMINATE after its timeout (found by an internal review). A batch is now cut by the
 * three together (MAX_PROCESSOR_BYTES), and one key's call over it is refused, nothing written.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness } from "./support/grid_harness.ts";

function keysOn(h: GridHarness, primary: string, n: number): string[] {
  const table = h.members.get("n0")!.grid.partitions.table;
  const keys: string[] = [];
  let p = -1;
  for (let i = 0; keys.length < n; i++) {
    const key = `k${i}`, kp = partitionOf(key, 7);
    if (table.replicas[kp][0] !== primary) continue;
    if (p === -1) p = kp;
    if (kp === p) keys.push(key);
  }
  return keys;
}

const settle = <T>(h: GridHarness, p: Promise<T>) =>
  h.until(p, 60_000).then((v) => ({ v }), (e) => ({ e: (e as { code?: string }).code ?? String(e) }));

describe("processor calls and the backup message limit", () => {
  test(
    "executeOnKey: a 3 MB value written and a 2.9 MB result (8.9 MB together) is refused, nothing written",
    async () => {
      const h = new GridHarness({
        config: { partitionCount: 7 },
        processors: {
          "both": (e) => {
            e.value = new Uint8Array(3_000_000).fill(1);
            return new Uint8Array(2_900_000).fill(2);
          },
          // 3 MB written, 1 MB returned: 7 MB together, within the limit.
          "fits": (e) => {
            e.value = new Uint8Array(3_000_000).fill(3);
            return new Uint8Array(1_000_000).fill(4);
          },
        },
      });
      for (const id of ["n0", "n1"]) await h.add(id);
      await h.run(3000);
      const [key] = keysOn(h, "n1", 1);
      const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
      await h.until(m.set(key, new Uint8Array(1)));
      expect(await settle(h, m.executeOnKey<Uint8Array>(key, "both"))).toEqual({ e: "PROCESSOR_FAILED" });
      expect((await h.until(m.get(key)))?.byteLength).toBe(1);
      const ok = await settle(h, m.executeOnKey<Uint8Array>(key, "fits"));
      expect("v" in ok && (ok.v as Uint8Array).byteLength).toBe(1_000_000);
      expect((await h.until(m.get(key)))?.[0]).toBe(3);
      expect(h.members.get("n1")!.transport.stats().droppedOverflow).toBe(0);
      h.stop();
    },
    120_000,
  );

  test("executeOnKeys: 8 values of 524,281 bytes rewritten (cut by bytes to one batch of 8) is answered", async () => {
    const h = new GridHarness({
      config: { partitionCount: 7 },
      processors: { "grow": (e) => void (e.value = new Uint8Array(524_281).fill(2)) },
    });
    for (const id of ["n0", "n1"]) await h.add(id);
    await h.run(3000);
    const keys = keysOn(h, "n1", 8);
    const m = h.members.get("n0")!.grid.getMap<string, Uint8Array>("big");
    await h.until(m.putAll(keys.map((k) => [k, new Uint8Array(1)] as [string, Uint8Array])), 60_000);
    // Outcomes 8 × 524,288 encoded bytes and effects ≈ 4.16 MB: over 8 MiB in one backup message, so cut in two.
    const r = await settle(h, m.executeOnKeys(keys, "grow"));
    // Nothing the grid sent was over the message limit (the backup op of this write is).
    expect(h.members.get("n1")!.transport.stats().droppedOverflow).toBe(0);
    expect("v" in r && (r.v as Map<string, unknown>).size).toBe(8);
    h.stop();
  }, 120_000);
});
