import { describe, expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

describe("IMap on one member", () => {
  test("supports every operation with CBOR keys and values", async () => {
    const h = new GridHarness({ config: { partitionCount: 7 } });
    const a = await h.add("a");
    await h.run(500);
    const m = a.grid.getMap<unknown, unknown>("m");
    const run = <T>(p: Promise<T>) => h.until(p);
    expect(await run(m.get("x"))).toBeUndefined();
    expect(await run(m.put("x", 1))).toBeUndefined();
    expect(await run(m.put("x", 2))).toBe(1);
    await run(m.set({ id: 7 }, [1, "two"]));
    expect(await run(m.get({ id: 7 }))).toEqual([1, "two"]);
    expect(await run(m.putIfAbsent("x", 3))).toBe(2);
    expect(await run(m.putIfAbsent("y", 3))).toBeUndefined();
    expect(await run(m.replace("x", 4))).toBe(2);
    expect(await run(m.replace("nope", 4))).toBeUndefined();
    // Options passed on as undefined (a wrapper's optional settings) are options left out: a plain replace.
    expect(await run(m.replace("x", 4, undefined))).toBe(4);
    expect(await run(m.containsKey("nope"))).toBe(false);
    expect(await run(m.replace("x", 5, 6))).toBe(false);
    expect(await run(m.replace("x", 4, 6))).toBe(true);
    expect(await run(m.remove("x", 5))).toBe(false);
    expect(await run(m.remove("x", 6))).toBe(true);
    expect(await run(m.containsKey("x"))).toBe(false);
    expect(await run(m.remove("y"))).toBe(3);
    await run(m.putAll(new Map<unknown, unknown>([[1, "a"], [2, "b"], [3, { c: true }]])));
    const all = await run(m.getAll([1, 2, 3, 4]));
    expect([...all.entries()].sort()).toEqual([[1, "a"], [2, "b"], [3, { c: true }]]);
    expect(await run(m.size())).toBe(4);
    await run(m.delete(1));
    expect(await run(m.size())).toBe(3);
    const seen: unknown[] = [];
    await run((async () => {
      for await (const [k, v] of m.entries()) seen.push([k, v]);
    })());
    expect(seen.length).toBe(3);
    const keys: unknown[] = [];
    await run((async () => {
      for await (const k of m.keys()) keys.push(k);
    })());
    expect(keys.map((k) => JSON.stringify(k)).sort()).toEqual(["2", "3", '{"id":7}']);
    await run(m.clear());
    expect(await run(m.size())).toBe(0);
    const other = a.grid.getMap("other");
    await run(other.set("k", "v"));
    expect(a.grid.localMaps()).toEqual([{ name: "other", size: 1 }]);
    await run(other.destroy());
    expect(a.grid.localMaps()).toEqual([]);
    expect(a.grid.mapStats().find((s) => s.map === "m")!.ops.Put.count).toBe(2);
    h.stop();
  });
});

describe("replicated IMap", () => {
  test("writes reach the backups before they are acknowledged, and any member can call", async () => {
    const h = new GridHarness({ config: { partitionCount: 13, backupCount: 2 } });
    const a = await h.add("a");
    const b = await h.add("b");
    const c = await h.add("c");
    const lite = await h.add("lite", true);
    await h.run(3000);
    const s = a.grid.partitionSummary();
    expect(s.replicasMissing).toBe(0);
    expect(s.migrating).toBe(0);
    expect(Object.keys(s.owners).sort()).toEqual(["a", "b", "c"]);
    const ml = lite.grid.getMap<string, number>("m");
    for (let i = 0; i < 50; i++) await h.until(ml.set(`k${i}`, i));
    // every replica holds every acked write
    const { encodeValue } = await import("../src/wire/codec.ts");
    const { partitionOf } = await import("../src/partition/partition_of.ts");
    for (let i = 0; i < 50; i++) {
      const p = partitionOf(`k${i}`, 13);
      for (const mem of [a, b, c]) {
        expect(mem.grid.maps.debugLocalValue(p, "m", encodeValue(`k${i}`))).toEqual(encodeValue(i));
      }
    }
    expect(await h.until(b.grid.getMap("m").get("k7"))).toBe(7);
    expect(await h.until(c.grid.getMap("m").size())).toBe(50);
    expect(lite.grid.maps.debugReplicas().length).toBe(0);
    // Each member counts its primary and its backup copies: 50 entries, each held 3 times.
    const held = [a, b, c].map((mem) => mem.grid.localMapEntries().find((x) => x.name === "m")!);
    expect(held.reduce((n, x) => n + x.primaryEntries, 0)).toBe(50);
    expect(held.reduce((n, x) => n + x.backupEntries, 0)).toBe(100);
    expect(held.every((x) => x.backupEntries > 0)).toBe(true);
    expect(lite.grid.localMapEntries()).toEqual([]);
    expect(h.handlerErrors).toEqual([]);
    h.stop();
  });
});
