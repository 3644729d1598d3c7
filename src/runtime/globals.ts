/**
 * The one typed view of the runtime globals Shoal reads (`Deno`, `Bun`, Node's `process`),
 * so that no other file needs `globalThis as any`. Each interface declares only the members
 * used here, the way hono's `adapter/deno/deno.d.ts` types the Deno global for code that
 * also runs elsewhere. Under a runtime that lacks a global, its export is undefined.
 *
 * Deno 2 also defines `process`, so code that must tell the runtimes apart tests `deno`
 * (or `bun`) first; {@link runtimeName} in `process.ts` does.
 */

/** The part of the `Deno` global Shoal uses. */
export interface DenoGlobal {
  readonly args: readonly string[];
  readonly version: { readonly deno: string };
  readonly env: { get(name: string): string | undefined; toObject(): Record<string, string> };
  readonly stdout: { writeSync(bytes: Uint8Array): number };
  readonly stderr: { writeSync(bytes: Uint8Array): number };
  readonly errors: { readonly NotCapable?: new (...args: never[]) => Error };
  exit(code?: number): never;
  cwd(): string;
  execPath(): string;
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  removeSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  memoryUsage(): MemoryUsage;
}

/** Process memory as `Deno.memoryUsage()` and Node's `process.memoryUsage()` report it, in bytes. */
export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  /** Memory outside the JS heap held by JS objects (ArrayBuffers, Buffers). */
  external: number;
}

/** The part of the `Bun` global Shoal uses outside the HTTP and spawn adapters. */
export interface BunGlobal {
  readonly version: string;
  /** The entry point's path: under `/$bunfs/` in a `bun build --compile` executable. */
  readonly main: string;
}

/** The part of Node's (and Bun's) `process` global Shoal uses. */
export interface NodeProcessGlobal {
  readonly argv: readonly string[];
  /** The runtime's own flags (`bun --smol run …` → `["--smol"]`). */
  readonly execArgv?: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly execPath: string;
  /** Replaces the process image, keeping its PID and open descriptors (Bun; Node ≥ 22.15). */
  readonly execve?: (file: string, args: readonly string[], env: Record<string, string>) => never;
  readonly stdout: { write(text: string): boolean };
  readonly stderr: { write(text: string): boolean };
  exit(code?: number): never;
  cwd(): string;
  on(event: string, handler: () => void): unknown;
  off(event: string, handler: () => void): unknown;
  memoryUsage(): MemoryUsage;
}

/**
 * `gc` as `--expose-gc` defines it: V8's (Deno) takes options (`flavor: "last-resort"` also
 * compacts the whole heap and returns its free pages to the system), JavaScriptCore's (Bun)
 * ignores them and collects everything synchronously.
 */
export type GcFunction = (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

interface RuntimeGlobals {
  Deno?: DenoGlobal;
  Bun?: BunGlobal;
  process?: NodeProcessGlobal;
  /** A full garbage collection: defined only when the runtime was started with `--expose-gc`. */
  gc?: GcFunction;
}

const globals = globalThis as unknown as RuntimeGlobals;

/** The `Deno` global, or undefined under Bun and Node. */
export const deno: DenoGlobal | undefined = globals.Deno;

/** The `Bun` global, or undefined under Deno and Node. */
export const bun: BunGlobal | undefined = globals.Bun;

/**
 * The runtime's full garbage collection, or undefined unless it was started with `--expose-gc`
 * (Deno: `DENO_V8_FLAGS=--expose-gc` or `--v8-flags=--expose-gc`; Bun: `BUN_OPTIONS=--expose-gc`
 * or `bun --expose-gc run`). Read at each call: a test harness may define it later.
 */
export function exposedGc(): GcFunction | undefined {
  return typeof globals.gc === "function" ? globals.gc : undefined;
}

/** Node's `process` (also defined by Bun and Deno 2), or undefined where there is none. */
export const nodeProcess: NodeProcessGlobal | undefined = globals.process;
