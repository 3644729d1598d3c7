import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findCycles, importGraph, relativeImports } from "../scripts/check_cycles.ts";

describe("scripts/check_cycles.ts", () => {
  test("reads every kind of relative import and nothing else", () => {
    const source = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b.ts";',
      'export { c } from "./c.ts";',
      'export type { D } from "./d.ts";',
      'import "./e.ts";',
      'const f = await import("./f.ts");',
      'import { z } from "zod";',
      '// import { g } from "./g.ts";',
      '/* import { h } from "./h.ts"; */',
      "import {",
      "  i,",
      "  j,",
      '} from "./ij.ts";',
    ].join("\n");
    expect(relativeImports(source)).toEqual(["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./e.ts", "./f.ts", "./ij.ts"]);
  });

  test("finds a cycle through any number of files, and a file that imports itself", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a", "d"]],
      ["d", []],
      ["e", ["e"]],
    ]);
    expect(findCycles(graph)).toEqual([["a", "b", "c", "a"], ["e", "e"]]);
  });

  test("a graph without a cycle passes, however many paths join again", () => {
    const graph = new Map([
      ["a", ["b", "c"]],
      ["b", ["d"]],
      ["c", ["d"]],
      ["d", []],
    ]);
    expect(findCycles(graph)).toEqual([]);
  });

  test("a type-only import back into the command table is a cycle (the old src/cli shape)", () => {
    const dir = mkdtempSync(join(tmpdir(), "cycles-"));
    try {
      writeFileSync(join(dir, "main.ts"), 'export const load = () => import("./cmd.ts");\n');
      writeFileSync(join(dir, "cmd.ts"), 'import type { Command } from "./main.ts";\nexport const c = 1;\n');
      writeFileSync(join(dir, "leaf.ts"), "export const x = 1;\n");
      const cycles = findCycles(importGraph([dir]));
      expect(cycles).toEqual([[join(dir, "cmd.ts"), join(dir, "main.ts"), join(dir, "cmd.ts")]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("mod.ts and src/ have no import cycle", () => {
    const root = join(import.meta.dir, "..");
    expect(findCycles(importGraph([join(root, "mod.ts"), join(root, "src")]))).toEqual([]);
  });
});
