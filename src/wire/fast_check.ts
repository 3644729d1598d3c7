/**
 * Fast validators compiled from the zod schemas of messages and op bodies: the hot path of
 * every received frame. A compiled check walks the value once with plain `typeof` and range
 * tests and builds the same stripped output zod builds, without zod's per-check payloads and
 * issue lists.
 *
 * The zod schema stays the definition. A compiled check is sound, not complete: when it
 * accepts, zod accepts and returns an equal value (test/fast_check_test.ts checks this on
 * fuzzed inputs of every registered kind); when it rejects (returns {@link REJECT}), the caller
 * asks zod, which decides and gives the reason. So `fast ?? zod` accepts exactly what the
 * schema accepts. Schema parts it does not know (any check, refinement, default or transform
 * other than those below) make {@link compileCheck} return null, and that schema is checked
 * by zod alone.
 */
import type { z } from "zod";

/** Returned by a compiled check for a value it does not accept (zod then decides). */
export const REJECT: unique symbol = Symbol("reject");

/** A compiled check: the parsed value (unknown keys stripped, as zod does) or {@link REJECT}. */
export type FastCheck = (value: unknown) => unknown;

/** Byte-array schemas made by `w.bytes(max)`, whose refinement the compiler cannot read: their limit. */
const bytesLimits = new WeakMap<object, number>();

/**
 * Marks a `z.instanceof(Uint8Array).refine(byteLength <= max)` schema so that it compiles.
 * @returns the schema itself
 */
export function markBytes<S extends z.ZodType>(schema: S, max: number): S {
  bytesLimits.set(schema, max);
  return schema;
}

/** The byte limit of a schema made by {@link markBytes}, or undefined for any other schema. */
export function bytesLimitOf(schema: z.ZodType): number | undefined {
  return bytesLimits.get(schema);
}

// deno-lint-ignore no-explicit-any
type Internals = { def: any; optin?: string; optout?: string };
/** A zod schema's internals (its definition and optionality), as this compiler and fast_decode.ts read them. */
export const internals = (s: unknown): Internals => (s as { _zod: Internals })._zod;

/** Zod's number checks this compiler knows: [lo, hi] bounds and whether the value must be a safe integer. */
export function numberBounds(
  checks: unknown[] | undefined,
): { lo: number; hi: number; loIn: boolean; hiIn: boolean; int: boolean } | null {
  const b = { lo: -Infinity, hi: Infinity, loIn: true, hiIn: true, int: false };
  for (const c of checks ?? []) {
    const d = internals(c).def;
    if (d.check === "greater_than" && typeof d.value === "number") {
      if (d.value > b.lo || (d.value === b.lo && !d.inclusive)) [b.lo, b.loIn] = [d.value, d.inclusive === true];
    } else if (d.check === "less_than" && typeof d.value === "number") {
      if (d.value < b.hi || (d.value === b.hi && !d.inclusive)) [b.hi, b.hiIn] = [d.value, d.inclusive === true];
    } else if (d.check === "number_format" && d.format === "safeint") b.int = true;
    else return null;
  }
  return b;
}

/** Length checks (strings, arrays): [min, max], or null for another check. */
export function lengthBounds(checks: unknown[] | undefined): { min: number; max: number } | null {
  let min = 0;
  let max = Infinity;
  for (const c of checks ?? []) {
    const d = internals(c).def;
    if (d.check === "max_length" && typeof d.maximum === "number") max = Math.min(max, d.maximum);
    else if (d.check === "min_length" && typeof d.minimum === "number") min = Math.max(min, d.minimum);
    else return null;
  }
  return { min, max };
}

/** Code points of a string, counted as zod counts them (a lone surrogate is one). */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n--;
      i++;
    }
  }
  return n;
}

/**
 * Compiles a zod schema into a fast check.
 * @returns the check, or null when the schema uses something the compiler does not know
 */
export function compileCheck(schema: z.ZodType): FastCheck | null {
  const max = bytesLimits.get(schema);
  if (max !== undefined) return (v) => v instanceof Uint8Array && v.byteLength <= max ? v : REJECT;
  const zi = internals(schema);
  const def = zi.def;
  if (def.coerce) return null;
  const checks: unknown[] | undefined = def.checks;
  const noChecks = !checks || checks.length === 0;
  switch (def.type) {
    case "unknown":
    case "any":
      return noChecks ? (v) => v : null;
    case "boolean":
      return noChecks ? (v) => typeof v === "boolean" ? v : REJECT : null;
    case "literal":
    case "enum": {
      const values = scalarValues(schema);
      return values && ((v) => values.has(v) ? v : REJECT);
    }
    case "string": {
      const b = lengthBounds(checks);
      if (!b) return null;
      const { min, max } = b;
      // zod counts code points. UTF-16 units ≥ code points ≥ units / 2: only a string near the floor is counted.
      return (v) =>
        typeof v === "string" && v.length <= max && v.length >= min &&
          (v.length >= 2 * min || codePoints(v) >= min)
          ? v
          : REJECT;
    }
    case "number": {
      const b = numberBounds(checks);
      if (!b) return null;
      const { lo, hi, loIn, hiIn, int } = b;
      return (v) =>
        typeof v === "number" && Number.isFinite(v) && (!int || Number.isSafeInteger(v)) &&
          (loIn ? v >= lo : v > lo) && (hiIn ? v <= hi : v < hi)
          ? v
          : REJECT;
    }
    case "optional": {
      if (!noChecks || internals(def.innerType).optin === "defaulted") return null;
      const inner = compileCheck(def.innerType);
      return inner && ((v) => v === undefined ? v : inner(v));
    }
    case "nullable": {
      if (!noChecks) return null;
      const inner = compileCheck(def.innerType);
      return inner && ((v) => v === null ? v : inner(v));
    }
    case "array": {
      const b = lengthBounds(checks);
      const item = compileCheck(def.element);
      if (!b || !item) return null;
      const { min, max } = b;
      return (v) => {
        if (!Array.isArray(v) || v.length > max || v.length < min) return REJECT;
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = item(v[i]);
          if (x === REJECT) return REJECT;
          out[i] = x;
        }
        return out;
      };
    }
    case "tuple":
      return compileTuple(def, noChecks);
    case "union":
      return compileUnion(def, noChecks);
    case "object":
      return compileObject(def, noChecks);
    default:
      return null;
  }
}

// deno-lint-ignore no-explicit-any
function compileTuple(def: any, noChecks: boolean): FastCheck | null {
  if (!noChecks || def.rest) return null;
  const items: z.ZodType[] = def.items;
  // Optional items change how zod trims the output; such tuples are left to zod.
  if (items.some((s) => internals(s).optin !== undefined || internals(s).optout !== undefined)) return null;
  const checks = items.map(compileCheck);
  if (checks.some((c) => c === null)) return null;
  const cs = checks as FastCheck[];
  const n = cs.length;
  return (v) => {
    if (!Array.isArray(v) || v.length !== n) return REJECT;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const x = cs[i](v[i]);
      if (x === REJECT) return REJECT;
      out[i] = x;
    }
    return out;
  };
}

/**
 * The values a literal or enum schema (or a union of them) accepts, as zod holds them (zod tests
 * `Set.has`), or null for any other schema.
 */
export function scalarValues(schema: z.ZodType): Set<unknown> | null {
  const def = internals(schema).def;
  if (def.checks?.length || def.coerce) return null;
  if (def.type === "literal") return new Set<unknown>(def.values);
  if (def.type === "enum") return new Set<unknown>(Object.values(def.entries));
  if (def.type !== "union" || def.discriminator !== undefined) return null;
  const out = new Set<unknown>();
  for (const o of def.options as z.ZodType[]) {
    const values = scalarValues(o);
    if (!values) return null;
    values.forEach((v) => out.add(v));
  }
  return out;
}

/**
 * zod's union returns the first option that accepts. A compiled option may reject what zod
 * accepts, so the fast path only handles unions whose options cannot overlap: literals and enums
 * (a value is accepted, unchanged, when any option holds it), and tuples of different lengths,
 * where at most one option can accept a value.
 */
// deno-lint-ignore no-explicit-any
function compileUnion(def: any, noChecks: boolean): FastCheck | null {
  const options: z.ZodType[] = def.options;
  if (!noChecks || def.discriminator !== undefined) return null;
  const values = scalarValues({ _zod: { def } } as unknown as z.ZodType);
  if (values) return (v) => values.has(v) ? v : REJECT;
  const lengths = options.map((o) => {
    const d = internals(o).def;
    return d.type === "tuple" && !d.rest ? (d.items as unknown[]).length : -1;
  });
  if (lengths.some((n) => n < 0) || new Set(lengths).size !== lengths.length) return null;
  const checks = options.map(compileCheck);
  if (checks.some((c) => c === null)) return null;
  const byLength = new Map(lengths.map((n, i) => [n, checks[i] as FastCheck]));
  return (v) => {
    const c = Array.isArray(v) ? byLength.get(v.length) : undefined;
    return c ? c(v) : REJECT;
  };
}

/** One field of an object check: its key, check and whether it may be absent. */
interface Field {
  key: string;
  check: FastCheck;
  optional: boolean;
}

// deno-lint-ignore no-explicit-any
function compileObject(def: any, noChecks: boolean): FastCheck | null {
  if (!noChecks || def.catchall !== undefined) return null;
  const fields: Field[] = [];
  for (const [key, s] of Object.entries(def.shape as Record<string, z.ZodType>)) {
    if (key === "__proto__") return null;
    const { optin, optout } = internals(s);
    // Optional-in and -out (`.optional()`), or required (no optin); any other rung is left to zod.
    const optional = optin === "optional" && optout === "optional";
    if (!optional && optin !== undefined) return null;
    const check = compileCheck(s);
    if (!check) return null;
    fields.push({ key, check, optional });
  }
  return (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return REJECT;
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      // As zod: a required key must be present (even when its schema accepts undefined); an
      // optional one that is present is copied even when undefined.
      const present = f.key in input;
      if (!present) {
        if (f.optional) continue;
        return REJECT;
      }
      const x = f.check(input[f.key]);
      if (x === REJECT) return REJECT;
      out[f.key] = x;
    }
    return out;
  };
}
