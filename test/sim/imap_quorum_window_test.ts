/**
 * A master without its quorum commits no migration (split-brain protection). A commit makes the
 * members the new row leaves out drop their copies; a table published without the quorum is
 * marked (PartitionTable.nq), and a next master that did not receive it passes it over and
 * continues from the rows before, whose members no longer hold the data.
 *
 * The scenario: 3 members (minClusterSize 3, backupCount 1) hold 300 acknowledged entries; 3
 * more join, and while the migrations run, the master's event loop stalls for 1.3 s (past its
 * 1 s lease, short of failure detection). The ready reports wait for it; on waking it reads them
 * before its lease is renewed. Its marked tables never reach the member next in line (lost), and
 * it dies 2 ms after waking. Before: the master committed the waiting migrations in a marked
 * table, the others applied it and dropped their copies, the next master continued from the
 * older rows, and 3 partitions (29 of the 300 entries) were lost. Now the commits wait for the
 * quorum, and nothing is lost. `SEED=n` replays a run.
 */
import { describe, expect } from "bun:test";
import { Kind } from "../../src/wire/kinds.ts";
import { quorumSimulation } from "./imap_quorum.ts";
import { fullReplicas, settle } from "./imap_sim.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/imap_quorum_window_test.ts");
const KEYS = 300;

describe("a master without its quorum", () => {
  for (const seed of [3, 4]) {
    seeded(`commits no migration; killed right after a pause, nothing is lost (seed ${seed})`, seed, async (s) => {
      const problems: string[] = [];
      const sim = quorumSimulation(s, problems, { backupCount: 1, minClusterSize: 3, leaseMs: 1000 });
      const master = sim.spawn();
      void master.m.start([]);
      for (let i = 0; i < 2; i++) void sim.spawn().m.start([master.id]);
      await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
      await sim.run(2000);
      const map = master.grid.getMap<string, string>("m");
      for (let i = 0; i < KEYS; i++) await settle(sim, map.set(`k${i}`, `v${i}`), 1);
      for (let j = 0; j < 3; j++) void sim.spawn().m.start([master.id]);
      await sim.until(() => master.grid.partitions.table.migrations.size > 0, 20_000, 1, () => "no migration");
      await sim.run(60);
      // The member next in line (the oldest after the master) receives no marked table.
      const next = master.m.members().map((m) => m.id).find((id) => id !== master.id)!;
      const send = master.transport.send.bind(master.transport);
      master.transport.send = (to, msg) =>
        msg.t === Kind.PartitionTablePush && (msg as { nq?: boolean }).nq && to === next ? true : send(to, msg);
      sim.stall(master.id, 1300, { inputFirst: true });
      await sim.run(1302);
      // Ready reports came while it had no quorum (held; before, committed in a marked table).
      expect(master.grid.partitions.stats.commitsDeferred).toBeGreaterThan(0);
      master.alive = false;
      sim.crash(master.id);
      master.stop();
      const live = sim.liveNodes().filter((n) => n.alive);
      await sim.until(() => fullReplicas(live), 60_000, 50, () => "no full table after the master died");
      expect(live[0].m.master()).toBe(next);
      await sim.run(3000);
      const reader = live[0].grid.getMap<string, string>("m");
      const lost: string[] = [];
      for (let i = 0; i < KEYS; i++) {
        const v = await settle(sim, reader.get(`k${i}`), 1).catch((e) => String(e));
        if (v !== `v${i}`) lost.push(`k${i}: ${v}`);
      }
      expect(lost).toEqual([]);
      expect(live.reduce((n, m) => n + m.grid.maps.counters.dataLoss, 0)).toBe(0);
      expect(problems).toEqual([]);
      for (const n of live) n.stop();
    }, 120_000);
  }
});
