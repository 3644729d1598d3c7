/**
 * Entry processors: named functions that read and change one map entry atomically on the
 * key's primary. Code never travels: every member registers the same names when it starts
 * (`startNode({ processors })`), and a call names the processor and carries its argument.
 *
 * A processor runs only on the primary, inside the partition's one-write-at-a-time loop, so
 * nothing else touches the entry between its read and its write. What it did (the new value,
 * or a removal) becomes an ordinary effect in the partition log: backups apply that effect
 * and never run the processor. The call's result is kept under its call id with the write
 * (like every write), so a retry after a lost answer or a failover is answered, not run again.
 *
 * A processor that throws, or is not registered on the primary, changes nothing; the caller
 * gets the error (`PROCESSOR_FAILED` / `NOT_FOUND`), deduplicated like a result.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ShoalError, type ShoalErrorCode } from "../core/errors.ts";
import { decodeValue, encodeValue } from "../wire/codec.ts";
import { resolveExpiry } from "./expiry.ts";
import { type ExpiryDefaults, MAX_RECORD_BYTES, type OpBody, OpCode, type OpOutcome } from "./operations.ts";
import { Limits } from "../wire/limits.ts";
import type { Effect, PartitionData } from "./partition_data.ts";
import { bytesEqual, keyId } from "./record_store.ts";

/** The entry a processor sees: its key and value; assigning `value` (or `undefined`) changes it. */
export interface ProcessorEntry<K = unknown, V = unknown> {
  readonly key: K;
  /** The current value; `undefined` when absent. Assign to set it, assign `undefined` to remove the entry. */
  value: V | undefined;
  /** Whether the entry existed before the processor ran. */
  readonly exists: boolean;
}

/**
 * A processor: runs synchronously on the primary; its return value is the call's result
 * (CBOR-encodable, `undefined` = null). Throwing fails the call and changes nothing.
 */
export type EntryProcessor<K = unknown, V = unknown, A = unknown, R = unknown> = (
  entry: ProcessorEntry<K, V>,
  arg: A,
) => R;

/** Processors by name. */
// deno-lint-ignore no-explicit-any
export type ProcessorTable = Record<string, EntryProcessor<any, any, any, any>>;

/** Processor names: letters, digits, `.`, `_`, `-` (1–64), so a list of them joins unambiguously with commas. */
export const PROCESSOR_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Most processors a member may register. */
export const MAX_PROCESSORS = 256;

/** Thrown by a built-in on a value or argument it cannot work with. */
class ProcessorError extends Error {}

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * The value `append-once` keeps: the highest segment number applied, and the items; `run`,
 * which run of the writer numbered the segments (absent: none named).
 */
export interface AppendOnceList<T = unknown> {
  applied: number;
  entries: T[];
  run?: string | number;
}

/**
 * The list after appending segment `seq`, or undefined when that segment (or a later one) is
 * already applied, so a segment appended twice (a retry, a replay after a crash) lands once.
 * A `run` other than the list's starts the numbering again after the items held (a writer that
 * numbers its segments from 1 again: a job submitted again under an id whose records were
 * purged; its segments counted as applied and were dropped, found by an internal review); a
 * list that names no run takes the call's. Pure; `append-once` runs it atomically on the primary.
 * @throws RangeError when the list would hold more than `max` items
 * @example
 * ```ts
 * appendOnce(undefined, 1, ["a"], 10); // { applied: 1, entries: ["a"] }
 * appendOnce({ applied: 1, entries: ["a"] }, 1, ["a"], 10); // undefined
 * ```
 */
export function appendOnce<T>(
  list: AppendOnceList<T> | undefined,
  seq: number,
  items: T[],
  max: number,
  run?: string | number,
): AppendOnceList<T> | undefined {
  const held = list ?? { applied: 0, entries: [] };
  const applied = run !== undefined && held.run !== undefined && held.run !== run ? 0 : held.applied;
  if (applied >= seq) return undefined;
  if (held.entries.length + items.length > max) {
    throw new RangeError(`more than ${max} entries`);
  }
  const r = run ?? held.run;
  const next: AppendOnceList<T> = { applied: seq, entries: [...held.entries, ...items] };
  if (r !== undefined) next.run = r;
  return next;
}

/** Longest list `append-once` builds when the call names no smaller `max`. */
const APPEND_ONCE_MAX = 1_000_000;

/**
 * The built-in processors, registered on every member:
 * - `increment`: adds `arg` (a number, default 1) to a number (absent = 0); result = the new value.
 * - `append`: appends `arg` to an array (absent = []); an array `arg` appends each item; result = the new length.
 * - `setIfGreater`: sets `arg` when the entry is absent or `arg` > its value (numbers or strings); result = whether it did.
 * - `merge`: shallow-merges the object `arg` into an object (absent = {}); result = the new value.
 * - `delete-if-equals`: removes the entry when its value is CBOR-equal to `arg`; result = whether it did.
 * - `append-once`: `arg` = `{ seq, items, max? }`; appends `items` to an {@link AppendOnceList} unless segment `seq` (or a
 *   later one) is applied already, so numbered segments land exactly once; a `run` other than the list's numbers
 *   from the start again; result = whether it appended.
 */
export const builtinProcessors: ProcessorTable = {
  increment(entry: ProcessorEntry, arg: unknown) {
    const by = arg === undefined || arg === null ? 1 : arg;
    const cur = entry.value === undefined ? 0 : entry.value;
    if (typeof by !== "number" || !Number.isFinite(by)) throw new ProcessorError("increment: arg must be a number");
    if (typeof cur !== "number") throw new ProcessorError("increment: the value is not a number");
    // 1.7e308 + 1.7e308 stored Infinity, which JSON writes as null: REST then read the entry as absent.
    if (!Number.isFinite(cur + by)) throw new ProcessorError("increment: the sum is not a finite number");
    entry.value = cur + by;
    return entry.value;
  },
  append(entry: ProcessorEntry, arg: unknown) {
    const cur = entry.value === undefined ? [] : entry.value;
    if (!Array.isArray(cur)) throw new ProcessorError("append: the value is not an array");
    const next = Array.isArray(arg) ? [...cur, ...arg] : [...cur, arg];
    entry.value = next;
    return next.length;
  },
  setIfGreater(entry: ProcessorEntry, arg: unknown) {
    if (typeof arg !== "number" && typeof arg !== "string") {
      throw new ProcessorError("setIfGreater: arg must be a number or a string");
    }
    const cur = entry.value;
    if (cur !== undefined && typeof cur !== typeof arg) {
      throw new ProcessorError(`setIfGreater: the value is a ${typeof cur}, arg a ${typeof arg}`);
    }
    if (cur !== undefined && !((arg as number) > (cur as number))) return false;
    entry.value = arg;
    return true;
  },
  merge(entry: ProcessorEntry, arg: unknown) {
    const cur = entry.value === undefined ? {} : entry.value;
    if (!plainObject(arg)) throw new ProcessorError("merge: arg must be an object");
    if (!plainObject(cur)) throw new ProcessorError("merge: the value is not an object");
    entry.value = { ...cur, ...arg };
    return entry.value;
  },
  "delete-if-equals"(entry: ProcessorEntry, arg: unknown) {
    if (entry.value === undefined || !bytesEqual(encodeValue(entry.value), encodeValue(arg))) return false;
    entry.value = undefined;
    return true;
  },
  "append-once"(entry: ProcessorEntry, arg: unknown) {
    if (!plainObject(arg) || !Number.isSafeInteger(arg.seq) || !Array.isArray(arg.items)) {
      throw new ProcessorError("append-once: arg must be { seq: integer, items: array, max?: integer, run? }");
    }
    const run = arg.run;
    if (run !== undefined && typeof run !== "string" && !(typeof run === "number" && Number.isFinite(run))) {
      throw new ProcessorError("append-once: run must be a string or a number");
    }
    const max = arg.max === undefined ? APPEND_ONCE_MAX : arg.max;
    if (!Number.isSafeInteger(max) || (max as number) < 0 || (max as number) > APPEND_ONCE_MAX) {
      throw new ProcessorError(`append-once: max must be an integer in [0, ${APPEND_ONCE_MAX}]`);
    }
    const cur = entry.value;
    if (cur !== undefined && !(plainObject(cur) && Number.isSafeInteger(cur.applied) && Array.isArray(cur.entries))) {
      throw new ProcessorError("append-once: the value is not { applied, entries }");
    }
    let next: AppendOnceList | undefined;
    try {
      next = appendOnce(
        cur as AppendOnceList | undefined,
        arg.seq as number,
        arg.items,
        max as number,
        run as string | number | undefined,
      );
    } catch (e) {
      throw new ProcessorError(`append-once: ${(e as Error).message}`);
    }
    if (next === undefined) return false;
    entry.value = next;
    return true;
  },
};

/** One key's outcome as it travels: `[1, result, value]` (value after the call, null = absent) or `[0, code, message]`. */
export type KeyOutcome = [1, Uint8Array | null, Uint8Array | null] | [0, string, string];

/**
 * Most bytes one processor result may have: with the value after the call (≤ MAX_RECORD_BYTES)
 * its answer stays below the 8 MiB message limit.
 */
export const MAX_RESULT_BYTES = 3 * 1024 * 1024;

/**
 * Most bytes of one processor call's results, values after the call and writes together: the
 * write's backup message carries all three (its result, for the dedupe record, beside its
 * effects), and must stay below the 8 MiB message limit, less room for the rest of the message.
 * A call over it was answered to nobody: the backups never got the write, and the caller got
 * INDETERMINATE after its timeout (found by an internal review).
 */
export const MAX_PROCESSOR_BYTES = Limits.maxMessageBytes - 64 * 1024;

/** Bytes `outcome` and `effect` add to a processor call's backup message. */
function callBytes(outcome: KeyOutcome, effect: Effect | null): number {
  const answer = outcome[0] === 1 ? (outcome[1]?.byteLength ?? 0) + (outcome[2]?.byteLength ?? 0) : 0;
  return answer + (effect ? (effect.k?.byteLength ?? 0) + (effect.v?.byteLength ?? 0) : 0);
}

/** Longest join-setting value before it is replaced by a digest (the join request's limit is 4096). */
const MAX_SETTING_CHARS = 2048;

/** The processors registered on one member: the built-ins plus the application's. */
export class ProcessorRegistry {
  readonly #table = new Map<string, EntryProcessor>();

  /**
   * @param custom the application's processors (`startNode({ processors })`)
   * @throws RangeError on an invalid name, a name of a built-in, a non-function, or too many
   */
  constructor(custom: ProcessorTable = {}) {
    for (const [name, fn] of Object.entries(builtinProcessors)) this.#table.set(name, fn);
    const entries = Object.entries(custom);
    if (entries.length > MAX_PROCESSORS) {
      throw new RangeError(`Cannot register ${entries.length} processors: at most ${MAX_PROCESSORS}`);
    }
    for (const [name, fn] of entries) {
      if (!PROCESSOR_NAME.test(name)) {
        throw new RangeError(`Cannot register processor ${JSON.stringify(name)}: names are 1–64 of A–Z a–z 0–9 . _ -`);
      }
      if (Object.hasOwn(builtinProcessors, name)) {
        throw new RangeError(`Cannot register processor "${name}": it is a built-in`);
      }
      if (typeof fn !== "function") throw new RangeError(`Cannot register processor "${name}": not a function`);
      this.#table.set(name, fn);
    }
  }

  has(name: string): boolean {
    return this.#table.has(name);
  }

  /** Every registered name (built-ins included), sorted: the canonical list members compare at join. */
  names(): string[] {
    return [...this.#table.keys()].sort();
  }

  /**
   * The registered names as a cluster-wide join setting (for cluster/join_settings.ts): the
   * sorted names joined by commas, or their SHA-256 when that would be long.
   */
  joinSetting(): { field: { key: string; label: string; flag: string }; value: string } {
    const list = this.names().join(",");
    return {
      field: { key: "ep", label: "entry processors", flag: "startNode({ processors })" },
      value: list.length <= MAX_SETTING_CHARS ? list : `sha256:${bytesToHex(sha256(new TextEncoder().encode(list)))}`,
    };
  }

  /**
   * Runs processor `name` on one key of map `m` in partition `data` (on the primary).
   * @returns the outcome and the effect to log (none when nothing changed)
   */
  runOnKey(
    data: PartitionData,
    m: string,
    k: Uint8Array,
    name: string,
    argBytes: Uint8Array | undefined,
    now: number,
  ): { outcome: KeyOutcome; effect: Effect | null } {
    const fn = this.#table.get(name);
    if (!fn) return { outcome: [0, "NOT_FOUND", `No processor named "${name}" on this member`], effect: null };
    const rec = data.maps.get(m)?.get(k);
    let arg: unknown;
    let key: unknown;
    let before: unknown;
    try {
      arg = argBytes === undefined ? undefined : decodeValue(argBytes);
      key = decodeValue(k);
      before = rec ? decodeValue(rec.value) : undefined;
    } catch {
      return { outcome: [0, "INVALID_ARGUMENT", "undecodable key, value or argument"], effect: null };
    }
    const entry: ProcessorEntry = { key, value: before, exists: rec !== undefined };
    let result: unknown;
    let after: Uint8Array | null;
    try {
      result = fn(entry, arg);
      if (result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function") {
        return {
          outcome: [0, "PROCESSOR_FAILED", `processor "${name}" returned a promise; it must be synchronous`],
          effect: null,
        };
      }
      after = entry.value === undefined ? null : encodeValue(entry.value);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return { outcome: [0, "PROCESSOR_FAILED", `processor "${name}" failed: ${msg}`.slice(0, 400)], effect: null };
    }
    let resultBytes: Uint8Array | null;
    try {
      resultBytes = result === undefined ? null : encodeValue(result);
    } catch {
      return { outcome: [0, "PROCESSOR_FAILED", `processor "${name}" returned an unencodable result`], effect: null };
    }
    if (resultBytes !== null && resultBytes.byteLength > MAX_RESULT_BYTES) {
      // Its answer, with the value after it (≤ MAX_RECORD_BYTES), would pass the message limit
      // and be dropped on the way: the caller would wait out its timeout. Nothing is written.
      const why = `processor "${name}" returned ${resultBytes.byteLength} bytes, over ${MAX_RESULT_BYTES}`;
      return { outcome: [0, "PROCESSOR_FAILED", why], effect: null };
    }
    const changed = after === null ? rec !== undefined : !rec || !bytesEqual(rec.value, after);
    const outcome: KeyOutcome = [1, resultBytes, after];
    const effect: Effect | null = changed ? { m, k, v: after, at: now } : null;
    const n = callBytes(outcome, effect);
    // A record over its own limit is refused by the write's check (INVALID_ARGUMENT), before this one.
    const record = effect ? k.byteLength + (after?.byteLength ?? 0) : 0;
    if (n > MAX_PROCESSOR_BYTES && record <= MAX_RECORD_BYTES) {
      const why = `processor "${name}" left a result, value and write of ${n} bytes, over ${MAX_PROCESSOR_BYTES}`;
      return { outcome: [0, "PROCESSOR_FAILED", why], effect: null };
    }
    return { outcome, effect };
  }

  /**
   * ExecuteOnKeys on the primary: runs `name` on each key in order (all in one write), for the
   * first keys whose outcomes (results and values after) and writes total at most
   * MAX_PROCESSOR_BYTES (at least one key): `outcomes` is then shorter than `ks`, the later keys
   * are not run, and the caller sends them again. (1,000 large results in one answer passed the
   * message limit.)
   * @param presentOnly skip keys that are absent (their outcome is null): executeOnEntries
   */
  runOnKeys(
    data: PartitionData,
    m: string,
    ks: Uint8Array[],
    name: string,
    argBytes: Uint8Array | undefined,
    now: number,
    presentOnly: boolean,
  ): { outcomes: Array<KeyOutcome | null>; effects: Effect[] } {
    const outcomes: Array<KeyOutcome | null> = [];
    const effects: Effect[] = [];
    let bytes = 0;
    // Effects apply after the call, so a key named twice would not see its first run: refused.
    const seen = new Set<string>();
    for (const k of ks) {
      const id = keyId(k);
      if (presentOnly && !data.maps.get(m)?.get(k)) {
        outcomes.push(null);
        continue;
      }
      if (seen.has(id)) {
        outcomes.push([0, "INVALID_ARGUMENT", "key named twice in one call"]);
        continue;
      }
      const { outcome, effect } = this.runOnKey(data, m, k, name, argBytes, now);
      const n = callBytes(outcome, effect);
      // A processor changes nothing itself (its effect applies after the call): one left out is not run.
      if (outcomes.length > 0 && bytes + n > MAX_PROCESSOR_BYTES) break;
      seen.add(id);
      bytes += n;
      outcomes.push(outcome);
      if (effect) effects.push(effect);
    }
    return { outcomes, effects };
  }
}

/** Whether `op` is one of the processor ops (run by {@link executeProcessorOp}, not `executeOp`). */
export function isProcessorOp(op: number): boolean {
  return op === OpCode.ExecuteOnKey || op === OpCode.ExecuteOnKeys;
}

/**
 * Runs a processor op on the primary. Like `executeOp`, it changes nothing itself: the caller
 * logs and applies the effects. Result: a {@link KeyOutcome} (ExecuteOnKey) or one per key.
 */
export function executeProcessorOp(
  registry: ProcessorRegistry,
  data: PartitionData,
  op: number,
  b: OpBody,
  now: number,
  defaults?: ExpiryDefaults,
): OpOutcome {
  // A value a processor writes takes the map's TTL and max-idle, as a `set` without options
  // does (Hazelcast's `setValue`): it was written without any, so it never expired.
  const expiry = defaults && resolveExpiry(undefined, defaults(b.m));
  const stamp = (e: Effect) => {
    if (expiry && e.v !== null) {
      if (expiry.ttl !== undefined) e.ttl = expiry.ttl;
      if (expiry.mi !== undefined) e.mi = expiry.mi;
    }
    return e;
  };
  if (op === OpCode.ExecuteOnKey) {
    const { outcome, effect } = registry.runOnKey(data, b.m, b.k!, b.pr!, b.pa, now);
    return { result: outcome, effects: effect ? [stamp(effect)] : [] };
  }
  const { outcomes, effects } = registry.runOnKeys(data, b.m, b.ks!, b.pr!, b.pa, now, b.po === true);
  return { result: outcomes, effects: effects.map(stamp) };
}

/**
 * A {@link KeyOutcome} from the network, decoded for the caller.
 * @throws ShoalError with the primary's code when the processor failed or the outcome is malformed
 */
export function decodeOutcome(o: unknown): { result: unknown; value: unknown } {
  if (!Array.isArray(o) || o.length !== 3) throw new ShoalError("INTERNAL", "Malformed processor result");
  if (o[0] === 0) {
    const code = typeof o[1] === "string" && KNOWN_CODES.has(o[1]) ? (o[1] as ShoalErrorCode) : "INTERNAL";
    throw new ShoalError(code, typeof o[2] === "string" ? o[2] : "processor failed");
  }
  const bytes = (b: unknown) => {
    if (b === null) return undefined;
    if (!(b instanceof Uint8Array)) throw new ShoalError("INTERNAL", "Malformed processor result");
    return decodeValue(b);
  };
  return { result: bytes(o[1]), value: bytes(o[2]) };
}

const KNOWN_CODES = new Set<string>(["NOT_FOUND", "PROCESSOR_FAILED", "INVALID_ARGUMENT"]);
