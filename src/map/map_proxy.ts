/**
 * The IMap implementation every member (lite or not) hands out: encodes keys and values
 * with CBOR, finds the key's partition and invokes the op on its primary through the
 * invocation layer. Whole-map operations run per partition, a bounded number at a time.
 * Each API call is recorded once in the map's operation stats, with its whole latency: a
 * whole-map call was recorded once per partition it asked, so one `size()` counted as
 * partitionCount Size operations.
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { partitionOfBytes } from "../partition/partition_of.ts";
import { decodeValue } from "../wire/codec.ts";
import { encodeInput } from "./encode_input.ts";
import type { EntryEvent, GapEvent } from "./entry_events.ts";
import type { EntryListener, EntryListenerOptions, EntryListeners, EventSubscription } from "./entry_listeners.ts";
import type { ExpiryOptions } from "./expiry.ts";

import { MAX_EXPIRY_MS } from "./map_config.ts";
import type { IMap, LockOptions } from "./imap.ts";
import type { MapStats } from "./map_stats.ts";
import { decodeOutcome } from "./entry_processor.ts";
import { isWrite, MAX_BATCH, MAX_RECORD_BYTES, MAX_WRITE_BYTES, OpCode, opNames } from "./operations.ts";
import { MAX_LOCKED_MAP_NAME } from "./locks.ts";
import { parkTime, pause } from "./parked_ops.ts";
import { keyId } from "./record_store.ts";

/** Per-partition calls of a whole-map operation in flight at once. */
const FAN_OUT = 32;

export class MapProxy<K = unknown, V = unknown> implements IMap<K, V> {
  constructor(
    readonly name: string,
    readonly invoker: Invoker,
    readonly partitionCount: number,
    readonly clock: Clock,
    /** Where calls are recorded; null: none is (the member's own bookkeeping, map_service.ts `quietMap`). */
    readonly stats: MapStats | null,
    readonly listeners?: EntryListeners,
  ) {}

  /** A call that is one partition call: recorded as one operation `op`. */
  async #call(p: number, op: number, body: Record<string, unknown>, parkMs = 0): Promise<unknown> {
    const start = this.clock.now();
    try {
      const r = await this.#invoke(p, op, body, parkMs);
      this.stats?.record(this.name, opNames[op], this.clock.now() - start, true);
      return r;
    } catch (e) {
      this.stats?.record(this.name, opNames[op], this.clock.now() - start, false);
      throw e;
    }
  }

  /** One partition call of a larger API call (recorded by {@link #timed}, not here). */
  #invoke(p: number, op: number, body: Record<string, unknown>, parkMs = 0): Promise<unknown> {
    // Every caller passes a body of its own: naming the map in it spares a copy per call.
    body.m = this.name;
    return this.invoker.invoke(p, op, body, isWrite(op), parkMs);
  }

  /** Runs an API call of many partition calls, recorded as one operation `op` with its whole latency. */
  async #timed<T>(op: string, run: () => Promise<T>): Promise<T> {
    const start = this.clock.now();
    try {
      const r = await run();
      this.stats?.record(this.name, op, this.clock.now() - start, true);
      return r;
    } catch (e) {
      this.stats?.record(this.name, op, this.clock.now() - start, false);
      throw e;
    }
  }

  #key(key: K): { k: Uint8Array; p: number } {
    if (key === undefined) throw new ShoalError("INVALID_ARGUMENT", "Cannot use undefined as a map key");
    const k = encodeInput(key, "the map key");
    return { k, p: partitionOfBytes(k, this.partitionCount) };
  }

  #value(v: V): Uint8Array {
    if (v === undefined) throw new ShoalError("INVALID_ARGUMENT", "Cannot store undefined as a map value");
    const bytes = encodeInput(v, "the map value");
    if (bytes.byteLength > MAX_RECORD_BYTES) {
      throw new ShoalError(
        "INVALID_ARGUMENT",
        `Cannot store a value of ${bytes.byteLength} bytes: at most ${MAX_RECORD_BYTES} with its key`,
      );
    }
    return bytes;
  }

  #decode(r: unknown): V | undefined {
    if (r === null || r === undefined) return undefined;
    if (!(r instanceof Uint8Array)) throw new ShoalError("INTERNAL", "Malformed result: expected value bytes");
    return decodeValue(r) as V;
  }

  async get(key: K): Promise<V | undefined> {
    const { k, p } = this.#key(key);
    return this.#decode(await this.#call(p, OpCode.Get, { k }));
  }

  async set(key: K, value: V, opts?: ExpiryOptions): Promise<void> {
    const { k, p } = this.#key(key);
    await this.#call(p, OpCode.Set, withExpiry({ k, v: this.#value(value) }, opts));
  }

  async put(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined> {
    const { k, p } = this.#key(key);
    return this.#decode(await this.#call(p, OpCode.Put, withExpiry({ k, v: this.#value(value) }, opts)));
  }

  async putIfAbsent(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined> {
    const { k, p } = this.#key(key);
    return this.#decode(await this.#call(p, OpCode.PutIfAbsent, withExpiry({ k, v: this.#value(value) }, opts)));
  }

  replace(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined>;
  replace(key: K, expected: V, value: V, opts?: ExpiryOptions): Promise<boolean>;
  async replace(key: K, a: V, b?: V | ExpiryOptions, c?: ExpiryOptions): Promise<V | undefined | boolean> {
    const { k, p } = this.#key(key);
    // A third argument that is undefined is options left out (a wrapper passing its optional
    // settings on), not a new value: undefined cannot be stored. It was sent as a value and refused.
    if (arguments.length >= 4 || (arguments.length === 3 && b !== undefined && !isExpiryOptions(b))) {
      const body = withExpiry({ k, x: this.#value(a), v: this.#value(b as V) }, c);
      return (await this.#call(p, OpCode.ReplaceIfSame, body)) === true;
    }
    const opts = b as ExpiryOptions | undefined;
    return this.#decode(await this.#call(p, OpCode.Replace, withExpiry({ k, v: this.#value(a) }, opts)));
  }

  addEntryListener(listener: EntryListener<K, V>, opts?: EntryListenerOptions<K>): Promise<string> {
    return this.#listeners().add(this.name, listener, opts);
  }

  removeEntryListener(id: string): boolean {
    return this.#listeners().remove(id);
  }

  events(
    opts?: EntryListenerOptions<K> & { signal?: AbortSignal },
  ): AsyncIterableIterator<EntryEvent<K, V> | GapEvent> {
    return this.#listeners().events<K, V>(this.name, opts);
  }

  openEvents(opts?: EntryListenerOptions<K>): Promise<EventSubscription<K, V>> {
    return this.#listeners().open<K, V>(this.name, opts);
  }

  #listeners(): EntryListeners {
    if (!this.listeners) {
      throw new ShoalError("INVALID_ARGUMENT", "Cannot listen: this map proxy has no listener service");
    }
    return this.listeners;
  }

  remove(key: K): Promise<V | undefined>;
  remove(key: K, expected: V): Promise<boolean>;
  async remove(key: K, expected?: V): Promise<V | undefined | boolean> {
    const { k, p } = this.#key(key);
    if (arguments.length >= 2) {
      return (await this.#call(p, OpCode.RemoveIfSame, { k, x: this.#value(expected as V) })) === true;
    }
    return this.#decode(await this.#call(p, OpCode.Remove, { k }));
  }

  async delete(key: K): Promise<void> {
    const { k, p } = this.#key(key);
    await this.#call(p, OpCode.Delete, { k });
  }

  async containsKey(key: K): Promise<boolean> {
    const { k, p } = this.#key(key);
    return (await this.#call(p, OpCode.ContainsKey, { k })) === true;
  }

  getAll(keys: Iterable<K>): Promise<Map<K, V>> {
    return this.#timed(opNames[OpCode.GetAll], () => this.#getAll(keys));
  }

  async #getAll(keys: Iterable<K>): Promise<Map<K, V>> {
    const groups = new Map<number, Array<{ key: K; k: Uint8Array }>>();
    for (const key of keys) {
      const { k, p } = this.#key(key);
      let g = groups.get(p);
      if (!g) (g = [], groups.set(p, g));
      g.push({ key, k });
    }
    const out = new Map<K, V>();
    const jobs: Array<() => Promise<void>> = [];
    for (const [p, g] of groups) {
      for (let i = 0; i < g.length; i += MAX_BATCH) {
        const part = g.slice(i, i + MAX_BATCH);
        jobs.push(async () => {
          // The primary answers the first keys' values up to MAX_READ_BYTES: ask again for the rest.
          for (let rest = part; rest.length > 0;) {
            const r = await this.#invoke(p, OpCode.GetAll, { ks: rest.map((x) => x.k) });
            if (!Array.isArray(r) || r.length === 0 || r.length > rest.length) {
              throw new ShoalError("INTERNAL", "Malformed getAll result");
            }
            r.forEach((v, j) => {
              const d = this.#decode(v);
              if (d !== undefined) out.set(rest[j].key, d);
            });
            rest = rest.slice(r.length);
          }
        });
      }
    }
    await runBounded(jobs, FAN_OUT);
    return out;
  }

  putAll(entries: Iterable<[K, V]> | Map<K, V>, opts?: ExpiryOptions): Promise<void> {
    return this.#timed(opNames[OpCode.PutAll], () => this.#putAll(entries, opts));
  }

  async #putAll(entries: Iterable<[K, V]> | Map<K, V>, opts?: ExpiryOptions): Promise<void> {
    const expiry = expiryBody(opts);
    const groups = new Map<number, Array<[Uint8Array, Uint8Array]>>();
    for (const [key, value] of entries) {
      const { k, p } = this.#key(key);
      let g = groups.get(p);
      if (!g) (g = [], groups.set(p, g));
      g.push([k, this.#value(value)]);
    }
    const jobs: Array<() => Promise<void>> = [];
    for (const [p, g] of groups) {
      // Batches of at most MAX_BATCH entries and MAX_WRITE_BYTES / 2 bytes: each is one write.
      for (let i = 0; i < g.length;) {
        let j = i, bytes = 0;
        while (j < g.length && j - i < MAX_BATCH) {
          const n = g[j][0].byteLength + g[j][1].byteLength;
          if (j > i && bytes + n > MAX_WRITE_BYTES / 2) break;
          bytes += n;
          j++;
        }
        const kvs = g.slice(i, j);
        i = j;
        jobs.push(async () => void (await this.#invoke(p, OpCode.PutAll, { kvs, ...expiry })));
      }
    }
    await runBounded(jobs, FAN_OUT);
  }

  size(): Promise<number> {
    return this.#timed(opNames[OpCode.Size], async () => {
      let n = 0;
      await runBounded(
        this.#partitions().map((p) => async () => {
          const c = Number(await this.#invoke(p, OpCode.Size, {}));
          n += c;
        }),
        FAN_OUT,
      );
      return n;
    });
  }

  /**
   * Clears every partition; one where another member holds a lock on a key of this map is left
   * whole and the call then fails with LOCKED, after every other partition was cleared (it
   * stopped at the first failure, leaving an arbitrary part of the map).
   */
  clear(): Promise<void> {
    const jobs = this.#partitions().map((p) => async () => void (await this.#invoke(p, OpCode.Clear, {})));
    return this.#timed(opNames[OpCode.Clear], () => runBounded(jobs, FAN_OUT, true));
  }

  /** Removes every entry of the map, locks of other members notwithstanding (as Hazelcast's destroy). */
  destroy(): Promise<void> {
    const jobs = this.#partitions().map((p) => async () => void (await this.#invoke(p, OpCode.Destroy, {})));
    return this.#timed(opNames[OpCode.Destroy], () => runBounded(jobs, FAN_OUT, true));
  }

  /**
   * One page of partition `p`'s entries from record `offset` of its store on. `next` is where
   * the next page starts: records walked, expired ones included (an older member that does not
   * send it is followed by the entries received).
   */
  async #entriesPage(
    p: number,
    offset: number,
  ): Promise<{ e: Array<[Uint8Array, Uint8Array]>; more: boolean; next: number }> {
    const r = (await this.#invoke(p, OpCode.Entries, { o: offset, n: MAX_BATCH })) as {
      e?: unknown;
      more?: unknown;
      next?: unknown;
    };
    if (!r || !Array.isArray(r.e)) throw new ShoalError("INTERNAL", "Malformed entries result");
    const e = r.e as Array<[Uint8Array, Uint8Array]>;
    const next = typeof r.next === "number" && Number.isSafeInteger(r.next) && r.next >= offset
      ? r.next
      : offset + e.length;
    return { e, more: !!r.more, next };
  }

  #partitions(): number[] {
    return Array.from({ length: this.partitionCount }, (_, i) => i);
  }

  /**
   * Entries partition by partition (in partition order), a page at a time; weakly consistent
   * under concurrent writes: each page is read from its partition's primary when fetched.
   * Pages of up to {@link FAN_OUT} partitions are fetched concurrently: the next partitions'
   * first pages while the current one is consumed, and each partition's next page while its
   * current page is yielded. At most one page per partition in the window is held, so memory
   * stays bounded by FAN_OUT + 1 pages of MAX_BATCH entries. Recorded as one Entries operation
   * when the iteration ends (done, left or failed), its latency the time spent waiting for
   * pages, not the caller's time between entries.
   */
  async *entries(): AsyncIterableIterator<[K, V]> {
    type Page = { e: Array<[Uint8Array, Uint8Array]>; more: boolean; next: number };
    const fetchPage = async (p: number, offset: number): Promise<Page> => {
      const r = await this.#entriesPage(p, offset);
      return { e: r.e, more: r.more, next: r.next };
    };
    // A page fetched ahead may fail before it is awaited; it is awaited (and rethrown) in turn.
    const ahead = (p: number, offset: number): Promise<Page> => {
      const page = fetchPage(p, offset);
      page.catch(() => {});
      return page;
    };
    const first = new Map<number, Promise<Page>>();
    let nextFirst = 0;
    const fill = (upTo: number) => {
      for (; nextFirst < Math.min(upTo, this.partitionCount); nextFirst++) first.set(nextFirst, ahead(nextFirst, 0));
    };
    let waitedMs = 0, failed = false;
    try {
      for (let p = 0; p < this.partitionCount; p++) {
        fill(p + FAN_OUT);
        let page = first.get(p)!;
        first.delete(p);
        let offset = 0;
        for (;;) {
          const asked = this.clock.now();
          const cur = await page;
          waitedMs += this.clock.now() - asked;
          const more = cur.more && cur.next > offset;
          offset = cur.next;
          if (more) page = ahead(p, offset);
          for (const pair of cur.e) yield [decodeValue(pair[0]) as K, decodeValue(pair[1]) as V];
          if (!more) break;
        }
      }
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      this.stats?.record(this.name, opNames[OpCode.Entries], waitedMs, !failed);
    }
  }

  async *keys(): AsyncIterableIterator<K> {
    for await (const [k] of this.entries()) yield k;
  }

  async *values(): AsyncIterableIterator<V> {
    for await (const [, v] of this.entries()) yield v;
  }

  // ---- entry processors (entry_processor.ts) ----------------------------------------------

  #arg(arg: unknown): Uint8Array | undefined {
    return arg === undefined ? undefined : encodeInput(arg, "the entry processor's argument");
  }

  async executeOnKey<R = unknown>(key: K, processor: string, arg?: unknown): Promise<R> {
    return (await this.executeOnKeyWithValue<R>(key, processor, arg)).result;
  }

  async executeOnKeyWithValue<R = unknown>(
    key: K,
    processor: string,
    arg?: unknown,
  ): Promise<{ result: R; value: V | undefined }> {
    const { k, p } = this.#key(key);
    const r = await this.#call(p, OpCode.ExecuteOnKey, { k, pr: processor, pa: this.#arg(arg) });
    return decodeOutcome(r) as { result: R; value: V | undefined };
  }

  executeOnKeys<R = unknown>(keys: Iterable<K>, processor: string, arg?: unknown): Promise<Map<K, R>> {
    return this.#timed(opNames[OpCode.ExecuteOnKeys], () => this.#executeOnKeys<R>(keys, processor, arg));
  }

  async #executeOnKeys<R>(keys: Iterable<K>, processor: string, arg: unknown): Promise<Map<K, R>> {
    const groups = new Map<number, Map<string, { key: K; k: Uint8Array }>>();
    for (const key of keys) {
      const { k, p } = this.#key(key);
      let g = groups.get(p);
      if (!g) (g = new Map(), groups.set(p, g));
      g.set(keyId(k), { key, k });
    }
    const out = new Map<K, R>();
    let failure: unknown = null;
    const jobs: Array<() => Promise<void>> = [];
    for (const [p, g] of groups) {
      const all = [...g.values()];
      for (let i = 0; i < all.length; i += MAX_BATCH) {
        const part = all.slice(i, i + MAX_BATCH);
        jobs.push(async () => {
          const rs = await this.#processKeys(p, part.map((x) => x.k), processor, arg, false);
          rs.forEach((o, j) => {
            try {
              out.set(part[j].key, decodeOutcome(o).result as R);
            } catch (e) {
              failure ??= e;
            }
          });
        });
      }
    }
    await runBounded(jobs, FAN_OUT);
    if (failure !== null) throw failure;
    return out;
  }

  async #processKeys(
    p: number,
    ks: Uint8Array[],
    processor: string,
    arg: unknown,
    presentOnly: boolean,
  ): Promise<unknown[]> {
    const body: Record<string, unknown> = { ks, pr: processor, pa: this.#arg(arg) };
    if (presentOnly) body.po = true;
    let r: unknown;
    try {
      r = await this.#invoke(p, OpCode.ExecuteOnKeys, body);
    } catch (e) {
      // What the processor wrote over these keys is more than one write carries (MAX_WRITE_BYTES):
      // refused before anything was applied, so each half goes as a call of its own.
      if (
        !(ks.length > 1 && e instanceof ShoalError && e.code === "INVALID_ARGUMENT" && /bytes, over/.test(e.message))
      ) {
        throw e;
      }
      const half = ks.length >> 1;
      return [
        ...await this.#processKeys(p, ks.slice(0, half), processor, arg, presentOnly),
        ...await this.#processKeys(p, ks.slice(half), processor, arg, presentOnly),
      ];
    }
    if (!Array.isArray(r) || r.length > ks.length || (r.length === 0 && ks.length > 0)) {
      throw new ShoalError("INTERNAL", "Malformed executeOnKeys result");
    }
    // The primary answers the first keys' outcomes up to MAX_READ_BYTES (the rest were not run): send the rest.
    if (r.length < ks.length) {
      return [...r, ...await this.#processKeys(p, ks.slice(r.length), processor, arg, presentOnly)];
    }
    return r as unknown[];
  }

  /**
   * Per partition: lists its keys (all pages first, so a processor that removes entries does
   * not shift the pages), then runs the processor on them a batch at a time, skipping keys
   * removed meanwhile. {@link FAN_OUT} partitions at a time; results of a window are yielded
   * once its partitions are done, so at most FAN_OUT partitions' keys are held. Recorded as one
   * ExecuteOnEntries operation when the iteration ends, its latency the time spent waiting for
   * the grid (as {@link entries}).
   */
  async *executeOnEntries<R = unknown>(processor: string, arg?: unknown): AsyncIterableIterator<[K, R]> {
    let waitedMs = 0, failed = false;
    try {
      yield* this.#executeOnEntries<R>(processor, arg, (ms) => waitedMs += ms);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      this.stats?.record(this.name, "ExecuteOnEntries", waitedMs, !failed);
    }
  }

  async *#executeOnEntries<R>(
    processor: string,
    arg: unknown,
    waited: (ms: number) => void,
  ): AsyncIterableIterator<[K, R]> {
    for (let start = 0; start < this.partitionCount; start += FAN_OUT) {
      const window = this.#partitions().slice(start, start + FAN_OUT);
      const results: Array<[K, R]> = [];
      let failure: unknown = null;
      const asked = this.clock.now();
      await runBounded(
        window.map((p) => async () => {
          const ks: Uint8Array[] = [];
          for (let offset = 0;;) {
            const r = await this.#entriesPage(p, offset);
            for (const [k] of r.e) ks.push(k);
            if (!r.more || r.next <= offset) break;
            offset = r.next;
          }
          for (let i = 0; i < ks.length; i += MAX_BATCH) {
            const part = ks.slice(i, i + MAX_BATCH);
            const rs = await this.#processKeys(p, part, processor, arg, true);
            rs.forEach((o, j) => {
              if (o === null) return;
              try {
                results.push([decodeValue(part[j]) as K, decodeOutcome(o).result as R]);
              } catch (e) {
                failure ??= e;
              }
            });
          }
        }),
        FAN_OUT,
      ).finally(() => waited(this.clock.now() - asked));
      yield* results;
      if (failure !== null) throw failure;
    }
  }

  // ---- locks (locks.ts) -------------------------------------------------------------------

  /** `counted` false: one of the calls of a tryLock, recorded as a whole there. */
  async #lockCall(
    key: K,
    op: number,
    extra: Record<string, unknown> = {},
    parkMs = 0,
    counted = true,
  ): Promise<unknown> {
    if (this.name.length > MAX_LOCKED_MAP_NAME) {
      throw new ShoalError(
        "INVALID_ARGUMENT",
        `Cannot lock keys of a map whose name exceeds ${MAX_LOCKED_MAP_NAME} characters`,
      );
    }
    const { k, p } = this.#key(key);
    const body = parkMs > 0 ? { k, ...extra, pk: parkMs } : { k, ...extra };
    return await (counted ? this.#call(p, op, body, parkMs) : this.#invoke(p, op, body, parkMs));
  }

  lock(key: K, options: LockOptions = {}): Promise<number> {
    return this.tryLock(key, { ...options, timeoutMs: Infinity }) as Promise<number>;
  }

  /**
   * Asks once (taking a place in the key's queue when it may wait), then waits parked on the
   * primary (parked_ops.ts) up to 2 s per call until granted or out of time. A call answered
   * without parking (the primary parks too many) is repeated after a short pause. Recorded as
   * one LockAcquire operation, its latency the whole wait.
   */
  tryLock(
    key: K,
    options: LockOptions & { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<number | undefined> {
    return this.#timed(opNames[OpCode.LockAcquire], () => this.#tryLock(key, options));
  }

  async #tryLock(
    key: K,
    options: LockOptions & { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<number | undefined> {
    const h = options.owner ?? "";
    // Checked like a TTL: a negative or fractional lease was read as none, a lock held forever.
    const l = checkMs("leaseMs", options.leaseMs) ?? 0;
    const timeoutMs = options.timeoutMs ?? 0;
    const deadline = this.clock.now() + timeoutMs;
    for (let poll = 0, quick = 0;; poll++) {
      const wait = timeoutMs > 0 && !options.signal?.aborted && this.clock.now() < deadline;
      const parkMs = wait && poll > 0 ? parkTime(deadline - this.clock.now()) : 0;
      const asked = this.clock.now();
      const r = (await this.#lockCall(key, OpCode.LockAcquire, { h, l, q: wait }, parkMs, false)) as {
        tok?: number;
        q?: number;
        err?: string;
      };
      if (r?.err) throw new ShoalError(r.err as "OVERLOADED", `Cannot queue for the lock: ${r.err}`);
      if (typeof r?.tok === "number") return r.tok;
      if (!wait) return undefined;
      if (parkMs === 0 || this.clock.now() - asked < parkMs / 2) {
        await pause(
          this.clock,
          Math.min(200, 10 * 2 ** Math.min(quick++, 5), deadline - this.clock.now()),
          options.signal,
        );
      } else quick = 0;
      if (options.signal?.aborted || this.clock.now() >= deadline) {
        const c = (await this.#lockCall(key, OpCode.LockCancel, { h }, 0, false)) as { tok?: number } | null;
        return typeof c?.tok === "number" ? c.tok : undefined;
      }
    }
  }

  async unlock(key: K, options: { owner?: string } = {}): Promise<void> {
    const r = (await this.#lockCall(key, OpCode.LockRelease, { h: options.owner ?? "" })) as { err?: string } | true;
    if (r !== true) throw new ShoalError("CONFLICT", `Cannot unlock: this member and owner do not hold the lock`);
  }

  async isLocked(key: K): Promise<boolean> {
    return ((await this.#lockCall(key, OpCode.LockStatus)) as { locked?: boolean })?.locked === true;
  }

  async forceUnlock(key: K): Promise<void> {
    await this.#lockCall(key, OpCode.LockForceRelease);
  }
}

/**
 * Whether a third argument of `replace` is expiry options rather than a new value: a plain
 * object whose only keys are `ttlMs` and `maxIdleMs`, at least one (to replace-if-same with
 * such a value, pass options as the fourth argument).
 */
function isExpiryOptions(x: unknown): x is ExpiryOptions {
  if (x === null || typeof x !== "object" || Object.getPrototypeOf(x) !== Object.prototype) return false;
  const keys = Object.keys(x);
  return keys.length > 0 && keys.every((k) => k === "ttlMs" || k === "maxIdleMs");
}

function checkMs(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0 || v > MAX_EXPIRY_MS) {
    throw new RangeError(`Cannot use ${name} ${v}: a whole number of milliseconds from 0 to ${MAX_EXPIRY_MS}`);
  }
  return v;
}

/** The op body fields of per-entry expiry options (absent = the map's default). */
function expiryBody(opts: ExpiryOptions | undefined): { ttl?: number; mi?: number } {
  return withExpiry({}, opts) as { ttl?: number; mi?: number };
}

/** `body` with the TTL and max-idle of `opts` added (none without `opts`): no copy per call. */
function withExpiry(out: Record<string, unknown>, opts: ExpiryOptions | undefined): Record<string, unknown> {
  if (opts === undefined) return out;
  const ttl = checkMs("ttlMs", opts?.ttlMs);
  const mi = checkMs("maxIdleMs", opts?.maxIdleMs);
  if (ttl !== undefined) out.ttl = ttl;
  if (mi !== undefined) out.mi = mi;
  return out;
}

/**
 * Runs async jobs with at most `limit` in flight; rejects with the first failure, starting no
 * more jobs after it unless `all` (then every job runs first).
 */
async function runBounded(jobs: Array<() => Promise<void>>, limit: number, all = false): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (next < jobs.length && (failed === null || all)) {
      const job = jobs[next++];
      try {
        await job();
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failed !== null) throw failed;
}
