/**
 * Snapshot entries are validated by a hand-written check (zod's union of tuples cost most of
 * the CPU a new backup spent receiving a loaded partition). It must accept and refuse exactly
 * what the zod schema it replaced does: compared here on generated entries, valid ones and
 * ones with one element changed to a value of another type or out of range, one element
 * added or removed, or not an array at all.
 */
import { expect, test } from "bun:test";
import { z } from "zod";
import { Random } from "../src/core/random.ts";
import { stampSchema } from "../src/map/hlc.ts";
import { isSnapshotEntry, MapSnapshotChunkMsg } from "../src/map/messages.ts";
import { Kind } from "../src/wire/kinds.ts";
import { Limits } from "../src/wire/limits.ts";
import { w } from "../src/wire/message.ts";

/** The schema the check replaced. */
const reference = z.union([
  z.tuple([w.str(256), w.bytes(), w.bytes(), w.uint(), stampSchema(), stampSchema()]),
  z.tuple([
    w.str(256),
    w.bytes(),
    w.bytes(),
    w.uint(),
    stampSchema(),
    stampSchema(),
    w.uint(),
    w.uint(),
    stampSchema(),
  ]),
]);

const odd: unknown[] = [
  -1,
  -0,
  0.5,
  1.5e12 + 0.25,
  NaN,
  Infinity,
  -Infinity,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  "x",
  "",
  "m".repeat(256),
  "m".repeat(257),
  null,
  undefined,
  true,
  {},
  [],
  new Uint8Array(0),
  new Uint8Array(3),
  new Uint16Array(2),
  new ArrayBuffer(2),
  { length: 6 },
];

function validEntry(rng: Random): unknown[] {
  const base: unknown[] = [
    "m" + rng.int(100),
    new Uint8Array(rng.int(10)),
    new Uint8Array(rng.int(200)),
    rng.int(5),
    1.7e12 + rng.int(1000),
    1.7e12 + rng.int(1000) + (rng.chance(0.3) ? 0.5 : 0),
  ];
  if (rng.chance(0.4)) base.push(rng.int(10_000), rng.int(10_000), 1.7e12 + rng.int(1000));
  return base;
}

test("the hand-written snapshot entry check accepts exactly what the zod tuples did", () => {
  const rng = new Random(11);
  let accepted = 0, refused = 0;
  const check = (e: unknown) => {
    const want = reference.safeParse(e).success;
    expect([e, isSnapshotEntry(e)]).toEqual([e, want]);
    if (want) accepted++;
    else refused++;
  };
  for (const x of odd) check(x);
  for (let i = 0; i < 20_000; i++) {
    const e = validEntry(rng);
    const r = rng.int(4);
    if (r === 1) e[rng.int(e.length)] = odd[rng.int(odd.length)];
    else if (r === 2) e.push(odd[rng.int(odd.length)]);
    else if (r === 3) e.splice(rng.int(e.length), 1);
    check(e);
  }
  expect(accepted).toBeGreaterThan(3000);
  expect(refused).toBeGreaterThan(3000);
  expect(Limits.maxBytesLength).toBeGreaterThan(0);
});

test("a chunk with one bad entry is refused whole", () => {
  const chunk = {
    t: Kind.MapSnapshotChunk,
    p: 1,
    e: 1,
    l: 5,
    sid: 1,
    i: 0,
    n: 1,
    s: 3,
    d0: 0,
    d1: 0,
    entries: [["m", new Uint8Array(1), new Uint8Array(2), 1, 5, 6]],
    dedupe: [],
  };
  expect(MapSnapshotChunkMsg.safeParse(chunk).success).toBe(true);
  chunk.entries.push(["m", new Uint8Array(1), new Uint8Array(2), -1, 5, 6]);
  expect(MapSnapshotChunkMsg.safeParse(chunk).success).toBe(false);
});
