/**
 * Writes as a partition copy applies and ships them, and its replication log: the last writes,
 * re-shipped to a backup that missed some (a backup further behind gets a snapshot), at most
 * `limit` writes and about `maxBytes` bytes.
 *
 * The log is kept compact (issue 16). It holds each partition's last writes of a load, and
 * each small object that outlives the load's garbage keeps memory resident around it (Bun
 * after a full GC: ~280 bytes of RSS per surviving object of the log and the entry events,
 * which were allocated at the load's end into free cells spread over the whole heap).
 * So a logged write keeps its effects' keys and values in the one buffer of its own that
 * {@link packBytes} copied them into (a view into the received frame would keep the whole
 * frame alive), and its effects' numbers (offsets into that buffer among them) in one
 * `Float64Array`, not an object per effect with two byte views as shipped. `from` builds plain
 * entries again to ship them.
 */
import { resultBytes } from "./dedupe_records.ts";

const EMPTY = new Uint8Array(0);

/** Why an effect happened, when not a client's write. */
export const EffectCause = { Expired: 1, Evicted: 2, Merged: 3 } as const;

/** A record change, as shipped to backups. `v: null` deletes. */
export interface Effect {
  m: string;
  k?: Uint8Array;
  v?: Uint8Array | null;
  clear?: boolean;
  destroy?: boolean;
  /** The write's stamp: a hybrid logical clock in ms (see hlc.ts), set by the primary. */
  at: number;
  /** With `v`: the time to live and max-idle the primary decided (ms; absent = none). */
  ttl?: number;
  mi?: number;
  /** An `EffectCause` (absent = a client's write). */
  why?: number;
  /** Reads of `k` on the primary: its last access becomes at least `at`; nothing else changes. */
  touch?: boolean;
  /** The partition had no serving primary until `at`: idle time before `at` does not count (expiry.ts). */
  floor?: boolean;
}

/** One applied write: what backups receive, in order. */
export interface LogEntry {
  seq: number;
  /** Call id, for dedupe. */
  c?: string;
  /** The watermark of the call's client (every call of it numbered below is answered; invoke/call_id.ts). */
  w?: number;
  /** The result the caller gets. */
  r?: unknown;
  e: Effect[];
  /**
   * The caller, when the primary does not answer it: each member in `ak` (the sync backups and
   * migration targets) answers it once it applied the write (InvokeBackupAnswer).
   */
  o?: string;
  ak?: string[];
  /**
   * A split-brain merge's write: the calls the side that merged may have applied (its
   * partition's dedupe records). Each copy records them as `x` records (dedupe_records.ts), so
   * a retry of one is answered INDETERMINATE here rather than applied a second time.
   */
  u?: string[];
}

/**
 * Approximate bytes a log entry holds: its keys, values and result, plus what the runtime
 * spends on each object (an effect and its byte arrays cost about 160 bytes besides their
 * contents in Bun and Deno).
 */
export function logEntryBytes(en: LogEntry | LoggedWrite): number {
  let n = 64 + resultBytes(en.r);
  if (en instanceof LoggedWrite) return en.size;
  else {
    if (en.u !== undefined) { for (const c of en.u) n += 16 + c.length; }
    for (const e of en.e) n += 160 + e.m.length + (e.k?.byteLength ?? 0) + (e.v?.byteLength ?? 0);
  }
  return n;
}

/** Copies byte arrays one after another into one new buffer of `total` bytes: returns views of the copies. */
export function packer(total: number): { buf: Uint8Array; view: (bytes: Uint8Array) => Uint8Array } {
  const buf = new Uint8Array(total);
  let at = 0;
  return {
    buf,
    view: (bytes) => {
      const start = at;
      buf.set(bytes, at);
      at += bytes.byteLength;
      return buf.subarray(start, at);
    },
  };
}

/**
 * Copies `entry`'s keys and values one after another (each effect's key, then its value, in
 * the effects' order) into one new buffer, which the log and the entry events then hold:
 * views into the frame a write arrived in would keep that whole frame alive (about one frame
 * per partition write, each carrying the writes of many partitions; issue 16). The effects
 * keep their own byte arrays (no view is made per key and value: a `subarray` costs about as
 * much as copying 100 bytes under Bun). @returns the buffer (empty when the effects hold no bytes)
 */
export function packBytes(entry: LogEntry): Uint8Array {
  const effects = entry.e;
  let n = 0;
  for (let i = 0; i < effects.length; i++) {
    const e = effects[i];
    if (e.k) n += e.k.byteLength;
    if (e.v) n += e.v.byteLength;
  }
  if (n === 0) return EMPTY;
  const buf = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < effects.length; i++) {
    const e = effects[i];
    if (e.k) copyInto(buf, e.k, at);
    if (e.v) copyInto(buf, e.v, packedValueAt(e, at));
    at = packedEnd(e, at);
  }
  return buf;
}

/**
 * The layout of {@link packBytes}' buffer, which the log and the entry events read by offset:
 * effect after effect, its key's bytes, then its value's. @returns where the value of effect `e`
 * starts, when `e` starts at `at`
 */
export function packedValueAt(e: Effect, at: number): number {
  return e.k ? at + e.k.byteLength : at;
}

/** Where the effect after `e` starts in {@link packBytes}' buffer, when `e` starts at `at`. */
export function packedEnd(e: Effect, at: number): number {
  const vo = packedValueAt(e, at);
  return e.v ? vo + e.v.byteLength : vo;
}

/** `buf.set(bytes, at)`, by a loop for small arrays (cheaper than the native call under Bun and Deno). */
function copyInto(buf: Uint8Array, bytes: Uint8Array, at: number): void {
  const n = bytes.length;
  if (n > 64) return buf.set(bytes, at);
  for (let i = 0; i < n; i++) buf[at + i] = bytes[i];
}

const F_CLEAR = 1, F_DESTROY = 2, F_TOUCH = 4, F_FLOOR = 8;
/** Value length of an effect without `v`, and of one with `v: null`. */
const NO_VALUE = -1, NULL_VALUE = -2;

/** One effect as the log keeps it: its key and value as offsets into the write's buffer. */
export class LoggedEffect {
  constructor(
    readonly m: string,
    readonly at: number,
    readonly bytes: Uint8Array,
    /** Key: offset and length in `bytes` (length -1: no key). */
    readonly ko: number,
    readonly kl: number,
    /** Value: offset and length in `bytes` (length NO_VALUE or NULL_VALUE). */
    readonly vo: number,
    readonly vl: number,
    readonly ttl: number | undefined,
    readonly mi: number | undefined,
    readonly why: number | undefined,
    readonly flags: number,
  ) {}

  get k(): Uint8Array | undefined {
    return this.kl < 0 ? undefined : this.bytes.subarray(this.ko, this.ko + this.kl);
  }

  get v(): Uint8Array | null | undefined {
    if (this.vl === NULL_VALUE) return null;
    return this.vl < 0 ? undefined : this.bytes.subarray(this.vo, this.vo + this.vl);
  }

  /** The effect as shipped (only the fields it had; a flag that was false is absent). */
  toEffect(): Effect {
    const e: Effect = { m: this.m, at: this.at };
    const k = this.k, v = this.v;
    if (k !== undefined) e.k = k;
    if (v !== undefined) e.v = v;
    if (this.flags & F_CLEAR) e.clear = true;
    if (this.flags & F_DESTROY) e.destroy = true;
    if (this.ttl !== undefined) e.ttl = this.ttl;
    if (this.mi !== undefined) e.mi = this.mi;
    if (this.why !== undefined) e.why = this.why;
    if (this.flags & F_TOUCH) e.touch = true;
    if (this.flags & F_FLOOR) e.floor = true;
    return e;
  }
}

/** Numbers of one effect in {@link LoggedWrite}'s column: at, key offset and length, value offset and length, flags, ttl, mi, why (NaN: absent). */
const NUMS = 9;

/**
 * One write as the log keeps it: its effects in one column of numbers (see LoggedEffect for
 * their meaning) and their keys and values in one buffer, not one object per effect (each
 * small object that outlives a load keeps memory resident around it; issue 16). `e` builds
 * the effects' objects.
 */
export class LoggedWrite {
  readonly seq: number;
  readonly c: string | undefined;
  readonly w: number | undefined;
  readonly r: unknown;
  readonly o: string | undefined;
  /** Shared with the other writes of the same ackers (Primary's directAckers). */
  readonly ak: string[] | undefined;
  readonly u: string[] | undefined;
  /** Approximate bytes held (logEntryBytes). */
  readonly size: number;
  /** The effects' map names: one for all, or one per effect. */
  readonly #m: string | string[];
  readonly #bytes: Uint8Array;
  readonly #nums: Float64Array;

  /** `entry`, its effects' bytes in `buf` as {@link packBytes} packed them (null: packed here). */
  constructor(entry: LogEntry, buf: Uint8Array | null) {
    this.seq = entry.seq;
    this.c = entry.c;
    this.w = entry.w;
    this.r = entry.r;
    this.o = entry.o;
    this.ak = entry.ak;
    this.u = entry.u;
    const effects = entry.e, n = effects.length;
    if (buf === null) buf = packBytes(entry);
    const bytes = buf, nums = new Float64Array(n * NUMS);
    let m: string | string[] = n > 0 ? effects[0].m : "", size = 64 + resultBytes(entry.r), at = 0;
    if (entry.u !== undefined) { for (const c of entry.u) size += 16 + c.length; }
    for (let i = 0; i < n; i++) {
      const e = effects[i], k = e.k, v = e.v ?? undefined, o = i * NUMS;
      let ko = -1, kl = -1, vo = 0;
      const vl = v ? v.byteLength : e.v === null ? NULL_VALUE : NO_VALUE;
      if (k) (ko = at, kl = k.byteLength);
      if (v) vo = packedValueAt(e, at);
      at = packedEnd(e, at);
      nums[o] = e.at, nums[o + 1] = ko, nums[o + 2] = kl, nums[o + 3] = vo, nums[o + 4] = vl;
      nums[o + 5] = (e.clear ? F_CLEAR : 0) | (e.destroy ? F_DESTROY : 0) | (e.touch ? F_TOUCH : 0) |
        (e.floor ? F_FLOOR : 0);
      nums[o + 6] = e.ttl ?? NaN, nums[o + 7] = e.mi ?? NaN, nums[o + 8] = e.why ?? NaN;
      if (typeof m === "string" && e.m !== m) m = effects.slice(0, i).map(() => m as string);
      if (typeof m !== "string") m.push(e.m);
      size += 160 + e.m.length + Math.max(0, kl) + Math.max(0, vl);
    }
    this.#m = m, this.#bytes = bytes, this.#nums = nums, this.size = size;
  }

  /** The effects, as objects built from the columns. */
  get e(): LoggedEffect[] {
    const nums = this.#nums, out: LoggedEffect[] = [];
    const opt = (x: number) => Number.isNaN(x) ? undefined : x;
    for (let o = 0, i = 0; o < nums.length; o += NUMS, i++) {
      const m = typeof this.#m === "string" ? this.#m : this.#m[i];
      out.push(
        new LoggedEffect(
          m,
          nums[o],
          this.#bytes,
          nums[o + 1],
          nums[o + 2],
          nums[o + 3],
          nums[o + 4],
          opt(nums[o + 6]),
          opt(nums[o + 7]),
          opt(nums[o + 8]),
          nums[o + 5],
        ),
      );
    }
    return out;
  }

  /** The entry as shipped (only the fields it had). */
  toEntry(): LogEntry {
    const en: LogEntry = { seq: this.seq, e: this.e.map((e) => e.toEffect()) };
    if (this.c !== undefined) en.c = this.c;
    if (this.w !== undefined) en.w = this.w;
    if (this.r !== undefined) en.r = this.r;
    if (this.o !== undefined) en.o = this.o;
    if (this.ak !== undefined) en.ak = this.ak;
    if (this.u !== undefined) en.u = this.u;
    return en;
  }
}

/** A partition copy's last writes: at most `limit` writes and about `maxBytes` bytes (logEntryBytes). */
export class WriteLog {
  #log: LoggedWrite[] = [];
  /** Approximate bytes held (see logEntryBytes). */
  bytes = 0;

  constructor(readonly limit: number, readonly maxBytes: number) {}

  get length(): number {
    return this.#log.length;
  }

  /** The write `i` places from the oldest held (negative: from the newest). */
  at(i: number): LoggedWrite | undefined {
    return this.#log.at(i);
  }

  /** The writes held, oldest first. */
  values(): IterableIterator<LoggedWrite> {
    return this.#log.values();
  }

  /** Appends the next write (its bytes packed in `buf` by packBytes; null: packed here), dropping the oldest beyond the limits. */
  push(entry: LogEntry, buf: Uint8Array | null): void {
    const w = new LoggedWrite(entry, buf);
    this.#log.push(w);
    this.bytes += logEntryBytes(w);
    const log = this.#log;
    if (log.length > this.limit * 2 || this.bytes > this.maxBytes * 1.5) {
      // Trimmed in batches (amortized): down to `limit` writes and `maxBytes` bytes, the newest always kept.
      let keep = Math.min(log.length, this.limit);
      let bytes = 0;
      for (let i = 0; i < log.length - keep; i++) bytes += logEntryBytes(log[i]);
      let kept = this.bytes - bytes;
      while (keep > 1 && kept > this.maxBytes) kept -= logEntryBytes(log[log.length - keep--]);
      this.#log = log.slice(-keep);
      this.bytes = kept;
    }
  }

  /** Entries with seq ≥ from, as shipped, or null when the log no longer reaches back that far. */
  from(from: number, seq: number): LogEntry[] | null {
    if (from > seq) return [];
    const log = this.#log;
    if (log.length === 0 || log[0].seq > from) return null;
    const out: LogEntry[] = [];
    for (let i = from - log[0].seq; i < log.length; i++) out.push(log[i].toEntry());
    return out;
  }

  clear(): void {
    this.#log = [];
    this.bytes = 0;
  }
}
