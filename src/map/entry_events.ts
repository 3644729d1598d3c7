/**
 * Entry events: what they are, the bounded per-partition event log every replica keeps
 * (computed while applying writes, so a promoted backup holds the same events under the same
 * sequence numbers), and the bounded queue in front of each listener.
 *
 * An event is named by its partition, the sequence number of the write that caused it and
 * its index among that write's effects (a putAll changes several keys in one write). A
 * consumer that remembers the last `(seq, index)` per partition can resume after it.
 */
export const entryEventTypes = ["added", "updated", "removed", "expired", "evicted", "merged", "cleared"] as const;
export type EntryEventType = (typeof entryEventTypes)[number];
/** Types of the events that name one key (all but `cleared`). */
export type KeyEventType = Exclude<EntryEventType, "cleared">;

/**
 * What one applied effect did to one key (as bytes), or to a whole map in one partition
 * (`cleared`: `clear()` or `destroy()` removed every entry the partition held; its key is
 * empty): computed by every replica while applying writes.
 */
export interface AppliedChange {
  type: EntryEventType;
  m: string;
  key: Uint8Array;
  value?: Uint8Array;
  oldValue?: Uint8Array;
}

/** An event of one key, with key and values decoded. */
export interface KeyEntryEvent<K = unknown, V = unknown> {
  type: KeyEventType;
  map: string;
  key: K;
  value?: V;
  oldValue?: V;
  partition: number;
  seq: number;
  index: number;
}

/**
 * `clear()` or `destroy()` removed every entry of the map that partition `partition` held (as
 * Hazelcast's MAP_CLEARED, but one per partition that held entries, so that it has a position
 * like any other event). It names no key, and it reaches listeners of one key too.
 */
export interface ClearedEvent {
  type: "cleared";
  map: string;
  key?: undefined;
  value?: undefined;
  oldValue?: undefined;
  partition: number;
  seq: number;
  index: number;
}

/** An entry event: of one key, or a partition's share of a map cleared. */
export type EntryEvent<K = unknown, V = unknown> = KeyEntryEvent<K, V> | ClearedEvent;

/**
 * Events a listener will never see: its queue overflowed, or the partition's event log no
 * longer reached back to where it was. Writes with sequence numbers `fromSeq..toSeq`
 * (inclusive) of `partition` may have had events that were not delivered.
 */
export interface GapEvent {
  type: "gap";
  partition: number;
  fromSeq: number;
  toSeq: number;
}

/**
 * One logged event, as bytes: the change and where it happened, its key and value as offsets
 * into the buffer the write's own bytes were copied into (write_log.ts). The ring keeps these
 * fields in columns and builds a RawEvent only for a reader (see EventRing).
 */
export class RawEvent implements AppliedChange {
  constructor(
    readonly seq: number,
    readonly i: number,
    readonly type: EntryEventType,
    readonly m: string,
    readonly bytes: Uint8Array,
    readonly ko: number,
    readonly kl: number,
    /** Value offset and length in `bytes` (length -1: none). */
    readonly vo: number,
    readonly vl: number,
    readonly oldValue: Uint8Array | undefined,
  ) {}

  /** Event `(seq, i)` of change `c`, whose key and value are views of `buf` (copied into a buffer of their own when not). */
  static of(seq: number, i: number, c: AppliedChange, buf: Uint8Array | null): RawEvent {
    const k = c.key, v = c.value;
    const inBuf = (x: Uint8Array) => buf !== null && x.buffer === buf.buffer;
    if (inBuf(k) && (!v || inBuf(v))) {
      const base = buf!.byteOffset;
      return new RawEvent(
        seq,
        i,
        c.type,
        c.m,
        buf!,
        k.byteOffset - base,
        k.byteLength,
        v ? v.byteOffset - base : 0,
        v ? v.byteLength : -1,
        c.oldValue,
      );
    }
    const own = new Uint8Array(k.byteLength + (v?.byteLength ?? 0));
    own.set(k);
    if (v) own.set(v, k.byteLength);
    return new RawEvent(seq, i, c.type, c.m, own, 0, k.byteLength, k.byteLength, v ? v.byteLength : -1, c.oldValue);
  }

  get key(): Uint8Array {
    return this.bytes.subarray(this.ko, this.ko + this.kl);
  }

  get value(): Uint8Array | undefined {
    return this.vl < 0 ? undefined : this.bytes.subarray(this.vo, this.vo + this.vl);
  }
}

/** One held event as a snapshot carries it: seq, index, type (index in entryEventTypes), map, key, value, old value. */
export type EventTuple = [number, number, number, string, Uint8Array, Uint8Array | null, Uint8Array | null];

/** A position in a partition's events: everything up to and including `(seq, i)` was seen. */
export interface EventCursor {
  seq: number;
  i: number;
}

/** Whether event `(seq, i)` comes after cursor `c`. */
export function after(seq: number, i: number, c: EventCursor): boolean {
  return seq > c.seq || (seq === c.seq && i > c.i);
}

/** Approximate bytes one logged event holds (its key and values, plus about 160 for its objects). */
export function rawEventBytes(e: RawEvent): number {
  return eventBytes(e.m, e.kl, e.vl, e.oldValue);
}

/**
 * Bytes of keys and values a partition copy's entry events hold by default (about). With
 * 271 partitions that is a few MB per member, below what the partitions hold once loaded
 * (issue 16: 32 KiB per copy held a fifth of a 200,000-entry load's events alive).
 */
export const DEFAULT_EVENT_BYTES = 16 * 1024;

/** Most map names a snapshot's events may leave out (`ex`; the snapshot message's limit). */
export const MAX_EXCLUDED_MAPS = 1024;

/** Fields of one event in {@link EventRing}'s integer column: index, type, key offset and length, value offset and length. */
const INTS = 6;

/**
 * A partition's recent events, at most `limit` events and about `maxBytes` bytes of keys and
 * values (whole writes are dropped from the front; the newest write's events always stay, so a
 * write of more than `limit` changes, at most MAX_WRITE_EFFECTS, is held whole until the next
 * write: its listeners get it, and eviction counts what it added).
 * `coveredFrom`: every event of writes with seq > coveredFrom is held.
 *
 * Kept in columns (a circular buffer of typed arrays and arrays of references), not one
 * object per event: the ring holds each partition's last writes of a load, and under Bun each
 * small object that outlives the load keeps the heap block around it resident (issue 16).
 * `since` builds {@link RawEvent}s for the events it returns.
 */
export class EventRing {
  #seq = new Float64Array(0);
  #int = new Int32Array(0);
  #m: string[] = [];
  #bytes: Uint8Array[] = [];
  #old: Array<Uint8Array | undefined> = [];
  /** Position of the oldest event in the columns, and the number held. */
  #head = 0;
  #n = 0;
  coveredFrom: number;
  /**
   * Maps whose events of writes up to `until` this ring does not hold: a copy restored from a
   * snapshot that left them out (it carries the events of the maps listened to on its source).
   * A reader of such a map behind `until` gets a gap; before, it resumed silently past them.
   */
  #missing: { maps: Set<string>; until: number } | undefined;

  /** Approximate bytes held (see rawEventBytes). */
  bytes = 0;

  constructor(readonly limit = 256, fromSeq = 0, readonly maxBytes = DEFAULT_EVENT_BYTES) {
    this.coveredFrom = fromSeq;
  }

  get size(): number {
    return this.#n;
  }

  /** Starts over after `seq` (a snapshot replaced the partition's content). */
  reset(seq: number): void {
    this.#missing = undefined;
    this.#seq = new Float64Array(0);
    this.#int = new Int32Array(0);
    this.#m = [];
    this.#bytes = [];
    this.#old = [];
    this.#head = this.#n = 0;
    this.bytes = 0;
    this.coveredFrom = seq;
  }

  /**
   * The events held, oldest first, as a snapshot carries them (`keep`: of the maps it accepts
   * only), and `from`: every event of writes with seq > from is among them, but for the maps in
   * `ex` (present when some were left out, by `keep` or before this ring got them), whose events
   * up to the snapshot's seq are not.
   */
  exportEvents(keep?: (m: string) => boolean): { from: number; ev: EventTuple[]; ex?: string[] } {
    const ev: EventTuple[] = [];
    const ex = new Set<string>(this.#missing?.maps);
    for (let j = 0; j < this.#n; j++) {
      const m = this.#m[(this.#head + j) % this.#seq.length];
      if (keep && !keep(m)) {
        ex.add(m);
        continue;
      }
      const e = this.#event(j);
      ev.push([e.seq, e.i, TYPE_INDEX[e.type], e.m, e.key, e.value ?? null, e.oldValue ?? null]);
    }
    // Past the wire's limit on `ex` (messages.ts), no events at all: the copy starts after the
    // snapshot, and every reader behind it gets a gap (a snapshot over the limit would be refused).
    if (ex.size > MAX_EXCLUDED_MAPS) return { from: this.coveredFrom, ev: [] };
    return ex.size > 0 ? { from: this.coveredFrom, ev, ex: [...ex].sort() } : { from: this.coveredFrom, ev };
  }

  /**
   * Starts over with a snapshot's events: every event of writes with seq > `from` is in `ev`
   * (oldest first); those after `upTo` (the seq the copy starts at) are left out, since the
   * writes after it will bring them again. A list that does not check out (out of order, an
   * unknown type) leaves the ring starting after `upTo`. The maps in `ex` have none of their
   * events up to `upTo` here: their readers behind it get a gap.
   */
  restore(from: number, ev: readonly EventTuple[], upTo: number, ex?: readonly string[]): void {
    this.reset(upTo);
    if (from >= upTo) return;
    let last: EventCursor = { seq: from, i: Number.MAX_SAFE_INTEGER };
    for (const e of ev) {
      if (!(after(e[0], e[1], last) && entryEventTypes[e[2]] !== undefined)) return this.reset(upTo);
      last = { seq: e[0], i: e[1] };
    }
    this.coveredFrom = from;
    if (ex && ex.length > 0) this.#missing = { maps: new Set(ex), until: upTo };
    for (const [seq, i, type, m, key, value, oldValue] of ev) {
      if (seq > upTo) break;
      // Key, value and old value copied out of the received chunk (RawEvent.of copies the first two).
      const change = { type: entryEventTypes[type], m, key, value: value ?? undefined, oldValue: oldValue?.slice() };
      this.push(RawEvent.of(seq, i, change, null));
    }
  }

  push(e: RawEvent): void {
    this.add(e.seq, e.i, e.type, e.m, e.bytes, e.ko, e.kl, e.vo, e.vl, e.oldValue);
  }

  /**
   * Appends event `(seq, i)`: its key at `ko` (`kl` bytes) in `bytes`, its value at `vo` (`vl`
   * bytes, -1: none), `oldValue` a copy of its own.
   */
  add(
    seq: number,
    i: number,
    type: EntryEventType,
    m: string,
    bytes: Uint8Array,
    ko: number,
    kl: number,
    vo: number,
    vl: number,
    oldValue: Uint8Array | undefined,
  ): void {
    if (this.#n === this.#seq.length) this.#grow();
    const cap = this.#seq.length, at = (this.#head + this.#n) % cap, o = at * INTS, int = this.#int;
    this.#seq[at] = seq;
    int[o] = i, int[o + 1] = TYPE_INDEX[type], int[o + 2] = ko, int[o + 3] = kl, int[o + 4] = vo, int[o + 5] = vl;
    this.#m[at] = m;
    this.#bytes[at] = bytes;
    this.#old[at] = oldValue;
    this.#n++;
    this.bytes += eventBytes(m, kl, vl, oldValue);
    while ((this.#n > this.limit || this.bytes > this.maxBytes) && this.#seq[this.#head] !== seq) {
      // Drop the oldest write's events entirely, so coveredFrom stays exact.
      const drop = this.#seq[this.#head];
      while (this.#n > 0 && this.#seq[this.#head] === drop) this.#shift();
      this.coveredFrom = drop;
      if (this.#missing && this.coveredFrom >= this.#missing.until) this.#missing = undefined;
    }
    // Columns grown past the limit for one large write go back to it once it is dropped.
    if (this.#seq.length > this.limit + 1 && this.#n <= this.limit) this.#resize(this.limit + 1);
  }

  /** Drops the oldest event (its references go now). */
  #shift(): void {
    const h = this.#head, o = h * INTS;
    this.bytes -= eventBytes(this.#m[h], this.#int[o + 3], this.#int[o + 5], this.#old[h]);
    this.#bytes[h] = EMPTY_BYTES;
    this.#old[h] = undefined;
    this.#head = (h + 1) % this.#seq.length;
    this.#n--;
  }

  /** Doubles the columns (up to the limit and one more, beyond it only for one write's events). */
  #grow(): void {
    const cap = this.#seq.length;
    this.#resize(cap < this.limit + 1 ? Math.max(4, Math.min(cap * 2, this.limit + 1)) : cap * 2);
  }

  /** Columns of `next` places, the held events first in order. */
  #resize(next: number): void {
    const cap = this.#seq.length;
    if (next < this.#n) throw new Error(`event ring of ${this.#n} events cannot shrink to ${next}`);
    const seq = new Float64Array(next), int = new Int32Array(next * INTS);
    const m = new Array<string>(next),
      bytes = new Array<Uint8Array>(next),
      old = new Array<Uint8Array | undefined>(next);
    for (let j = 0; j < this.#n; j++) {
      const from = (this.#head + j) % cap;
      seq[j] = this.#seq[from];
      int.set(this.#int.subarray(from * INTS, from * INTS + INTS), j * INTS);
      m[j] = this.#m[from], bytes[j] = this.#bytes[from], old[j] = this.#old[from];
    }
    this.#seq = seq, this.#int = int, this.#m = m, this.#bytes = bytes, this.#old = old;
    this.#head = 0;
  }

  /** The event `j` places from the oldest held. */
  #event(j: number): RawEvent {
    const at = (this.#head + j) % this.#seq.length, o = at * INTS, int = this.#int;
    return new RawEvent(
      this.#seq[at],
      int[o],
      entryEventTypes[int[o + 1]],
      this.#m[at],
      this.#bytes[at],
      int[o + 2],
      int[o + 3],
      int[o + 4],
      int[o + 5],
      this.#old[at],
    );
  }

  /**
   * Events after cursor `c` with seq ≤ `upTo`, at most `max`. `gap` is set when events after
   * `c` are no longer held: writes `c.seq + 1 .. coveredFrom` are lost to this reader, or, for a
   * reader of map `m` whose events a restored snapshot left out, up to the snapshot's seq.
   */
  since(
    c: EventCursor,
    upTo: number,
    max: number,
    m?: string,
  ): { events: RawEvent[]; gap?: { fromSeq: number; toSeq: number } } {
    const out: RawEvent[] = [];
    let gap: { fromSeq: number; toSeq: number } | undefined;
    let lostTo = c.seq < this.coveredFrom ? this.coveredFrom : -1;
    const miss = this.#missing;
    if (m !== undefined && miss && c.seq < miss.until && miss.maps.has(m)) lostTo = Math.max(lostTo, miss.until);
    if (lostTo >= 0) gap = { fromSeq: c.seq + 1, toSeq: lostTo };
    // Binary search for the first event after the cursor.
    const cap = this.#seq.length;
    let lo = 0, hi = this.#n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1, at = (this.#head + mid) % cap;
      if (after(this.#seq[at], this.#int[at * INTS], c)) hi = mid;
      else lo = mid + 1;
    }
    for (let j = lo; j < this.#n && out.length < max; j++) {
      if (this.#seq[(this.#head + j) % cap] > upTo) break;
      out.push(this.#event(j));
    }
    return gap ? { events: out, gap } : { events: out };
  }
}

const TYPE_INDEX = Object.fromEntries(entryEventTypes.map((t, i) => [t, i])) as Record<EntryEventType, number>;
const EMPTY_BYTES = new Uint8Array(0);

function eventBytes(m: string, kl: number, vl: number, oldValue: Uint8Array | undefined): number {
  return 160 + m.length + kl + Math.max(0, vl) + (oldValue?.byteLength ?? 0);
}

/**
 * The queue in front of one listener: at most `capacity` events. A push onto a full queue
 * drops the event and widens that partition's pending gap instead; the gap is delivered as
 * a `GapEvent` (before any later event of that partition) once there is room. So a slow
 * listener never blocks writers and always learns exactly which writes it may have missed.
 */
export class ListenerQueue<E extends { partition: number; seq: number }> {
  #items: Array<E | GapEvent> = [];
  #head = 0;
  #gaps = new Map<number, GapEvent>();
  #waiter: (() => void) | null = null;
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(readonly capacity = 10_000) {}

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(e: E): void {
    this.#flushGaps();
    if (this.length >= this.capacity || this.#gaps.has(e.partition)) {
      // Keep per-partition order: once a partition has a pending gap, its later events wait behind it as part of it.
      this.dropped++;
      const g = this.#gaps.get(e.partition);
      if (g) g.toSeq = Math.max(g.toSeq, e.seq), g.fromSeq = Math.min(g.fromSeq, e.seq);
      else this.#gaps.set(e.partition, { type: "gap", partition: e.partition, fromSeq: e.seq, toSeq: e.seq });
      return;
    }
    this.#items.push(e);
    this.#wake();
  }

  /** Queues a gap directly (the source could not deliver these writes' events). */
  pushGap(g: GapEvent): void {
    const cur = this.#gaps.get(g.partition);
    if (cur) (cur.fromSeq = Math.min(cur.fromSeq, g.fromSeq), cur.toSeq = Math.max(cur.toSeq, g.toSeq));
    else this.#gaps.set(g.partition, { ...g });
    this.#flushGaps();
    this.#wake();
  }

  /** The next item, or undefined when empty. */
  shift(): E | GapEvent | undefined {
    if (this.length === 0) {
      this.#flushGaps();
      if (this.length === 0) return undefined;
    }
    const e = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }

  /** Resolves when an item may be available (or at once if one is). */
  wait(): Promise<void> {
    if (this.length > 0 || this.#gaps.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.#waiter;
      this.#waiter = () => (prev?.(), resolve());
    });
  }

  /** Wakes a waiter (e.g. on close). */
  wake(): void {
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  #flushGaps(): void {
    // A gap takes one slot; it goes in once there is room for it and one more event.
    for (const [p, g] of this.#gaps) {
      if (this.length + 1 >= this.capacity) return;
      this.#items.push(g);
      this.#gaps.delete(p);
    }
  }
}

/** Options of `addEntryListener` and `events`. */
export interface EntryListenerOptions<K = unknown> {
  /** Only this key's events. */
  key?: K;
  /** Carry `value` and `oldValue`. @default true */
  includeValue?: boolean;
  /**
   * Only events of partitions whose primary is this member when the listener registers (as
   * Hazelcast's local listeners; not followed through migrations). @default false
   */
  local?: boolean;
  /**
   * Resume after these positions (partition → the last event seen, `{ s: seq, i: index }`)
   * instead of starting from now; partitions not listed start from now. If a partition's
   * event log no longer reaches back that far, the first thing delivered is a `gap`.
   */
  from?: ReadonlyMap<number, { s: number; i: number }>;
}

/** An open subscription: its events, the positions it started from, and `close()`. */
export interface EventSubscription<K, V> extends AsyncIterable<EntryEvent<K, V> | GapEvent> {
  readonly id: string;
  /** Partition → the position it started after. */
  readonly start: ReadonlyMap<number, { s: number; i: number }>;
  close(): void;
}

export type EntryListener<K = unknown, V = unknown> = (e: EntryEvent<K, V> | GapEvent) => void | Promise<void>;
