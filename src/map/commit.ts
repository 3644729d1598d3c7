/**
 * When a primary may answer: the commit rules over its followers' acks (invariants 4 and 10).
 * A write is acknowledged once every sync backup of its map's rank and every migration target
 * acked it, and never by fewer copies than min(backupCount + 1, data members in the view).
 */
import type { Follower, MapContext, PrimaryState } from "./map_context.ts";

/** Whether a write of a map with `k` sync backups needs `f`'s copy: a sync backup of rank 1..k, or a migration target. */
function required(f: Follower, k: number): boolean {
  return f.role !== "async" && !(f.role === "sync" && f.level > k);
}

/** min(k + 1, data members in this member's view). */
export function copiesNeeded(ctx: MapContext, k: number): number {
  let data = 0;
  for (const m of ctx.view.members()) if (!m.lite) data++;
  return Math.min(k + 1, Math.max(1, data));
}

/**
 * Highest sequence every replica required for a map with `k` sync backups acked: the sync
 * backups of rank 1..k and every migration target. While the row holds fewer of those
 * copies than min(k + 1, data members in the view), nothing past what was committed before
 * commits (invariant 10): the master creates the missing backups in place, and writes wait
 * for them instead of being acknowledged on fewer copies. With one backup count for every
 * map, k is always the table's (every sync backup). Moves `prim.committed[k]` on.
 */
export function commitSeq(ctx: MapContext, prim: PrimaryState, k: number): number {
  let s = ctx.data.get(prim.p)?.seq ?? 0;
  let copies = 1;
  for (const f of prim.followers.values()) {
    if (!required(f, k)) continue;
    // A replica being filled counts for the writes it holds aside (fill_stream.ts).
    s = Math.min(s, f.confirmed ? f.acked : f.stream ? f.stream.acked : -1);
    if (f.role === "sync") copies++;
  }
  if (copies < copiesNeeded(ctx, k)) return Math.min(s, prim.committed[k]);
  return prim.committed[k] = Math.max(prim.committed[k], s);
}

/**
 * Whether write `seq` is held now by as many copies as a new write of a map with `k` sync
 * backups needs (invariant 10): every sync backup of rank 1..k and every migration target
 * holds it (a confirmed one has acked it; one being filled has acked it in its stream, which
 * holds only the writes from its start on), and they are min(k + 1, data members) copies
 * with the primary. {@link commitSeq} passes a write once it was held so, and a new primary
 * counts its whole copy as committed: an answer to a retry of a write applied before asks this
 * (map_context.ts `Waiter.held`).
 */
export function heldNow(ctx: MapContext, prim: PrimaryState, seq: number, k: number): boolean {
  let copies = 1;
  for (const f of prim.followers.values()) {
    if (!required(f, k)) continue;
    const st = f.stream;
    if (!(f.confirmed ? f.acked >= seq : st !== null && st.from <= seq && st.acked >= seq)) return false;
    if (f.role === "sync") copies++;
  }
  return copies >= copiesNeeded(ctx, k);
}
