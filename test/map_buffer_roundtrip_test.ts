/**
 * README: keys and values are anything cbor-x encodes, and equality is equality of the CBOR
 * encoding; the compare-and-set pattern of the README and examples/embedding.ts is
 * `replace(k, await get(k), next)`. A `Buffer` (what node:fs and node:crypto hand out, under Bun
 * and Deno) is encoded as an untagged byte string, but was read back as a plain `Uint8Array`,
 * which encodes under tag 64: what `get` returned was never CBOR-equal to what was stored, so
 * that compare-and-set failed for ever, and a Buffer key read from `keys()` did not find its
 * entry (found by an internal review). A value read back is also never a view of stored bytes.
 */
import { expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { startNode } from "../mod.ts";

test("compare-and-set against the value just read works for a value holding a Buffer", async () => {
  const node = await startNode({ secret: "s", http: false, logLevel: "silent", partitionCount: 7 });
  try {
    const m = node.getMap<string, { user: string; avatar: Uint8Array }>("profiles");
    await m.set("ada", { user: "ada", avatar: Buffer.from("png-bytes") });
    const current = (await m.get("ada"))!;
    expect(await m.replace("ada", current, { ...current, user: "Ada L." })).toBe(true);
    const again = (await m.get("ada"))!;
    // Changing what was read changes nothing stored.
    again.avatar[0] = 0;
    expect((await m.get("ada"))!.avatar[0]).toBe("p".charCodeAt(0));
    expect(await m.remove("ada", (await m.get("ada"))!)).toBe(true);
  } finally {
    await node.shutdown();
  }
}, 20_000);

test("a Buffer key yielded by keys() finds its entry", async () => {
  const node = await startNode({ secret: "s", http: false, logLevel: "silent", partitionCount: 7 });
  try {
    const m = node.getMap<Uint8Array, number>("by-hash");
    await m.set(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 1);
    const keys: Uint8Array[] = [];
    for await (const k of m.keys()) keys.push(k);
    expect(keys.length).toBe(1);
    expect(await m.get(keys[0])).toBe(1);
    expect(await m.containsKey(keys[0])).toBe(true);
  } finally {
    await node.shutdown();
  }
}, 20_000);

test("a processor that changes a Buffer of the entry in place and then fails changes nothing stored", async () => {
  const node = await startNode({
    secret: "s",
    http: false,
    logLevel: "silent",
    partitionCount: 7,
    processors: {
      "scribble-then-fail": (e) => {
        (e.value as { avatar: Uint8Array }).avatar[0] = 0;
        throw new Error("changed my mind");
      },
    },
  });
  try {
    const m = node.getMap<string, { avatar: Uint8Array }>("profiles");
    await m.set("ada", { avatar: Buffer.from("png") });
    await expect(m.executeOnKey("ada", "scribble-then-fail")).rejects.toThrow("changed my mind");
    expect((await m.get("ada"))!.avatar[0]).toBe("p".charCodeAt(0));
  } finally {
    await node.shutdown();
  }
}, 20_000);
