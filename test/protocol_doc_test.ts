import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Kind, KindRanges } from "../src/wire/kinds.ts";

// Every message kind in the code is documented in PROTOCOL.md with its number, and every
// number sits inside its layer's range: kinds are append-only, so the doc is the contract.
test("PROTOCOL.md documents every message kind with its number", () => {
  const doc = readFileSync(new URL("../PROTOCOL.md", import.meta.url).pathname, "utf8");
  const missing: string[] = [];
  for (const [name, num] of Object.entries(Kind)) {
    const row = new RegExp(`\\|\\s*${num}\\s*\\|\\s*\`?${name}\`?\\s*\\|`);
    if (!row.test(doc)) missing.push(`${num} ${name}`);
  }
  expect(missing).toEqual([]);
});

test("kind numbers are unique and inside a layer range", () => {
  const nums = Object.values(Kind) as number[];
  expect(new Set(nums).size).toBe(nums.length);
  for (const n of nums) expect(Object.values(KindRanges).some(([lo, hi]) => n >= lo && n <= hi)).toBe(true);
});
