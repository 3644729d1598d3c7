/**
 * Spreading the fills of a forming cluster (issue 11): the master gives every backup to the
 * first joiner, then, once the second joiner is a data member, moves the filling backups that
 * hold nothing yet to it. A filling backup that took a streamed write (acknowledged on it and
 * the primary) must stay: moved, the write would live on the primary alone, and the primary's
 * crash right after the move would lose it. Here member a holds data, b joins and starts
 * filling slowly (one transfer at a time), writes land on half of the partitions through
 * b's fill streams, c joins, and a is killed as soon as the moves are in the table: every
 * acknowledged write must be read back from b and c. A further write goes to each released
 * partition the moment its backup is released, over links whose round trip beats the table's
 * publication: the released backup is held, so that write waits for its replacement instead
 * of being acknowledged through a copy about to leave the row.
 */
import { expect, test } from "bun:test";
import type { IMap } from "../../src/map/imap.ts";
import { partitionOf } from "../../src/partition/partition_of.ts";
import { PartitionService } from "../../src/partition/partition_service.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import { formationSimulation } from "./imap_formation.ts";
import { settle } from "./imap_sim.ts";

const P = 31;

/**
 * Calls `onRelease` whenever a map layer releases a filling backup (answers the master's
 * untouched-fill check with yes), right after it did.
 */
function watchReleases(onRelease: (self: NodeId, p: number) => void): () => void {
  const original = PartitionService.prototype.setUntouchedFillCheck;
  PartitionService.prototype.setUntouchedFillCheck = function (this: PartitionService, fn) {
    original.call(this, (p, epoch, member) => {
      const yes = fn(p, epoch, member);
      if (yes) onRelease(this.self, p);
      return yes;
    });
  };
  return () => void (PartitionService.prototype.setUntouchedFillCheck = original);
}

test(
  "fills that hold nothing move to the second joiner; one that took a write stays, and the write survives the primary",
  async () => {
    const problems: string[] = [];
    const written = new Map<string, string>();
    let onA: IMap<string, string> | undefined;
    const sim = formationSimulation(
      1111,
      P,
      problems,
      // One transfer at a time, small chunks: most fills have not begun when c arrives.
      { snapshotChunkBytes: 1024, snapshotWindow: 1, maxSnapshotSessions: 1 },
      // Round trips well under the 1 ms a master takes to publish a table: an ack can beat it.
      { delayMs: 0.1, jitterMs: 0.1 },
    );
    // A write to each released partition the moment its backup is released, before the table
    // that moves the backup applies: it must not be acknowledged through the released backup.
    const raced: Promise<void>[] = [];
    const unwatch = watchReleases((_, p) => {
      const key = Array.from({ length: 10_000 }, (_, i) => `r${i}`).find((k) => partitionOf(k, P) === p)!;
      raced.push(onA!.put(key, "raced").then(() => void written.set(key, "raced"), () => {}));
    });
    const a = sim.spawn();
    unwatch();
    void a.m.start([]);
    await sim.until(() => a.m.joined && a.grid.partitions.table.version > 0, 10_000, 5);
    const map = onA = a.grid.getMap<string, string>("m");
    await settle(sim, Promise.all(Array.from({ length: P * 40 }, (_, i) => map.set(`pre${i}`, "x".repeat(100)))));

    const b = sim.spawn();
    void b.m.start([a.id]);
    // Every row gets its backup on b, filling.
    await sim.until(() => a.grid.partitions.table.replicas.every((r) => r.includes(b.id)), 10_000, 1);
    // Writes to the even partitions, each acknowledged by a and b's fill stream.
    for (let i = 0; written.size < 30; i++) {
      const key = `w${i}`;
      if (partitionOf(key, P) % 2 !== 0) continue;
      await settle(sim, map.put(key, `v${i}`), 1);
      written.set(key, `v${i}`);
    }
    const touched = new Set([...written.keys()].map((k) => partitionOf(k, P)));

    const c = sim.spawn();
    void c.m.start([a.id, b.id]);
    // Killed as soon as c holds a moved fill in the table it applied.
    await sim.until(() => c.grid.partitions.table.replicas.some((r) => r.includes(c.id)), 10_000, 1);
    const rows = c.grid.partitions.table.replicas;
    sim.crash(a.id);

    expect(a.grid.partitions.stats.fillsMoved).toBeGreaterThan(0);
    for (const p of touched) expect(rows[p]).toContain(b.id);
    expect(rows.filter((r) => r.includes(c.id)).length).toBe(a.grid.partitions.stats.fillsMoved);

    await sim.until(
      () =>
        [b, c].every((n) => n.m.members().length === 2 && n.grid.partitions.table.replicas.every((r) => r.length > 0)),
      30_000,
      10,
    );
    await settle(sim, Promise.all(raced));
    const onB = b.grid.getMap<string, string>("m");
    for (const [key, value] of written) expect(await settle(sim, onB.get(key), 1)).toBe(value);
    expect(problems).toEqual([]);
    b.stop();
    c.stop();
  },
  120_000,
);
