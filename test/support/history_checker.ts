/**
 * A history checker for a map of registers: records every invoke and completion of put /
 * get / remove per key, then verifies
 *  1. no acknowledged write is lost: a key's final value was written by a write that no
 *     acknowledged write strictly followed, and
 *  2. each key's history is linearizable as a single register (Wing–Gong search with
 *     memoisation, as in Knossos and Porcupine). Operations that failed may or may not have
 *     taken effect: a failed write is treated as pending forever (it may take effect at any
 *     point after its invocation, or never); a failed read is dropped, and so is an operation
 *     refused before it could run (the system said so: it took no effect).
 *
 * put and remove record the previous value they returned, which the model checks too.
 *
 * Expiry: a put with `ttlMs` sets a value that the primary removes `ttlMs` after it applied
 * the put (at some moment between the put's invocation and completion). The checker models
 * this as an extra operation per such put, "expire": it removes the key if it still holds
 * that put's value (values are unique per put), and takes effect at some point in
 * [invokeAt + ttlMs, endAt + ttlMs + 1] (1 ms for the primary's whole-millisecond clock).
 * So a read that sees the value after that window, or misses it before it, is caught.
 */
export type OpKind = "put" | "get" | "remove" | "expire";

export interface HistoryOp {
  id: number;
  key: string;
  kind: OpKind;
  /** Value written by put. */
  value?: string;
  invokeAt: number;
  /** Completion time; Infinity while pending or after a failure. */
  endAt: number;
  /** "refused": failed with an error that guarantees it took no effect (e.g. `QUORUM` before sending). */
  status: "pending" | "ok" | "fail" | "refused";
  /** get: the value read; put/remove: the previous value returned. undefined = absent. */
  result?: string;
  /** The member the client called through (diagnostics only). */
  via?: string;
  /** put: its time to live (expiry). */
  ttlMs?: number;
  /**
   * Acknowledged writes: the live copies holding the write when its acknowledgement reached
   * the client, and the copies it needed then, min(backupCount + 1, data members in the view)
   * with the backupCount of the write's map (see {@link checkAckCopies}).
   */
  copies?: number;
  needed?: number;
}

export class History {
  readonly ops: HistoryOp[] = [];

  /** Records an invocation; returns the op to complete later. */
  invoke(key: string, kind: OpKind, at: number, value?: string, via?: string, ttlMs?: number): HistoryOp {
    const op: HistoryOp = {
      id: this.ops.length,
      key,
      kind,
      value,
      invokeAt: at,
      endAt: Infinity,
      status: "pending",
      via,
    };
    if (ttlMs !== undefined) op.ttlMs = ttlMs;
    this.ops.push(op);
    return op;
  }

  ok(op: HistoryOp, at: number, result: string | undefined): void {
    op.status = "ok";
    op.endAt = at;
    op.result = result;
  }

  /** Records, for an acknowledged write, how many copies held it at the acknowledgement. */
  copies(op: HistoryOp, copies: number, needed: number): void {
    op.copies = copies;
    op.needed = needed;
  }

  /** The operation was refused and surely took no effect; the checks ignore it. */
  refused(op: HistoryOp): void {
    op.status = "refused";
    op.endAt = Infinity;
  }

  fail(op: HistoryOp): void {
    op.status = "fail";
    op.endAt = Infinity;
  }

  keys(): string[] {
    return [...new Set(this.ops.map((o) => o.key))];
  }
}

export interface CheckResult {
  ok: boolean;
  problems: string[];
}

const isWrite = (o: HistoryOp) => o.kind !== "get";

/** The expiry operations the puts with a TTL imply (see the module doc), with ids after `firstId`. */
export function expiryOps(ops: readonly HistoryOp[], firstId: number): HistoryOp[] {
  const out: HistoryOp[] = [];
  for (const o of ops) {
    if (o.kind !== "put" || o.status === "refused" || o.ttlMs === undefined || o.ttlMs <= 0) continue;
    out.push({
      id: firstId + out.length,
      key: o.key,
      kind: "expire",
      value: o.value,
      invokeAt: o.invokeAt + o.ttlMs,
      endAt: o.status === "ok" ? o.endAt + o.ttlMs + 1 : Infinity,
      status: "ok",
    });
  }
  return out;
}

/**
 * Checks that no acknowledged write is lost, using the last successful read of each key as
 * its final value (the caller reads every key once all writers stopped).
 */
export function checkNoLostWrites(h: History): CheckResult {
  const problems: string[] = [];
  for (const key of h.keys()) {
    const ops = h.ops.filter((o) => o.key === key && o.status !== "refused");
    const reads = ops.filter((o) => o.kind === "get" && o.status === "ok");
    if (reads.length === 0) continue;
    const final = reads.reduce((a, b) => (b.invokeAt > a.invokeAt ? b : a));
    const writes = ops.filter(isWrite);
    // Writes that could have produced the final value (end time; Infinity if it failed).
    const producers = final.result === undefined
      ? [...writes.filter((w) => w.kind === "remove"), ...expiryOps(writes, h.ops.length)]
      : writes.filter((w) => w.kind === "put" && w.value === final.result);
    const candidates = producers.map((w) => w.endAt);
    if (final.result === undefined) candidates.push(-Infinity); // the initial (absent) state
    if (candidates.length === 0) {
      problems.push(`key ${key}: final value ${final.result} was never written`);
      continue;
    }
    // Some producer must not be strictly followed by a write acknowledged before the final read began.
    const acked = writes.filter((w) => w.status === "ok" && w.endAt < final.invokeAt);
    const fine = candidates.some((end) => !acked.some((w) => w.invokeAt > end));
    if (!fine) {
      const lost = acked.filter((w) => candidates.every((end) => w.invokeAt > end)).map((w) =>
        `${w.kind} ${w.value ?? ""}#${w.id}`
      );
      problems.push(
        `key ${key}: acknowledged write lost (final ${final.result ?? "absent"}#${final.id}; lost ${
          lost.slice(0, 3).join(", ")
        })`,
      );
    }
  }
  return { ok: problems.length === 0, problems };
}

interface Node {
  op: HistoryOp;
  call: boolean;
  match: Node | null;
  prev: Node | null;
  next: Node | null;
}

/**
 * Single-register linearizability of one key's operations.
 * @param maxStates give up (reporting a problem) after exploring this many states
 */
export function checkKeyLinearizable(given: HistoryOp[], maxStates = 2_000_000): string | null {
  const ops = [...given, ...expiryOps(given, given.reduce((m, o) => Math.max(m, o.id), 0) + 1)];
  const usable = ops.filter((o) => o.status !== "refused" && !(o.kind === "get" && o.status !== "ok"));
  // Events in time order; at equal times calls come first (treated as concurrent).
  const events: Array<{ t: number; call: boolean; op: HistoryOp }> = [];
  for (const op of usable) {
    events.push({ t: op.invokeAt, call: true, op });
    events.push({ t: op.status === "ok" ? op.endAt : Infinity, call: false, op });
  }
  events.sort((a, b) => a.t - b.t || (a.call === b.call ? a.op.id - b.op.id : a.call ? -1 : 1));
  const head: Node = { op: null as unknown as HistoryOp, call: false, match: null, prev: null, next: null };
  let tail = head;
  const callNode = new Map<number, Node>();
  for (const e of events) {
    const n: Node = { op: e.op, call: e.call, match: null, prev: tail, next: null };
    tail.next = n;
    tail = n;
    if (e.call) callNode.set(e.op.id, n);
    else {
      const c = callNode.get(e.op.id)!;
      c.match = n;
      n.match = c;
    }
  }
  const lift = (n: Node) => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node) => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  const step = (state: string | undefined, op: HistoryOp): { ok: boolean; next: string | undefined } => {
    const checkResult = op.status === "ok";
    switch (op.kind) {
      case "get":
        return { ok: state === op.result, next: state };
      case "put":
        return { ok: !checkResult || state === op.result, next: op.value };
      case "remove":
        return { ok: !checkResult || state === op.result, next: undefined };
      case "expire":
        return { ok: true, next: state === op.value ? undefined : state };
    }
  };
  const linearized = new Uint8Array(ops.reduce((m, o) => Math.max(m, o.id), 0) + 1);
  const ids: number[] = [];
  const cache = new Set<string>();
  const stack: Array<{ node: Node; state: string | undefined }> = [];
  let state: string | undefined = undefined;
  let entry = head.next;
  let explored = 0;
  while (head.next !== null) {
    if (++explored > maxStates) return `search exceeded ${maxStates} steps`;
    if (entry === null) return "internal: ran off the event list";
    if (entry.call) {
      const r = step(state, entry.op);
      if (r.ok) {
        linearized[entry.op.id] = 1;
        ids.push(entry.op.id);
        const key = ids.slice().sort((a, b) => a - b).join(",") + "|" + String(r.next);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          state = r.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op.id] = 0;
        ids.pop();
      }
      entry = entry.next;
    } else {
      if (stack.length === 0) {
        const op = entry.op;
        return `no linearization: ${op.kind}${op.value !== undefined ? " " + op.value : ""} → ${
          op.result ?? "absent"
        } (#${op.id}, ${op.invokeAt}–${op.endAt}) cannot be placed`;
      }
      const top = stack.pop()!;
      state = top.state;
      linearized[top.node.op.id] = 0;
      ids.splice(ids.lastIndexOf(top.node.op.id), 1);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return null;
}

/** Checks every key's history for single-register linearizability. */
export function checkLinearizable(h: History, maxStates?: number): CheckResult {
  const problems: string[] = [];
  for (const key of h.keys()) {
    const err = checkKeyLinearizable(h.ops.filter((o) => o.key === key), maxStates);
    if (err) problems.push(`key ${key}: ${err}`);
  }
  return { ok: problems.length === 0, problems };
}

/**
 * Invariant 10: no write is acknowledged by fewer copies than min(backupCount + 1, data
 * members in the view), backupCount being that of the write's map (per-map backup counts:
 * the recorder passes the map's own, see test/sim/imap_sim.ts `ackCopies`). Checks every acknowledged write whose copies were recorded (see
 * {@link History.copies}).
 */
export function checkAckCopies(h: History): CheckResult {
  const problems: string[] = [];
  for (const o of h.ops) {
    if (o.status !== "ok" || o.copies === undefined || o.needed === undefined) continue;
    if (o.copies < o.needed) {
      problems.push(
        `key ${o.key}: ${o.kind} ${
          o.value ?? ""
        }#${o.id} acknowledged at ${o.endAt} by ${o.copies} of ${o.needed} copies`,
      );
    }
  }
  return { ok: problems.length === 0, problems };
}
