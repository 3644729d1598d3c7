import { z } from "zod";
import { compileCheck, type FastCheck, markBytes, REJECT } from "./fast_check.ts";
import { compileReader, type FastReader } from "./fast_decode.ts";
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

const registry = new Map<number, { name: string; schema: z.ZodType; fast: FastCheck | null }>();
/** Compiled frame readers by kind (fast_decode.ts), for kinds below 256. */
const readers: Array<FastReader | null> = new Array(256).fill(null);

/**
 * `text` cut to at most `max` characters (the last one an ellipsis when cut): free text sent in a
 * field of that limit, such as a reason quoting member ids or a setting, which would otherwise
 * make the receiver drop the whole message as invalid.
 */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Bounded building blocks for message schemas. */
export const w = {
  id: () => z.string().min(1).max(128),
  str: (max: number = Limits.maxStringLength) => z.string().max(max),
  int: () => z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  uint: () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  bytes: (max: number = Limits.maxBytesLength) =>
    markBytes(z.instanceof(Uint8Array).refine((b) => b.byteLength <= max, "bytes too long"), max),
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
  const fast = compileCheck(schema);
  registry.set(kind, { name, schema, fast });
  if (kind < readers.length) readers[kind] = compileReader(schema, fast);
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
  // The check compiled from the schema accepts the common case; what it rejects, zod decides (fast_check.ts).
  const fast = entry.fast?.(value) ?? REJECT;
  if (fast !== REJECT) return { ok: true, msg: fast as Message };
  const r = entry.schema.safeParse(value);
  if (!r.success) return { ok: false, reason: `invalid ${entry.name}: ${r.error.issues[0]?.message ?? "bad shape"}` };
  return { ok: true, msg: r.data as Message };
}

/** The compiled frame reader of a kind (fast_decode.ts), or null when frames holding it are decoded by cbor-x. */
export function readerOf(t: number): FastReader | null {
  return readers[t] ?? null;
}

/** The name of a registered kind, for logs. */
export function kindName(t: number): string {
  return registry.get(t)?.name ?? `kind${t}`;
}

/** The schema of a registered kind (for fuzzing and hostile-peer tests that generate well-typed messages). */
export function schemaOf(t: number): z.ZodType | undefined {
  return registry.get(t)?.schema;
}

/** The fast check compiled from a registered kind's schema, or null when zod alone checks it (for tests). */
export function fastCheckOf(t: number): FastCheck | null {
  return registry.get(t)?.fast ?? null;
}

/** All registered kinds, for PROTOCOL.md checks. */
export function registeredKinds(): Array<{ kind: number; name: string }> {
  return [...registry.entries()].map(([kind, e]) => ({ kind, name: e.name })).sort((a, b) => a.kind - b.kind);
}
