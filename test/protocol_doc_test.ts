import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import type { z } from "zod";
import { Kind, KindRanges } from "../src/wire/kinds.ts";
import { registeredKinds, schemaOf } from "../src/wire/message.ts";
import { OpCode } from "../src/map/operations.ts";

const srcDir = new URL("../src/", import.meta.url).pathname;
const doc = readFileSync(new URL("../PROTOCOL.md", import.meta.url).pathname, "utf8");

/** Every source file that declares a message kind (`defineMessage(`), so a kind declared in a new file is seen too. */
function messageModules(dir = srcDir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory()) out.push(...messageModules(`${path}/`));
    else if (e.name.endsWith(".ts") && !path.endsWith("/wire/message.ts")) {
      if (/\bdefineMessage\(/.test(readFileSync(path, "utf8"))) out.push(path);
    }
  }
  return out;
}
for (const path of messageModules()) await import(path);

/** PROTOCOL.md's kind rows: number → cells (with the name of each column). */
function kindRows(): Map<number, Record<string, string>> {
  const rows = new Map<number, Record<string, string>>();
  let header: string[] = [];
  for (const line of doc.split("\n")) {
    if (!line.startsWith("|")) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    if (cells[0] === "kind") header = cells;
    else if (/^\d+$/.test(cells[0])) {
      rows.set(Number(cells[0]), Object.fromEntries(header.map((h, i) => [h, cells[i]])));
    }
  }
  return rows;
}
const rows = kindRows();
const nameIn = (row: Record<string, string>) => row.name.replace(/`/g, "");

/** The top-level fields of a registered kind's schema (without `t`). */
function fieldsOf(kind: number): string[] {
  const schema = schemaOf(kind) as z.ZodObject<z.ZodRawShape>;
  return Object.keys(schema.shape).filter((k) => k !== "t");
}

// Every message kind in the code is documented in PROTOCOL.md with its number, and every
// number sits inside its layer's range: kinds are append-only, so the doc is the contract.
test("PROTOCOL.md documents every message kind with its number", () => {
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

// The kinds the layers register (what a receiver accepts) against PROTOCOL.md's rows, both ways:
// a registered kind has a row with its number and name, and a row names a registered kind or one
// kept reserved in kinds.ts (the row says so).
test("PROTOCOL.md's kind rows are exactly the registered kinds", () => {
  const registered = registeredKinds();
  expect(registered.length).toBeGreaterThan(50);
  const wrong: string[] = [];
  for (const { kind, name } of registered) {
    const row = rows.get(kind);
    if (!row) wrong.push(`${kind} ${name}: no row`);
    else if (nameIn(row) !== name) wrong.push(`${kind} ${name}: the row names ${nameIn(row)}`);
    if ((Kind as Record<string, number>)[name] !== kind) wrong.push(`${kind} ${name}: not Kind.${name} in kinds.ts`);
  }
  for (const [kind, row] of rows) {
    if (registered.some((r) => r.kind === kind)) continue;
    const reserved = (Kind as Record<string, number>)[nameIn(row)] === kind && row.fields === "(reserved)";
    if (!reserved) wrong.push(`${kind} ${nameIn(row)}: a row, but no such kind is registered`);
  }
  expect(wrong).toEqual([]);
});

// The fields column against the zod schema: every top-level field of the schema is named in
// backticks in its row (a row that says "the fields of N" takes N's), and every name the fields
// column marks as a field (`x`, `x`?, or in a list `x, y?`, before a bracket or a type) is one.
test("PROTOCOL.md's kind rows name the fields of their schemas", () => {
  const problems: string[] = [];
  const named = (kind: number): string => {
    const row = rows.get(kind)!;
    const base = /the fields of (\d+)/.exec(row.fields);
    return Object.values(row).join(" | ") + (base ? named(Number(base[1])) : "");
  };
  for (const { kind, name } of registeredKinds()) {
    const row = rows.get(kind);
    if (!row) continue;
    const text = named(kind);
    const fields = fieldsOf(kind);
    const absent = fields.filter((f) => !new RegExp(`\`[^\`]*\\b${f}\\b[^\`]*\``).test(text));
    if (absent.length > 0) problems.push(`${kind} ${name}: the row does not name ${absent.join(", ")}`);
    // Names the fields column marks as fields: a backticked name followed by `?`, `,`, `:`, ` (`, a
    // type word or the end of the cell, or each name of a backticked list; brackets and quoted
    // values are skipped, and so are upper-case words (enum values).
    const marked: string[] = [];
    const cell = row.fields ?? "";
    for (
      const m of cell.matchAll(
        /`([^`]+)`(\??)(?=$|[?,:;]|\s\(|\s(?:uint|id|ids|bool|bytes|string|any|ListBody|MemberInfo|GossipItem)\b)/g,
      )
    ) {
      const inner = m[1].replace(/\[[^\]]*\]|\{[^}]*\}/g, "");
      if (/^[\[{"]/.test(m[1].trim())) continue;
      for (const part of inner.split(",")) {
        const token = part.trim().replace(/[?:].*$/, "").trim();
        if (/^[a-z][A-Za-z0-9]*$/.test(token)) marked.push(token);
      }
    }
    // A row built on another ("the fields of 104, with `data` in place of `entries`") may name that one's fields.
    const base = /the fields of (\d+)/.exec(cell);
    const baseFields = base ? fieldsOf(Number(base[1])) : [];
    const unknown = marked.filter((f) => !fields.includes(f) && !baseFields.includes(f));
    if (unknown.length > 0) problems.push(`${kind} ${name}: the row names ${unknown.join(", ")}, not in the schema`);
  }
  expect(problems).toEqual([]);
});

test("PROTOCOL.md's op codes are the IMap's", () => {
  const list = /Op codes: ([^.]+)\./.exec(doc)?.[1] ?? "";
  const documented = Object.fromEntries([...list.matchAll(/(\d+) ([A-Za-z]+)/g)].map((m) => [m[2], Number(m[1])]));
  expect(documented).toEqual({ ...OpCode });
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
