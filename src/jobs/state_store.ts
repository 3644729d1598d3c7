/**
 * Compare-and-set helpers over IMaps for job state. Every state change reads the stored
 * record, checks the change with a pure rule, and writes it with `replace(key, expected,
 * next)`, so two writers (a deposed coordinator and its successor, or two attempts of a
 * task) can never both win, and a lost race is re-read and re-checked.
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { IMap } from "../map/imap.ts";
import { encodeValue } from "../wire/codec.ts";

/** Error codes after which an operation may be tried again. */
const transientCodes = new Set([
  "TIMEOUT",
  "WRONG_TARGET",
  "MIGRATING",
  "MEMBER_GONE",
  "OVERLOADED",
  "UNREACHABLE",
  "INDETERMINATE",
  // Split-brain protection: job machinery on a member without quorum waits until it is back.
  "QUORUM",
]);

/** Whether an error is a transient grid error worth retrying. */
export function isTransient(err: unknown): boolean {
  return err instanceof ShoalError && transientCodes.has(err.code);
}

/** A write refused by a state rule (stale term, illegal transition). Not retried. */
export class StateWriteRejected extends ShoalError {
  override name = "StateWriteRejected";
  constructor(code: "STALE_EPOCH" | "CONFLICT", message: string) {
    super(code, message);
  }
}

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

export interface RetryOptions {
  clock: Clock;
  /** Give up after this long. @default 60000 */
  budgetMs?: number;
  /** First backoff; doubles up to 1 s. @default 50 */
  backoffMs?: number;
  /** Stop early (e.g. the service stopped). */
  stopped?: () => boolean;
}

/**
 * Runs `op`, retrying transient grid errors with bounded backoff. Only for idempotent
 * operations (an INDETERMINATE result is retried too).
 */
export async function retrying<T>(op: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const start = opts.clock.now();
  let backoff = opts.backoffMs ?? 50;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!isTransient(err) || opts.clock.now() - start > (opts.budgetMs ?? 60_000) || opts.stopped?.()) throw err;
    }
    await sleep(opts.clock, backoff);
    backoff = Math.min(backoff * 2, 1000);
  }
}

/** Whether two stored values are equal the way the IMap compares them (CBOR bytes). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  const x = encodeValue(a), y = encodeValue(b);
  if (x.byteLength !== y.byteLength) return false;
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Drops keys whose value is undefined, so stored records compare by their real fields. */
export function clean<T extends object>(o: T): T {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/**
 * Atomically updates `key`: reads the current value, asks `decide` for the next one
 * (`undefined` = leave it), and writes it with compare-and-set; on a lost race it re-reads
 * and decides again. `decide` may throw (e.g. {@link StateWriteRejected}) to refuse.
 *
 * @returns the value stored after the call (the new one, or the current one when unchanged)
 */
export async function casUpdate<V>(
  map: IMap<unknown, unknown>,
  key: string,
  decide: (current: V | undefined) => V | undefined,
  opts: RetryOptions & { maxRaces?: number },
): Promise<V | undefined> {
  const maxRaces = opts.maxRaces ?? 32;
  for (let race = 0; race < maxRaces; race++) {
    const current = await retrying(() => map.get(key) as Promise<V | undefined>, opts);
    const next = decide(current);
    if (next === undefined) return current;
    if (current !== undefined && sameValue(current, next)) return current;
    let ok: boolean;
    try {
      ok = current === undefined
        ? (await map.putIfAbsent(key, next)) === undefined
        : await map.replace(key, current, next);
    } catch (err) {
      if (!isTransient(err)) throw err;
      // The write may or may not have happened: the next read tells.
      const now = await retrying(() => map.get(key) as Promise<V | undefined>, opts);
      if (now !== undefined && sameValue(now, next)) return next;
      await sleep(opts.clock, 20);
      continue;
    }
    if (ok) return next;
  }
  throw new ShoalError("CONFLICT", `Cannot update ${map.name}/${key}: lost ${maxRaces} races in a row`);
}
