/**
 * The cluster-wide map sizes a member reports (GET /maps, the dashboard snapshot's `maps`,
 * `shoal_map_size` in GET /metrics) are the same whichever member is asked: a data member
 * lists the maps whose entries sit on other primaries, and a lite member lists every map.
 * The list was taken from the maps with entries in the partitions the asked member is primary
 * of, so a lite member listed none (found by an internal review).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PartitionData } from "../src/map/partition_data.ts";
import { executeOp, OpCode, parseBody } from "../src/map/operations.ts";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";

type N = ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };
const nodes: N[] = [];
let a: N, b: N, lite: N;

const json = async (n: N, path: string) => await (await fetch(n.httpUrl + path)).json();
const mapSizeLine = async (n: N, map: string) =>
  (await (await fetch(n.httpUrl + "/metrics")).text()).split("\n").find((l) =>
    l.startsWith(`shoal_map_size{map="${map}"} `)
  );

beforeAll(async () => {
  const common = { secret: "s", http: "127.0.0.1:0", logLevel: "silent" as const, partitionCount: 7 };
  a = await startNode({ ...common, name: "a" }) as N;
  nodes.push(a);
  b = await startNode({ ...common, name: "b", join: [a.httpUrl!] }) as N;
  nodes.push(b);
  lite = await startNode({ ...common, name: "lite", join: [a.httpUrl!], lite: true }) as N;
  nodes.push(lite);
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000) {
    const hs = await Promise.all(nodes.map((n) => json(n, "/health")));
    const c = await json(a, "/cluster");
    if (
      hs.every((h) => h.safe && h.lacks.length === 0) && c.partitions.migrating === 0 &&
      Object.keys(c.partitions.owners).length === 2
    ) break;
    await Bun.sleep(100);
  }
  // One entry: its partition has one primary, so only one of a and b is primary of it.
  await a.getMap("solo").put("k", 1);
  expect(await a.getMap("solo").size()).toBe(1);
}, 60_000);

afterAll(async () => {
  for (const n of [...nodes].reverse()) await n.shutdown().catch(() => {});
});

describe("cluster-wide map sizes are the same whichever member is asked", () => {
  test("every data member lists the map in GET /maps and shoal_map_size", async () => {
    for (const n of [a, b]) {
      expect({ member: n.name, maps: await json(n, "/maps") }).toEqual({
        member: n.name,
        maps: expect.arrayContaining([{ name: "solo", size: 1 }]),
      });
      expect(await mapSizeLine(n, "solo")).toBe('shoal_map_size{map="solo"} 1');
    }
  }, 30_000);

  test("a lite member's GET /maps, dashboard snapshot and shoal_map_size list the map too", async () => {
    expect(await json(lite, "/maps")).toEqual(expect.arrayContaining([{ name: "solo", size: 1 }]));
    expect((await json(lite, "/snapshot")).maps).toEqual(expect.arrayContaining([{ name: "solo", size: 1 }]));
    expect(await mapSizeLine(lite, "solo")).toBe('shoal_map_size{map="solo"} 1');
  }, 30_000);
});

describe("MapSizes: one partition's maps and live counts", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  test("lists user maps in name order, cut at n, without internal maps or expired entries", () => {
    const d = new PartitionData(0);
    let seq = 0;
    const write = (m: string, k: string, ttl?: number) =>
      d.applyEntry({
        seq: ++seq,
        c: `c/${seq}`,
        r: null,
        e: [{ m, k: enc(k), v: enc("v"), at: 1000, ...(ttl ? { ttl } : {}) }],
      });
    write("b", "1");
    write("b", "2");
    write("a", "1");
    write("a", "2", 10); // expired at 2000
    write("\u0001locks", "1");
    expect(executeOp(d, OpCode.MapSizes, { m: "", n: 10 }, 2000).result).toEqual([["a", 1], ["b", 2]]);
    expect(executeOp(d, OpCode.MapSizes, { m: "", n: 1 }, 2000).result).toEqual([["a", 1]]);
    expect(parseBody(OpCode.MapSizes, { m: "", n: 0 })).toBeNull();
  });
});
