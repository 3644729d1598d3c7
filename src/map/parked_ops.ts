/**
 * Blocking waits parked on the primary: a queue poll that finds the queue empty, an offer
 * that finds it full, and a lock request whose caller already waits in the key's queue are
 * not run when they carry a park time (`pk`); the primary keeps the request (call id, reply)
 * and runs it again as it arrived:
 *
 * - when a write of the same partition touches the same internal map (an offer, a poll, an
 *   unlock): it may succeed now, in arrival order; one that still cannot parks again;
 * - when its park time is over, or a lock's holder dies or its lease ends: then it runs
 *   whatever the state (an empty poll answers null, a lock request refreshes its place);
 * - never on a member that stops being the partition's primary: there the requests are
 *   answered MIGRATING, and the caller's invoker sends them, with the same call id, to the
 *   new primary, which parks them again (the wait moves with the partition).
 *
 * A parked request has not run: it wrote nothing and left no dedupe record, so running it
 * later (here or on another primary) applies it once. A retry of the same call id that
 * arrives while it is parked replaces it. At most {@link MAX_PARKED} per partition; beyond
 * that a request runs at once and its caller waits a little before asking again.
 */
import type { Clock } from "../core/clock.ts";
import type { InvokeRequest, Reply } from "../invoke/invoker.ts";
import type { NodeId } from "../transport/transport.ts";
import { lockMapOf, type LockState, normalize, readLock, WAITER_STALE_MS } from "./locks.ts";
import { type OpBody, OpCode } from "./operations.ts";
import type { PartitionData } from "./partition_data.ts";
import { queueMapOf, queueState } from "./queue_ops.ts";
import { HeldRequests } from "./held_requests.ts";

/** Longest park time honoured (a lock waiter must refresh its place well within {@link WAITER_STALE_MS}). */
export const MAX_PARK_MS = 2000;
/** Parked requests per partition. */
export const MAX_PARKED = 1024;

/** The park time a caller asks for with `leftMs` of its wait left (0: do not park). */
export const parkTime = (leftMs: number): number => Math.max(0, Math.min(MAX_PARK_MS, Math.floor(leftMs)));

/** Waits `ms` on `clock`, or until `signal` aborts (a caller's pause between unparked asks). */
export function pause(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = clock.setTimer(ms, resolve);
    signal?.addEventListener("abort", () => (t.cancel(), resolve()), { once: true });
  });
}

/** A request parked on the primary. */
export interface ParkedOp {
  from: NodeId;
  req: InvokeRequest;
  reply: Reply;
  /** When it runs whatever the state. */
  deadline: number;
  /** The internal map whose writes wake it. */
  map: string;
  /** Lock requests: the holder at park time (its death wakes them). */
  holder?: NodeId;
}

/**
 * Whether op `op` with body `b` from `from` must wait, and until when at most (lease end of
 * a lock's holder): undefined when it can run now.
 */
export function parkUntil(
  data: PartitionData,
  op: number,
  b: OpBody,
  caller: { now: number; from: NodeId; alive: (id: NodeId) => boolean; leaseOutlivesDeath?: boolean },
): { until: number; map: string; holder?: NodeId } | undefined {
  const { now, from, alive, leaseOutlivesDeath = false } = caller;
  switch (op) {
    case OpCode.QueuePoll: {
      const s = queueState(data, b.m);
      return s.size === 0 ? { until: Infinity, map: queueMapOf(b.m) } : undefined;
    }
    case OpCode.QueueOffer: {
      const s = queueState(data, b.m);
      return s.size >= (b.n ?? s.capacity) ? { until: Infinity, map: queueMapOf(b.m) } : undefined;
    }
    case OpCode.LockAcquire: {
      if (!b.q || !b.k) return undefined;
      const s: LockState = normalize(readLock(data, b.m, b.k), now, alive, leaseOutlivesDeath);
      // Free, or ours, or handed to us: run now. So also when our place needs refreshing.
      if (s.o === null || (s.o[0] === from && s.o[1] === b.h)) return undefined;
      const me = s.w.find(([id, h]) => id === from && h === b.h);
      if (!me || now - me[3] > WAITER_STALE_MS - MAX_PARK_MS) return undefined;
      // The holder's death wakes the request only where it ends the hold.
      if (leaseOutlivesDeath && s.x > 0) return { until: s.x, map: lockMapOf(b.m) };
      return { until: s.x > 0 ? s.x : Infinity, map: lockMapOf(b.m), holder: s.o[0] };
    }
  }
  return undefined;
}

/** Parked requests per partition. */
export class ParkedOps extends HeldRequests<ParkedOp> {
  constructor() {
    // A released request is re-sent by its caller's invoker to the new primary.
    super(MAX_PARKED, (op) => op.reply("MIGRATING"));
  }

  /** Parks `op` in partition `p` (replacing one of the same call id). @returns false when `p` holds too many */
  park(p: number, op: ParkedOp): boolean {
    const l = this.byP.get(p);
    const i = l ? l.findIndex((x) => x.req.c === op.req.c && x.from === op.from) : -1;
    if (i >= 0) return (l![i] = op, true);
    return this.add(p, op);
  }

  /** Removes and returns the requests whose deadline passed or whose lock holder died. */
  due(now: number, alive: (id: NodeId) => boolean): ParkedOp[] {
    return this.partitions().flatMap((p) =>
      this.take(p, (x) => x.deadline <= now || (x.holder !== undefined && !alive(x.holder)))
    );
  }
}
