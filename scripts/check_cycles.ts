/**
 * Fails when the relative imports of `mod.ts` and `src/` form a cycle (the idea of deno
 * std's `lint:circular`). Every edge counts: static imports, `import type`, re-exports and
 * `import("…")` with a literal specifier, because a cycle through any of them still ties
 * the files' layers together. Run by `deno task lint`:
 *
 *   deno run -R scripts/check_cycles.ts [root files or folders…]   (default: mod.ts src)
 *
 * Prints each cycle as `a.ts → b.ts → a.ts` and exits 1 when there is one.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { args, exit } from "../src/runtime/process.ts";

/** File → the files it imports (absolute paths). */
export type ImportGraph = Map<string, string[]>;

const specifiers = [
  /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?\sfrom\s*["']([^"']+)["']/g,
  /(?:^|[\s;}])import\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
];

/** The relative specifiers (`./x.ts`, `../y.ts`) that `source` imports, in order of appearance. */
export function relativeImports(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: { at: number; spec: string }[] = [];
  for (const re of specifiers) {
    for (const m of code.matchAll(re)) if (m[1].startsWith(".")) found.push({ at: m.index, spec: m[1] });
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.spec);
}

function tsFilesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).sort().flatMap((name) => {
    const child = join(path, name);
    if (statSync(child).isDirectory()) return tsFilesUnder(child);
    return /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [child] : [];
  });
}

/**
 * Reads the import graph of the given files and folders, following relative imports to
 * files outside them too.
 * @param roots files or folders (absolute, or relative to the working directory)
 */
export function importGraph(roots: string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  const todo = roots.flatMap((r) => tsFilesUnder(resolve(r)));
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (graph.has(file)) continue;
    const deps = relativeImports(readFileSync(file, "utf8")).map((s) => resolve(dirname(file), s));
    graph.set(file, deps);
    for (const d of deps) if (!graph.has(d)) todo.push(d);
  }
  return graph;
}

/**
 * Every cycle of the graph, one per strongly connected component (Tarjan), each written as
 * the path that closes it: `[a, b, a]`. A file that imports itself is a cycle too.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((c) => cyclePath(graph, new Set(c)));
}

/** A shortest path from the component's first file (by name) back to itself, inside the component. */
function cyclePath(graph: ImportGraph, members: Set<string>): string[] {
  const start = [...members].sort()[0];
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = from.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

if (import.meta.main) {
  const roots = args().length > 0 ? args() : ["mod.ts", "src"];
  const cycles = findCycles(importGraph(roots));
  for (const c of cycles) console.error(`import cycle: ${c.map((f) => relative(".", f)).join(" → ")}`);
  if (cycles.length > 0) {
    console.error(`${cycles.length} import cycle(s); move the shared part into a file both sides import.`);
    exit(1);
  }
  console.log(`no import cycles under ${roots.join(", ")}`);
}
