/**
 * Random but well-typed wire messages, generated from the zod schemas the layers register
 * (`defineMessage`), for fuzzing and hostile-peer tests. Values are biased towards what a
 * lying member would send: ids of real members, small partition numbers, versions and
 * epochs near zero or far in the future. Only messages that pass `validateMessage` are
 * returned, so every one reaches its layer's handler.
 */
import type { z } from "zod";
import type { Random } from "../../src/core/random.ts";
import { schemaOf, validateMessage } from "../../src/wire/message.ts";
import type { Message } from "../../src/wire/message.ts";

/** What the generator draws ids and numbers from. */
export interface MessageHints {
  ids: string[];
}

// deno-lint-ignore no-explicit-any
type Def = any;

/** Bounds a schema's checks set (zod keeps them in `def.checks`; its `bag` stays empty here). */
function bounds(def: Def): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of def.checks ?? []) {
    const d = c._zod?.def ?? {};
    if (d.check === "greater_than") out.minimum = d.inclusive ? d.value : d.value + 1;
    else if (d.check === "less_than") out.maximum = d.inclusive ? d.value : d.value - 1;
    else if (d.check === "min_length") out.minLength = d.minimum;
    else if (d.check === "max_length") out.maxLength = d.maximum;
    else if (d.check === "length_equals") out.minLength = out.maxLength = d.length;
  }
  return out;
}

function gen(schema: z.ZodType, rng: Random, hints: MessageHints, depth: number): unknown {
  // deno-lint-ignore no-explicit-any
  const internals = (schema as any)._zod;
  const def: Def = internals.def;
  const bag = bounds(def);
  switch (def.type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        const val = gen(v, rng, hints, depth + 1);
        if (val !== undefined) out[k] = val;
      }
      return out;
    }
    case "string": {
      const max = Math.min(bag.maximum ?? bag.maxLength ?? 64, 64);
      const min = bag.minimum ?? bag.minLength ?? 0;
      const r = rng.next();
      if (r < 0.5 && hints.ids.length > 0) return hints.ids[rng.int(hints.ids.length)];
      if (r < 0.6) return "";
      const len = Math.max(min, rng.int(Math.max(1, max) + 1));
      let s = "";
      for (let i = 0; i < len; i++) s += "0123456789abcdef"[rng.int(16)];
      return s;
    }
    case "number": {
      const lo = Number.isFinite(bag.minimum) ? bag.minimum : -1e6;
      const hi = Number.isFinite(bag.maximum) ? bag.maximum : 1e6;
      const picks = [0, 1, 2, 3, 7, 30, 100, 1_000, 1e9, Number.MAX_SAFE_INTEGER, -1];
      const v = rng.next() < 0.7 ? picks[rng.int(picks.length)] : Math.floor(lo + rng.next() * Math.min(hi - lo, 1e7));
      return Math.min(hi, Math.max(lo, v));
    }
    case "boolean":
      return rng.next() < 0.5;
    case "literal":
      return def.values[0];
    case "enum": {
      const vals = Object.values(def.entries as Record<string, unknown>);
      return vals[rng.int(vals.length)];
    }
    case "array": {
      const lo = bag.minLength ?? 0;
      const n = depth > 3 ? lo : Math.max(lo, rng.int(Math.min(bag.maxLength ?? 4, 4) + 1));
      return Array.from({ length: n }, () => gen(def.element, rng, hints, depth + 1));
    }
    case "tuple":
      return (def.items as z.ZodType[]).map((i) => gen(i, rng, hints, depth + 1));
    case "optional":
    case "nullable":
      return rng.next() < 0.3 ? (def.type === "nullable" ? null : undefined) : gen(def.innerType, rng, hints, depth);
    case "default":
    case "prefault":
    case "readonly":
    case "catch":
      return gen(def.innerType, rng, hints, depth);
    case "union": {
      const opts = def.options as z.ZodType[];
      return gen(opts[rng.int(opts.length)], rng, hints, depth);
    }
    case "pipe":
      return gen(def.in, rng, hints, depth);
    case "record": {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < rng.int(3); i++) {
        out[String(gen(def.keyType, rng, hints, depth + 1))] = gen(def.valueType, rng, hints, depth + 1);
      }
      return out;
    }
    case "custom":
      // w.bytes(): a Uint8Array.
      return rng.next() < 0.5
        ? new Uint8Array(0)
        : new Uint8Array(Array.from({ length: rng.int(40) }, () => rng.int(256)));
    case "unknown":
    case "any":
      return depth > 2 ? null : [null, 0, "x", { t: 1 }, [1, 2]][rng.int(5)];
    default:
      return undefined;
  }
}

/**
 * A random value shaped by `schema` (most are valid; a few miss a bound or a union option).
 * @param schema a message or op-body schema
 * @param rng the seeded randomness
 * @param hints ids to use
 */
export function randomValue(schema: z.ZodType, rng: Random, hints: MessageHints): unknown {
  return gen(schema, rng, hints, 0);
}

/** Kinds {@link randomMessage} has drawn a valid message of. */
const drawn = new Set<number>();

/**
 * A random well-typed message of kind `t`, or null when none was found in a few tries.
 * @param t the kind
 * @param rng the seeded randomness
 * @param hints ids to use
 */
export function randomMessage(t: number, rng: Random, hints: MessageHints): Message | null {
  const schema = schemaOf(t);
  if (!schema) return null;
  // A kind whose fields constrain one another draws a valid message less often: 64 tries until a
  // kind has given one, so that every kind is sent; then 8, as validating the misses is what costs.
  for (let i = 0, tries = drawn.has(t) ? 8 : 64; i < tries; i++) {
    const v = validateMessage(gen(schema, rng, hints, 0));
    if (v.ok) return (drawn.add(t), v.msg);
  }
  return null;
}
