/**
 * A key, value, queue item, topic message, processor argument or listener key that CBOR cannot
 * encode (a function, a symbol, an object holding one, an object that refers to itself) is
 * refused with `ShoalError` `INVALID_ARGUMENT` naming what could not be encoded, before
 * anything is sent, like the other values that cannot be stored (README "Using the IMap":
 * failures are typed errors with a `code`). `topic.publish` returns a rejected promise for it
 * rather than throwing. Found by an internal review: cbor-x's bare `Error("Unknown type:
 * function")` came through, without a `code`, and `publish` threw it synchronously.
 */
import { describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import { encodeInput } from "../src/map/encode_input.ts";
import { startGrid } from "./support/grid_harness.ts";

/** The error `run` fails with (synchronously or by rejecting), or "resolved". */
async function failureOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
    return "resolved";
  } catch (e) {
    return e;
  }
}

/** `[code, message]` of a ShoalError, else a description of what came instead. */
function codeAndMessage(e: unknown): [string, string] | string {
  return e instanceof ShoalError ? [e.code, e.message] : `not a ShoalError: ${String(e)}`;
}

const cyclic: Record<string, unknown> = {};
cyclic.self = cyclic;

describe("encodeInput", () => {
  test("names what could not be encoded, and keeps cbor-x's error as the cause", () => {
    const cases: Array<[unknown, string]> = [
      [() => 1, "Cannot encode the map value: it is or holds a function, which CBOR cannot encode"],
      [Symbol("s"), "Cannot encode the map value: it is or holds a symbol, which CBOR cannot encode"],
      [{ a: [1, { f: () => 2 }] }, "Cannot encode the map value: it is or holds a function, which CBOR cannot encode"],
      [new Map([["k", Symbol("v")]]), "Cannot encode the map value: it is or holds a symbol, which CBOR cannot encode"],
      [cyclic, "Cannot encode the map value: it refers to itself or nests too deeply"],
    ];
    for (const [value, message] of cases) {
      let e: unknown;
      try {
        encodeInput(value, "the map value");
      } catch (err) {
        e = err;
      }
      expect(codeAndMessage(e)).toEqual(["INVALID_ARGUMENT", message]);
      expect((e as Error).cause).toBeInstanceOf(Error);
    }
    expect(encodeInput({ a: [1, "x", null, new Uint8Array([1])] }, "the map value")).toBeInstanceOf(Uint8Array);
  });
});

test("maps, queues, topics, processors and listeners refuse input CBOR cannot encode with INVALID_ARGUMENT", async () => {
  const h = await startGrid(2, 7);
  const grid = h.members.get("n0")!.grid;
  const m = grid.getMap<unknown, unknown>("m");
  const q = grid.getQueue<unknown>("q");
  const t = grid.getTopic<unknown>("t");
  const fails = async (run: () => Promise<unknown>) => codeAndMessage(await h.until(failureOf(run)));
  const fn = () => 1;
  const why = (what: string, type = "function"): [string, string] => [
    "INVALID_ARGUMENT",
    `Cannot encode ${what}: it is or holds a ${type}, which CBOR cannot encode`,
  ];
  expect(await fails(() => m.set("k", fn))).toEqual(why("the map value"));
  expect(await fails(() => m.set("k", Symbol("s")))).toEqual(why("the map value", "symbol"));
  expect(await fails(() => m.put("k", { a: 1, f: fn }))).toEqual(why("the map value"));
  expect(await fails(() => m.putAll([["a", 1], ["b", fn]]))).toEqual(why("the map value"));
  expect(await fails(() => m.replace("k", 1, fn))).toEqual(why("the map value"));
  expect(await fails(() => m.get(fn))).toEqual(why("the map key"));
  expect(await fails(() => m.getAll(["a", fn]))).toEqual(why("the map key"));
  expect(await fails(() => m.remove(Symbol("k")))).toEqual(why("the map key", "symbol"));
  expect(await fails(() => m.lock(Symbol("k")))).toEqual(why("the map key", "symbol"));
  expect(await fails(() => m.executeOnKey("k", "increment", fn))).toEqual(why("the entry processor's argument"));
  expect(await fails(() => m.events({ key: fn }).next())).toEqual(why("the listener's key"));
  expect(await fails(() => m.set("k", cyclic))).toEqual([
    "INVALID_ARGUMENT",
    "Cannot encode the map value: it refers to itself or nests too deeply",
  ]);
  expect(await fails(() => q.offer(fn))).toEqual(why("the queue item"));
  expect(await fails(() => t.publish(Symbol("m")))).toEqual(why("the topic message", "symbol"));
  // Nothing was written, and the map, queue and topic still work.
  expect(await h.until(m.size())).toBe(0);
  expect(await h.until(m.set("k", 1).then(() => m.get("k")))).toBe(1);
  expect(await h.until(q.offer("x").then(() => q.poll()))).toBe("x");
  expect(await h.until(t.publish("hello"))).toBe(0);
  expect(grid.maps.listeners.size).toBe(0);
  h.stop();
});

test("topic.publish of a message CBOR cannot encode returns a rejected promise, not a synchronous throw", async () => {
  const h = await startGrid(1, 7);
  const t = h.members.get("n0")!.grid.getTopic<unknown>("t");
  let sync: unknown = null;
  let p: Promise<number> | undefined;
  try {
    p = t.publish(() => 1);
  } catch (e) {
    sync = e;
  }
  expect(sync).toBeNull();
  expect(codeAndMessage(await failureOf(() => p!))[0]).toBe("INVALID_ARGUMENT");
  // The refused publish does not hold up the next one.
  expect(await h.until(t.publish("after"))).toBe(0);
  h.stop();
});
