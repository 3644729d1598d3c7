import { z } from "zod";
import { KindRanges } from "./kinds.ts";
import { Limits } from "./limits.ts";

/**
 * A message on the wire: a plain object whose numeric `t` names its kind. Every layer
 * declares the schema of each kind it owns with {@link defineMessage}; a decoded message
 * whose kind is unknown or whose body does not match its schema is dropped and counted.
 */
export interface Message {
  t: number;
  [field: string]: unknown;
}

/** A compiled check of one schema: the parsed value, or {@link NOT_SURE} to ask zod. */
type FastCheck = (value: unknown) => unknown;
const NOT_SURE: unique symbol = Symbol("not sure");

const registry = new Map<number, { name: string; schema: z.ZodType; fast: FastCheck | null }>();

/** Byte-string schemas made by w.bytes(), with their size limit (for the compiled checks). */
const bytesSchemas = new WeakMap<z.ZodType, number>();

/** Bounded building blocks for message schemas. */
export const w = {
  id: () => z.string().min(1).max(128),
  str: (max: number = Limits.maxStringLength) => z.string().max(max),
  int: () => z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  uint: () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  bytes: (max: number = Limits.maxBytesLength) => {
    const schema = z.instanceof(Uint8Array).refine((b) => b.byteLength <= max, "bytes too long");
    bytesSchemas.set(schema, max);
    return schema;
  },
  list: <T extends z.ZodType>(item: T, max: number) => z.array(item).max(max),
  any: () => z.unknown(),
};

/**
 * Declares a message kind and its body schema. The schema must include `t: z.literal(kind)`
 * implicitly: it is added here. Kinds are append-only (see kinds.ts).
 *
 * @param kind the kind number, inside the declaring layer's range
 * @param name a human name for logs and PROTOCOL.md
 * @param shape the zod shape of the body fields (without `t`)
 * @returns a parser that validates an unknown value as this message
 */
export function defineMessage<S extends z.ZodRawShape>(kind: number, name: string, shape: S) {
  if (!Number.isInteger(kind) || !Object.values(KindRanges).some(([lo, hi]) => kind >= lo && kind <= hi)) {
    throw new RangeError(`Cannot define message ${name}: kind ${kind} is outside every layer range`);
  }
  const existing = registry.get(kind);
  if (existing && existing.name !== name) {
    throw new RangeError(`Cannot define message ${name}: kind ${kind} is already ${existing.name}`);
  }
  const schema = z.object({ t: z.literal(kind), ...shape });
  registry.set(kind, { name, schema, fast: compile(schema) });
  return schema;
}

/** Result of validating one decoded message. */
export type Validated = { ok: true; msg: Message } | { ok: false; reason: string };

/**
 * Validates an unknown decoded value as a registered message. Never throws.
 * @returns the parsed message (unknown fields stripped) or the reason it was rejected
 */
export function validateMessage(value: unknown): Validated {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "message is not an object" };
  }
  const t = (value as { t?: unknown }).t;
  if (typeof t !== "number") return { ok: false, reason: "message has no numeric kind" };
  const entry = registry.get(t);
  if (!entry) return { ok: false, reason: `unknown message kind ${t}` };
  if (entry.fast !== null) {
    const fast = entry.fast(value);
    if (fast !== NOT_SURE) return { ok: true, msg: fast as Message };
  }
  const r = entry.schema.safeParse(value);
  if (!r.success) return { ok: false, reason: `invalid ${entry.name}: ${r.error.issues[0]?.message ?? "bad shape"}` };
  return { ok: true, msg: r.data as Message };
}

/** The name of a registered kind, for logs. */
export function kindName(t: number): string {
  return registry.get(t)?.name ?? `kind${t}`;
}

/** All registered kinds, for PROTOCOL.md checks. */
export function registeredKinds(): Array<{ kind: number; name: string }> {
  return [...registry.entries()].map(([kind, e]) => ({ kind, name: e.name })).sort((a, b) => a.kind - b.kind);
}

// ---------------------------------------------------------------- compiled checks

/** The zod internals read by {@link compile}. */
interface ZodDef {
  type: string;
  checks?: Array<{ _zod: { def: Record<string, unknown> } }>;
  coerce?: boolean;
  values?: unknown[];
  entries?: Record<string, unknown>;
  shape?: Record<string, z.ZodType>;
  catchall?: unknown;
  element?: z.ZodType;
  innerType?: z.ZodType;
}

const defOf = (schema: z.ZodType): ZodDef => (schema as unknown as { _zod: { def: ZodDef } })._zod.def;

/**
 * Compiles a schema into a plain function that accepts only values zod accepts and returns
 * what zod's parse returns (unknown fields stripped, new objects and arrays). When it is not
 * sure, it returns NOT_SURE and zod decides (and gives the reason). Returns null for a
 * schema using anything it does not know, which is then always checked by zod.
 */
function compile(schema: z.ZodType): FastCheck | null {
  const def = defOf(schema);
  const checks = (def.checks ?? []).map((c) => c._zod.def);
  switch (def.type) {
    case "custom": {
      const max = bytesSchemas.get(schema);
      if (max === undefined) return null;
      return (v) => (v instanceof Uint8Array && v.byteLength <= max ? v : NOT_SURE);
    }
    case "unknown":
      return checks.length === 0 ? (v) => (v === undefined || typeof v === "function" ? NOT_SURE : v) : null;
    case "boolean":
      return checks.length === 0 && !def.coerce ? (v) => (typeof v === "boolean" ? v : NOT_SURE) : null;
    case "literal": {
      const values: unknown[] = def.values ?? [];
      if (checks.length > 0 || !values.every((x) => typeof x === "number" || typeof x === "string" || typeof x === "boolean")) return null;
      const allowed: readonly unknown[] = values;
      return (v) => (allowed.includes(v) ? v : NOT_SURE);
    }
    case "enum": {
      const values: unknown[] = Object.values(def.entries ?? {});
      if (checks.length > 0 || values.length === 0 || !values.every((x) => typeof x === "string")) return null;
      const allowed: readonly unknown[] = values;
      return (v) => (allowed.includes(v) ? v : NOT_SURE);
    }
    case "string": {
      if (def.coerce) return null;
      let min = 0, max = Infinity;
      for (const c of checks) {
        if (c.check === "min_length" && typeof c.minimum === "number" && c.when === undefined) min = Math.max(min, c.minimum);
        else if (c.check === "max_length" && typeof c.maximum === "number" && c.when === undefined) max = Math.min(max, c.maximum);
        else return null;
      }
      return (v) => (typeof v === "string" && v.length >= min && v.length <= max ? v : NOT_SURE);
    }
    case "number": {
      if (def.coerce) return null;
      let int = false, lo = -Infinity, hi = Infinity;
      for (const c of checks) {
        if (c.check === "number_format" && (c.format === "safeint")) int = true;
        else if (c.check === "greater_than" && typeof c.value === "number" && c.inclusive === true && c.when === undefined) lo = Math.max(lo, c.value);
        else if (c.check === "less_than" && typeof c.value === "number" && c.inclusive === true && c.when === undefined) hi = Math.min(hi, c.value);
        else return null;
      }
      return (v) => typeof v === "number" && Number.isFinite(v) && (!int || Number.isSafeInteger(v)) && v >= lo && v <= hi ? v : NOT_SURE;
    }
    case "optional":
    case "nullable": {
      if (checks.length > 0 || !def.innerType) return null;
      const inner = compile(def.innerType);
      if (!inner) return null;
      // An absent optional field is left to zod, which decides how it appears in the output.
      return def.type === "nullable" ? (v) => (v === null ? null : inner(v)) : (v) => (v === undefined ? NOT_SURE : inner(v));
    }
    case "array": {
      if (!def.element) return null;
      let min = 0, max = Infinity;
      for (const c of checks) {
        if (c.check === "min_length" && typeof c.minimum === "number") min = Math.max(min, c.minimum);
        else if (c.check === "max_length" && typeof c.maximum === "number") max = Math.min(max, c.maximum);
        else return null;
      }
      const item = compile(def.element);
      if (!item) return null;
      return (v) => {
        if (!Array.isArray(v) || v.length < min || v.length > max) return NOT_SURE;
        const out: unknown[] = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = item(v[i]);
          if (x === NOT_SURE) return NOT_SURE;
          out[i] = x;
        }
        return out;
      };
    }
    case "object": {
      if (checks.length > 0 || def.catchall !== undefined || !def.shape) return null;
      const keys = Object.keys(def.shape);
      if (keys.includes("__proto__")) return null;
      const fields: FastCheck[] = [];
      for (const k of keys) {
        const f = compile(def.shape[k]);
        if (!f) return null;
        fields.push(f);
      }
      const n = keys.length;
      return (v) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return NOT_SURE;
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const x = fields[i]((v as Record<string, unknown>)[keys[i]]);
          if (x === NOT_SURE) return NOT_SURE;
          out[keys[i]] = x;
        }
        return out;
      };
    }
    default:
      return null;
  }
}
