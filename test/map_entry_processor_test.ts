import { describe, expect, test } from "bun:test";
import { IndeterminateResultError, ShoalError } from "../src/core/errors.ts";
import { builtinProcessors, type ProcessorEntry, ProcessorRegistry } from "../src/map/entry_processor.ts";
import { joinSettings, settingsMismatch } from "../src/cluster/join_settings.ts";
import { OpCode } from "../src/map/operations.ts";
import { PartitionData } from "../src/map/partition_data.ts";
import { decodeValue, encodeValue } from "../src/wire/codec.ts";
import { bystanderOf, GridHarness, gridStarter, incompleteReplication, replicasOf } from "./support/grid_harness.ts";

const P = 13;

/** Runs a built-in on a detached entry: [result, value after]. */
function run(name: string, value: unknown, arg: unknown): [unknown, unknown] {
  const e: ProcessorEntry = { key: "k", value, exists: value !== undefined };
  const r = builtinProcessors[name](e, arg);
  return [r, e.value];
}

type Row = [string, unknown, unknown, unknown, unknown];
type BadRow = [string, unknown, unknown];

describe("built-in processors", () => {
  const rows: Row[] = [
    ["increment", undefined, undefined, 1, 1],
    ["increment", 5, 3, 8, 8],
    ["increment", 5, -7, -2, -2],
    ["append", undefined, "a", 1, ["a"]],
    ["append", ["a"], ["b", "c"], 3, ["a", "b", "c"]],
    ["setIfGreater", undefined, 3, true, 3],
    ["setIfGreater", 5, 3, false, 5],
    ["setIfGreater", 5, 9, true, 9],
    ["setIfGreater", "b", "a", false, "b"],
    ["merge", undefined, { a: 1 }, { a: 1 }, { a: 1 }],
    ["merge", { a: 1, b: 2 }, { b: 3, c: 4 }, { a: 1, b: 3, c: 4 }, { a: 1, b: 3, c: 4 }],
    ["delete-if-equals", { a: [1] }, { a: [1] }, true, undefined],
    ["delete-if-equals", { a: [1] }, { a: [2] }, false, { a: [1] }],
    ["delete-if-equals", undefined, 1, false, undefined],
    ["append-once", undefined, { seq: 1, items: ["a"] }, true, { applied: 1, entries: ["a"] }],
    ["append-once", { applied: 1, entries: ["a"] }, { seq: 2, items: ["b", "c"] }, true, {
      applied: 2,
      entries: ["a", "b", "c"],
    }],
    // A segment applied already (a retry, a replay after a crash) changes nothing.
    ["append-once", { applied: 2, entries: ["a"] }, { seq: 2, items: ["a"] }, false, { applied: 2, entries: ["a"] }],
    ["append-once", { applied: 2, entries: ["a"] }, { seq: 1, items: ["z"] }, false, { applied: 2, entries: ["a"] }],
  ];
  for (const [name, value, arg, result, after] of rows) {
    test(`${name} on ${JSON.stringify(value)} with ${JSON.stringify(arg)}`, () => {
      expect(run(name, value, arg)).toEqual([result, after]);
    });
  }

  const bad: BadRow[] = [
    ["increment", "x", 1],
    ["increment", 1, "x"],
    ["append", 1, 2],
    ["setIfGreater", 1, "2"],
    ["setIfGreater", 1, { a: 1 }],
    ["merge", [1], { a: 1 }],
    ["merge", { a: 1 }, 2],
    ["append-once", undefined, { seq: 1.5, items: [] }],
    ["append-once", undefined, { seq: 1, items: "a" }],
    ["append-once", [1], { seq: 1, items: [2] }],
    ["append-once", { applied: 0, entries: [1] }, { seq: 1, items: [2, 3], max: 2 }],
  ];
  for (const [name, value, arg] of bad) {
    test(`${name} on ${JSON.stringify(value)} with ${JSON.stringify(arg)} throws`, () => {
      expect(() => run(name, value, arg)).toThrow();
    });
  }
});

describe("registry", () => {
  test("names are the built-ins plus the application's, sorted: the canonical list compared at join", () => {
    const r = new ProcessorRegistry({ zeta: (e) => e.value, alpha: (e) => e.value });
    expect(r.names()).toEqual([
      "alpha",
      "append",
      "append-once",
      "delete-if-equals",
      "increment",
      "merge",
      "setIfGreater",
      "zeta",
    ]);
    const s = r.joinSetting();
    expect(s.field.key).toBe("ep");
    expect(s.value).toBe("alpha,append,append-once,delete-if-equals,increment,merge,setIfGreater,zeta");
    // Registration order does not matter; a missing name does.
    expect(new ProcessorRegistry({ alpha: (e) => e.value, zeta: (e) => e.value }).joinSetting().value).toBe(s.value);
    expect(new ProcessorRegistry({ alpha: (e) => e.value }).joinSetting().value).not.toBe(s.value);
  });

  test("a member whose processors differ is refused at join, the message naming both lists", () => {
    const core = { protocolVersion: 1, partitionCount: 271, backupCount: 1, asyncBackupCount: 0, mergePolicy: "x" };
    const withScore = new ProcessorRegistry({ score: (e) => e.value }).joinSetting();
    const without = new ProcessorRegistry().joinSetting();
    const cluster = joinSettings(core, [withScore]);
    expect(settingsMismatch(cluster, joinSettings(core, [withScore]).values)).toBeNull();
    const why = settingsMismatch(cluster, joinSettings(core, [without]).values);
    expect(why).toContain("entry processors");
    expect(why).toContain("score");
  });

  test("bad names, built-in names and non-functions are refused at startup", () => {
    expect(() => new ProcessorRegistry({ "a,b": (e) => e.value })).toThrow(RangeError);
    expect(() => new ProcessorRegistry({ increment: (e) => e.value })).toThrow(/built-in/);
    expect(() => new ProcessorRegistry({ x: 1 as never })).toThrow(/not a function/);
  });

  test("a processor that throws, returns a promise, or is unknown changes nothing and reports why", () => {
    const r = new ProcessorRegistry({
      boom: () => {
        throw new Error("nope");
      },
      later: (e) => Promise.resolve(e.value = 1),
    });
    const d = new PartitionData(0);
    const k = encodeValue("k");
    for (const [name, code] of [["boom", "PROCESSOR_FAILED"], ["later", "PROCESSOR_FAILED"], ["none", "NOT_FOUND"]]) {
      const { outcome, effect } = r.runOnKey(d, "m", k, name, undefined, 0);
      expect(effect).toBeNull();
      expect(outcome[0]).toBe(0);
      expect(outcome[1]).toBe(code);
    }
  });

  test("a processor that leaves the value as it was writes nothing", () => {
    const r = new ProcessorRegistry({ touch: (e) => (e.value = structuredClone(e.value)) });
    const d = new PartitionData(0);
    const k = encodeValue("k");
    d.applyEffect({ m: "m", k, v: encodeValue({ a: 1 }), at: 0 });
    expect(r.runOnKey(d, "m", k, "touch", undefined, 1).effect).toBeNull();
    const inc = r.runOnKey(d, "m", encodeValue("n"), "increment", encodeValue(2), 1);
    expect(inc.effect?.v && decodeValue(inc.effect.v)).toBe(2);
  });
});

const cluster = gridStarter(P);

describe("expiry of what a processor writes", () => {
  test("a value a processor writes takes the map's TTL, as a set() without options does", async () => {
    // Before, a processor's write carried no TTL: an entry it created, or updated after a set()
    // with a TTL, never expired.
    const h = new GridHarness({ seed: 1, config: { partitionCount: P, maps: { "sess*": { ttlMs: 1000 } } } });
    for (let i = 0; i < 2; i++) await h.add(`n${i}`);
    await h.run(3000);
    const m = h.members.get("n1")!.grid.getMap<string, number>("sessions");
    await h.until(m.set("viaSet", 1));
    await h.until(m.executeOnKey("viaProcessor", "increment"));
    await h.until(m.set("ttlThenProcessor", 1, { ttlMs: 1000 }));
    await h.until(m.executeOnKey("ttlThenProcessor", "increment"));
    await h.until(m.executeOnKeys(["a", "b"], "increment"));
    // In a map without a TTL, a processor's write has none either.
    const plain = h.members.get("n1")!.grid.getMap<string, number>("plain");
    await h.until(plain.executeOnKey("kept", "increment"));
    await h.run(3000);
    const got = await h.until(m.getAll(["viaSet", "viaProcessor", "ttlThenProcessor", "a", "b"]));
    expect([...got]).toEqual([]);
    expect(await h.until(plain.get("kept"))).toBe(1);
    h.stop();
  });
});

describe("on the grid", () => {
  test("runs once per call on the primary only; backups apply its effect and end up equal", async () => {
    // Every member registers this same function, so `ran` counts runs anywhere in the cluster.
    let ran = 0;
    const h = new GridHarness({
      config: { partitionCount: P },
      processors: {
        count: (e: ProcessorEntry<string, number>) => {
          ran++;
          e.value = (e.value ?? 0) + 1;
          return e.value;
        },
      },
    });
    for (let i = 0; i < 3; i++) await h.add(`n${i}`);
    await h.run(3000);
    const map = h.members.get("n1")!.grid.getMap<string, number>("m");
    for (let i = 0; i < 20; i++) {
      expect(await h.until(map.executeOnKey<number>(`k${i % 4}`, "count"))).toBe(Math.floor(i / 4) + 1);
    }
    expect(ran).toBe(20); // once per call, in the whole cluster: backups never ran it
    expect(await h.until(map.executeOnKeyWithValue("k0", "increment", 10))).toEqual({ result: 15, value: 15 });
    expect(await h.until(map.get("k0"))).toBe(15);
    await h.run(3000);
    expect(incompleteReplication(h, P)).toBeNull();
    h.stop();
  });

  test("errors reach the caller typed, and change nothing", async () => {
    const h = await cluster(2, {
      processors: {
        boom: () => {
          throw new Error("bad input");
        },
      },
    });
    const map = h.members.get("n0")!.grid.getMap<string, unknown>("m");
    await h.until(map.set("s", "text"));
    const err = (p: Promise<unknown>) => h.until(p.then(() => null, (e) => e));
    const e1 = await err(map.executeOnKey("s", "increment"));
    expect(e1).toBeInstanceOf(ShoalError);
    expect((e1 as ShoalError).code).toBe("PROCESSOR_FAILED");
    expect(((await err(map.executeOnKey("s", "nope"))) as ShoalError).code).toBe("NOT_FOUND");
    expect(((await err(map.executeOnKey("s", "boom"))) as ShoalError).message).toMatch(/bad input/);
    expect(await h.until(map.get("s"))).toBe("text");
    h.stop();
  });

  test("executeOnKeys runs on each key across partitions; executeOnEntries on every entry, even when it removes them", async () => {
    const h = await cluster(3);
    const map = h.members.get("n2")!.grid.getMap<string, number>("m");
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    const r = await h.until(map.executeOnKeys<number>([...keys, "k0"], "increment", 2));
    expect(r.size).toBe(60);
    expect([...r.values()].every((v) => v === 2)).toBe(true);
    const seen: Array<[string, unknown]> = [];
    await h.until((async () => {
      for await (const pair of map.executeOnEntries("delete-if-equals", 2)) seen.push(pair);
    })());
    expect(seen.length).toBe(60);
    expect(seen.every(([, ok]) => ok === true)).toBe(true);
    expect(await h.until(map.size())).toBe(0);
    h.stop();
  });

  test("a processor call retried after its primary died is applied once (the result travelled with the backup)", async () => {
    const h = await cluster(3);
    const key = "counter";
    const [primary, backup] = replicasOf(h, key);
    // A third member: its answer is lost while the write still reaches the backup.
    const client = bystanderOf(h, key);
    const map = client.grid.getMap<string, number>("m");
    expect(await h.until(map.executeOnKey(key, "increment"))).toBe(1);
    h.net.setLink(backup, client.id, { blocked: true }); // the answer (the backup's, for a write) is lost
    const call = map.executeOnKey<number>(key, "increment");
    await h.run(50);
    const before = h.members.get(backup)!.grid.maps.counters.dedupeHits;
    h.crash(primary, 1000);
    h.net.setLink(backup, client.id, { blocked: false });
    expect(await h.until(call)).toBe(2);
    expect(await h.until(map.get(key))).toBe(2);
    expect(h.members.get(backup)!.grid.maps.counters.dedupeHits).toBeGreaterThan(before);
    h.stop();
  });
});

/**
 * Clients on every member increment one key concurrently; the key's primary is killed
 * mid-way. The final value must be at least the acknowledged increments and at most those
 * plus the indeterminate ones (no acknowledged increment lost, none applied twice).
 */
async function incrementsUnderCrash(seed: number) {
  const h = await cluster(4, { seed, loss: 0.01, config: { invoke: { attemptTimeoutMs: 300, callTimeoutMs: 8000 } } });
  const key = "hits";
  const primary = replicasOf(h, key)[0];
  let acked = 0;
  let indeterminate = 0;
  let failedBefore = 0;
  const other: unknown[] = [];
  let stop = false;
  let running = 0;
  const loops = h.live().flatMap((m) =>
    [0, 1, 2].map(async () => {
      running++;
      const map = m.grid.getMap<string, number>("m");
      while (!stop) {
        // 20 ms of virtual time between calls keeps the simulation's work bounded.
        await new Promise((r) => h.clock.setTimer(20, () => r(null)));
        if (stop) break;
        try {
          await map.executeOnKey(key, "increment");
          acked++;
        } catch (e) {
          if (e instanceof IndeterminateResultError) indeterminate++;
          else if (e instanceof ShoalError && (e.code === "SHUTDOWN" || e.code === "TIMEOUT")) failedBefore++;
          else other.push(e);
          if (!h.members.has(m.id)) break;
        }
      }
      running--;
    })
  );
  await h.run(1000);
  h.crash(primary, 1000);
  await h.run(4000);
  stop = true;
  await h.until(Promise.all(loops));
  expect(running).toBe(0);
  await h.run(2000);
  const final = (await h.until(h.live()[0].grid.getMap<string, number>("m").get(key))) ?? 0;
  h.stop();
  return { acked, indeterminate, failedBefore, other, final };
}

describe("increments while the key's primary is killed (seeded simulation)", () => {
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: acknowledged ≤ final ≤ acknowledged + indeterminate`, async () => {
      const r = await incrementsUnderCrash(seed);
      expect(r.other).toEqual([]);
      expect(r.acked).toBeGreaterThan(100);
      expect(r.final).toBeGreaterThanOrEqual(r.acked);
      expect(r.final).toBeLessThanOrEqual(r.acked + r.indeterminate);
    });
  }
});

describe("increments while partitions migrate", () => {
  test("a joining member takes its share under concurrent increments; the counters equal the acknowledged calls", async () => {
    const h = await cluster(2, { loss: 0.01 });
    const acked = new Map<string, number>();
    let indeterminate = 0;
    let stop = false;
    const loops = [0, 1, 2, 3].map(async (w) => {
      const map = h.members.get(`n${w % 2}`)!.grid.getMap<string, number>("m");
      for (let i = 0; !stop; i++) {
        await new Promise((r) => h.clock.setTimer(10, () => r(null)));
        const key = `c${(i * 4 + w) % 20}`;
        try {
          await map.executeOnKey(key, "increment");
          acked.set(key, (acked.get(key) ?? 0) + 1);
        } catch (e) {
          if (e instanceof IndeterminateResultError) indeterminate++;
          else throw e;
        }
      }
    });
    await h.run(500);
    await h.add("n2");
    await h.run(6000);
    stop = true;
    await h.until(Promise.all(loops));
    await h.run(2000);
    expect(h.members.get("n0")!.grid.partitions.stats.migrationsCommitted).toBeGreaterThan(0);
    expect(h.members.get("n0")!.grid.partitionSummary().owners.n2).toBeGreaterThan(0);
    expect(indeterminate).toBe(0);
    const reader = h.members.get("n2")!.grid.getMap<string, number>("m");
    let total = 0;
    for (const [key, n] of acked) {
      expect(await h.until(reader.get(key))).toBe(n);
      total += n;
    }
    expect(total).toBeGreaterThan(500);
    expect(incompleteReplication(h, P)).toBeNull();
    h.stop();
  });
});

describe("wire", () => {
  test("op codes 40 and 41 are processor ops", () => {
    expect(OpCode.ExecuteOnKey).toBe(40);
    expect(OpCode.ExecuteOnKeys).toBe(41);
  });
});
