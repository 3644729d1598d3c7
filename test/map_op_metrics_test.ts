/**
 * `shoal_map_operations_total` and `shoal_map_operation_duration_seconds` count the map
 * operations called on this member, one per API call with its whole latency. They counted
 * calls nobody made (found by an internal review): every GET /metrics (and GET /maps, the
 * dashboard) sized each map through IMap.size(), so scraping moved them, and one IMap.size()
 * was recorded once per partition.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";

type N = ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };
let node: N;

const opLines = async () =>
  (await (await fetch(node.httpUrl + "/metrics")).text()).split("\n").filter((l) =>
    l.startsWith('shoal_map_operations_total{map="m",')
  );
const opCount = async (op: string) => {
  const line = (await opLines()).find((l) => l.startsWith(`shoal_map_operations_total{map="m",op="${op}"} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
};

beforeAll(async () => {
  node = await startNode({ secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 }) as N;
  await node.getMap("m").put("k", 1);
}, 60_000);
afterAll(async () => {
  await node?.shutdown();
});

describe("map operation counters count the operations called", () => {
  test("scraping GET /metrics does not change shoal_map_operations_total", async () => {
    const first = await opLines();
    await Bun.sleep(2_100); // past the map-size cache's age, so the next scrape sizes the maps again
    const second = await opLines();
    expect(second).toEqual(first);
  }, 30_000);

  test("one IMap.size() call is one Size operation", async () => {
    await Bun.sleep(2_100);
    const before = await opCount("Size"); // this scrape may itself size the map (see above)
    await node.getMap("m").size();
    expect((await opCount("Size")) - before).toBe(1);
  }, 30_000);
});

describe("each API call is one operation, whatever it fans out to", () => {
  const allOpLines = async () =>
    (await (await fetch(node.httpUrl + "/metrics")).text()).split("\n").filter((l) =>
      l.startsWith("shoal_map_operations_total{")
    );
  const countOf = async (map: string, op: string) => {
    const line = (await allOpLines()).find((l) => l.startsWith(`shoal_map_operations_total{map="${map}",op="${op}"} `));
    return line === undefined ? 0 : Number(line.split(" ").at(-1));
  };

  test("whole-map calls, iterations and a waiting tryLock are recorded once each", async () => {
    const m = node.getMap<string, number>("w");
    await m.putAll(Array.from({ length: 20 }, (_, i) => [`k${i}`, i] as [string, number]));
    await m.getAll(Array.from({ length: 20 }, (_, i) => `k${i}`));
    let n = 0;
    for await (const _ of m.entries()) n++;
    expect(n).toBe(20);
    for await (const _ of m.keys()) break; // left early: still one call
    await m.clear();
    await m.lock("k0", { owner: "a" });
    const other = m.tryLock("k0", { owner: "b", timeoutMs: 300 }); // waits, gives up
    expect(await other).toBeUndefined();
    const wanted: Array<[string, number]> = [["PutAll", 1], ["GetAll", 1], ["Entries", 2], ["Clear", 1], [
      "LockAcquire",
      2,
    ]];
    for (const [op, want] of wanted) {
      expect({ op, count: await countOf("w", op) }).toEqual({ op, count: want });
    }
    expect(await countOf("w", "LockCancel")).toBe(0); // part of the tryLock
  }, 30_000);

  test("no map's counters move between two scrapes: the job engine's bookkeeping is not counted", async () => {
    const first = await allOpLines();
    await Bun.sleep(2_100);
    expect(await allOpLines()).toEqual(first);
  }, 30_000);
});
