/**
 * ARCHITECTURE.md's layer picture is a claim about the imports: a folder in the box may
 * import only folders drawn below it, plus `core/` and `runtime/` (drawn beside the box).
 * This test reads the picture and the import graph of `src/` and holds them to each other,
 * so a new upward import, or a picture that drifts from the code, fails the suite.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { importGraph } from "../scripts/check_cycles.ts";

const root = new URL("..", import.meta.url).pathname;

/** The box's folders, top to bottom, as the picture draws them. */
function pictureLayers(): string[] {
  const doc = readFileSync(`${root}ARCHITECTURE.md`, "utf8");
  return [...doc.matchAll(/^│ ([a-z_]+)\/\s/gm)].map((m) => m[1]);
}

/** Folders beside the box: any layer may use them. */
const sideFolders = new Set(["core", "runtime"]);

/** `src/<folder>/…` → folder, or undefined for files outside a src folder. */
function folderOf(file: string): string | undefined {
  const m = /^src\/([a-z_]+)\//.exec(relative(root, file));
  return m?.[1];
}

/** The imports that go from a folder in the box to one drawn above it, or to a folder the picture lacks. */
export function upwardImports(layers: string[], edges: Array<[string, string]>): string[] {
  const rank = new Map(layers.map((l, i) => [l, i]));
  const bad: string[] = [];
  for (const [from, to] of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === undefined || b === undefined || a === b || !rank.has(a) || sideFolders.has(b)) continue;
    const rb = rank.get(b);
    if (rb === undefined || rb < rank.get(a)!) bad.push(`${relative(root, from)} → ${relative(root, to)}`);
  }
  return bad;
}

test("the layer picture lists every folder of src/ that protocol code lives in", () => {
  const layers = pictureLayers();
  expect(layers).toEqual([
    "http",
    "jobs",
    "map",
    "invoke",
    "partition",
    "cluster",
    "transport",
    "signaling",
    "wire",
  ]);
});

test("no folder in the layer picture imports a folder drawn above it", () => {
  const graph = importGraph([`${root}src`]);
  const edges: Array<[string, string]> = [];
  for (const [from, tos] of graph) for (const to of tos) edges.push([from, to]);
  expect(edges.length).toBeGreaterThan(100);
  expect(upwardImports(pictureLayers(), edges)).toEqual([]);
});

test("an upward import is reported, naming both files", () => {
  const layers = ["http", "map", "wire"];
  const f = (p: string) => `${root}${p}`;
  expect(upwardImports(layers, [
    [f("src/map/a.ts"), f("src/wire/b.ts")],
    [f("src/wire/b.ts"), f("src/map/a.ts")],
    [f("src/map/a.ts"), f("src/core/log.ts")],
    [f("src/wire/b.ts"), f("src/unknown/x.ts")],
  ])).toEqual(["src/wire/b.ts → src/map/a.ts", "src/wire/b.ts → src/unknown/x.ts"]);
});
