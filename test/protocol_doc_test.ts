import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
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

// PROTOCOL.md is the one copy of the kind tables: no other document repeats a kind's row.
test("no other document copies PROTOCOL.md's kind tables", () => {
  const docs = [
    "README.md",
    "ARCHITECTURE.md",
    "SECURITY.md",
    ...readdirSync(new URL("../docs", import.meta.url).pathname)
      .filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  ];
  const copies: string[] = [];
  for (const file of docs) {
    let text: string;
    try {
      text = readFileSync(new URL(`../${file}`, import.meta.url).pathname, "utf8");
    } catch {
      continue;
    }
    for (const [name, num] of Object.entries(Kind)) {
      if (new RegExp(`\\|\\s*${num}\\s*\\|\\s*\`?${name}\`?\\s*\\|`).test(text)) copies.push(`${file}: ${num} ${name}`);
    }
  }
  expect(copies).toEqual([]);
});
