/**
 * The dedupe records of one partition copy: call id → the write's partition sequence number
 * and result, so a retried write is answered from its record, not applied again.
 *
 * Client-acknowledged, in the style of RIFL (Lee et al., "Implementing Linearizability at
 * Large Scale and Low Latency", SOSP 2015). A call id names its client (one invoker) and a
 * sequence number (invoke/call_id.ts), and each request carries the client's watermark: every
 * call of that client below it is answered and will never be sent again. A copy keeps the
 * record of every call at or above its client's watermark, however many other writes the
 * partition takes meanwhile, and drops those below. A request whose number is below the
 * watermark this copy knows is never applied: the primary answers INDETERMINATE (its
 * record, if it had one, is gone). The watermark travels with each write to the backups
 * (LogEntry `w`) and with snapshots, so a promoted backup or a migrated copy knows it too.
 *
 * Bounds: a client's records here span at most its invoker's `maxPendingCalls` numbers (the
 * watermark is per partition; the invoker refuses a call further than that from its oldest
 * pending call to the same partition). When a client's
 * member leaves the member view, its records are dropped and its watermark here rises past
 * every call recorded, so a late retry of one of them is refused, not applied. Hard caps
 * (count and bytes of results per copy) guard against a misbehaving client: past them the
 * oldest record of the client holding the most is dropped, its watermark rises past it,
 * and `dedupeEvicted` counts it. Clients remembered per copy are capped too (departed ones
 * forgotten first; `dedupeForgotten` counts those). Call ids of another form (none from an
 * invoker) get the bounded window of old: the last `window` records, `windowBytes` of results.
 */
import { memberOfClient, parseCallId } from "../invoke/call_id.ts";

export interface DedupeRecord {
  seq: number;
  r: unknown;
  /** The map the write changed, when it changed one (per-map backup counts drop it with the map). */
  m?: string;
  /**
   * The call may have been applied on the side of a split that merged into this cluster (its
   * call id came with the merge: split_merge.ts): a retry is answered INDETERMINATE, not
   * applied again. Such a record has no result and no map.
   */
  x?: 1;
}

export interface DedupeLimits {
  /** Records of call ids that name no client (oldest dropped first). */
  window: number;
  /** About this many bytes of results in those. */
  windowBytes: number;
  /** Records of clients' calls at most (the hard cap). */
  cap: number;
  /** About this many bytes of results in those at most. */
  capBytes: number;
  /** Clients remembered. */
  clients: number;
}

export const DEFAULT_DEDUPE_LIMITS: DedupeLimits = {
  window: 2048,
  windowBytes: 64 * 1024,
  cap: 8192,
  capBytes: 256 * 1024,
  clients: 1024,
};

/** What a copy's dedupe records count (see the constructor). */
export interface DedupeCounts {
  dedupeEvicted: number;
  dedupeForgotten: number;
}

interface Client {
  /** Every call numbered below this is answered, or was refused here (see `departed`). */
  w: number;
  /** Records by call number, each with its call id. */
  recs: Map<number, [string, DedupeRecord]>;
  /** Lowest call number recorded (Infinity when none): below-watermark scans start only past it. */
  min: number;
  /** Its member left the member view. */
  gone: boolean;
}

/** Approximate bytes a value held in a buffer takes (bytes and strings by length, anything else 16). */
export function resultBytes(r: unknown): number {
  return r instanceof Uint8Array ? r.byteLength : typeof r === "string" ? r.length * 2 : 16;
}

const recordBytes = (c: string, r: DedupeRecord) => resultBytes(r.r) + c.length;

export class DedupeRecords {
  #window = new Map<string, DedupeRecord>();
  #windowBytes = 0;
  #clients = new Map<string, Client>();
  /** The client looked up last (one client's calls usually follow each other): no hash of its name then. */
  #lastName = "";
  #last: Client | undefined;
  #count = 0;
  #bytes = 0;

  /**
   * @param counts where drops are counted (the map service's counters): `dedupeEvicted`,
   *   records dropped by the hard cap (their clients' watermarks rose past them);
   *   `dedupeForgotten`, clients forgotten by the client cap
   */
  constructor(
    readonly limits: DedupeLimits = DEFAULT_DEDUPE_LIMITS,
    readonly counts: DedupeCounts = { dedupeEvicted: 0, dedupeForgotten: 0 },
  ) {}

  get size(): number {
    return this.#window.size + this.#count;
  }

  /** Approximate bytes of the records' results and ids. */
  get bytes(): number {
    return this.#windowBytes + this.#bytes;
  }

  get(c: string): DedupeRecord | undefined {
    const id = parseCallId(c);
    if (!id) return this.#window.get(c);
    return this.#lookup(id.client)?.recs.get(id.seq)?.[1];
  }

  has(c: string): boolean {
    return this.get(c) !== undefined;
  }

  /** Whether call `c` is below its client's watermark here: answered, or refused here, and never to run again. */
  isBelowWatermark(c: string): boolean {
    const id = parseCallId(c);
    if (!id) return false;
    const cl = this.#lookup(id.client);
    return cl !== undefined && id.seq < cl.w;
  }

  *entries(): IterableIterator<[string, DedupeRecord]> {
    yield* this.#window;
    for (const cl of this.#clients.values()) yield* cl.recs.values();
  }

  *keys(): IterableIterator<string> {
    for (const [c] of this.entries()) yield c;
  }

  /** Each client's watermark (for snapshots). */
  watermarks(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [client, cl] of this.#clients) if (cl.w > 0) out.push([client, cl.w]);
    return out;
  }

  /**
   * Records the write of call `c`; `w`: its client's watermark the request carried. A call
   * below the watermark known here gets no record (it can never be retried).
   */
  set(c: string, rec: DedupeRecord, w?: number): void {
    const id = parseCallId(c);
    if (!id) return this.#setWindow(c, rec);
    const cl = this.#client(id.client);
    cl.gone = false;
    if (w !== undefined) this.#raise(cl, Math.min(w, id.seq));
    if (id.seq < cl.w) return;
    const old = cl.recs.get(id.seq);
    if (old) (this.#count--, this.#bytes -= recordBytes(old[0], old[1]));
    cl.recs.set(id.seq, [c, rec]);
    if (id.seq < cl.min) cl.min = id.seq;
    this.#count++;
    this.#bytes += recordBytes(c, rec);
    while (this.#count > this.limits.cap || (this.#bytes > this.limits.capBytes && this.#count > 1)) this.#evict();
  }

  delete(c: string): void {
    const id = parseCallId(c);
    if (!id) {
      const r = this.#window.get(c);
      if (r) (this.#window.delete(c), this.#windowBytes -= recordBytes(c, r));
      return;
    }
    const cl = this.#lookup(id.client);
    const r = cl?.recs.get(id.seq);
    if (!cl || !r) return;
    cl.recs.delete(id.seq);
    this.#count--;
    this.#bytes -= recordBytes(r[0], r[1]);
  }

  /** `client` answered every call below `w`: drops their records. */
  raise(client: string, w: number): void {
    this.#raise(this.#client(client), w);
  }

  #raise(cl: Client, w: number): void {
    if (w <= cl.w) return;
    cl.w = w;
    if (cl.min >= w) return;
    if (cl.recs.size === 1) {
      // The usual case (a client's calls spread over the partitions): the one record is at `min`
      // unless a delete left `min` low; no iterator then.
      const only = cl.recs.get(cl.min);
      if (only !== undefined) {
        cl.recs.delete(cl.min);
        this.#count--;
        this.#bytes -= recordBytes(only[0], only[1]);
        cl.min = Infinity;
        return;
      }
    }
    let min = Infinity;
    // Indexed, not destructured: a nested array pattern runs the array iterator per record (JSC).
    for (const e of cl.recs) {
      const seq = e[0];
      if (seq < w) {
        const rec = e[1];
        cl.recs.delete(seq);
        this.#count--;
        this.#bytes -= recordBytes(rec[0], rec[1]);
      } else if (seq < min) min = seq;
    }
    cl.min = min;
  }

  /**
   * `member` left the member view (its lease ended): its clients' records are dropped and
   * their watermarks rise past every call recorded, so a late retry of one is refused.
   */
  departed(member: string): void {
    for (const [client, cl] of this.#clients) {
      if (cl.gone || memberOfClient(client) !== member) continue;
      let top = cl.w;
      for (const seq of cl.recs.keys()) top = Math.max(top, seq + 1);
      this.raise(client, top);
      cl.gone = true;
    }
  }

  clear(): void {
    this.#window.clear();
    this.#windowBytes = 0;
    this.#clients.clear();
    this.#last = undefined;
    this.#count = 0;
    this.#bytes = 0;
  }

  #lookup(client: string): Client | undefined {
    if (this.#last !== undefined && client === this.#lastName) return this.#last;
    const cl = this.#clients.get(client);
    if (cl !== undefined) (this.#lastName = client, this.#last = cl);
    return cl;
  }

  #client(client: string): Client {
    let cl = this.#lookup(client);
    if (cl) return cl;
    cl = { w: 0, recs: new Map(), min: Infinity, gone: false };
    this.#clients.set(client, cl);
    if (this.#clients.size > this.limits.clients) this.#forgetOne(client);
    return cl;
  }

  /** Forgets one client (not `keep`): the oldest departed one, else the oldest. */
  #forgetOne(keep: string): void {
    let victim: string | undefined;
    for (const [client, cl] of this.#clients) {
      if (client === keep) continue;
      victim ??= client;
      if (cl.gone) {
        victim = client;
        break;
      }
    }
    if (victim === undefined) return;
    const cl = this.#clients.get(victim)!;
    for (const [c, r] of cl.recs.values()) (this.#count--, this.#bytes -= recordBytes(c, r));
    this.#clients.delete(victim);
    this.#last = undefined;
    this.counts.dedupeForgotten++;
  }

  /** Drops the lowest record of the client holding the most, raising its watermark past it. */
  #evict(): void {
    let most: [string, Client] | undefined;
    for (const e of this.#clients) if (!most || e[1].recs.size > most[1].recs.size) most = e;
    if (!most || most[1].recs.size === 0) return;
    let low = Infinity;
    for (const seq of most[1].recs.keys()) low = Math.min(low, seq);
    this.raise(most[0], low + 1);
    this.counts.dedupeEvicted++;
  }

  #setWindow(c: string, rec: DedupeRecord): void {
    const old = this.#window.get(c);
    if (old) this.#windowBytes -= recordBytes(c, old);
    this.#window.set(c, rec);
    this.#windowBytes += recordBytes(c, rec);
    while (
      this.#window.size > this.limits.window || (this.#windowBytes > this.limits.windowBytes && this.#window.size > 1)
    ) {
      const [k, r] = this.#window.entries().next().value!;
      this.#window.delete(k);
      this.#windowBytes -= recordBytes(k, r);
    }
  }
}
