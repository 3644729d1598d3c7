/**
 * Direct backup acks (`directBackupAcks`) when messages vanish, in virtual time: 4 data
 * members with backup 1 (and 5 with backup 2), each with a client writing and reading a few shared keys, and every
 * link losing 5 % of its messages for good (requests, answers, backup ops, the backups' acks
 * to the primary and their answers to the caller alike). A lost answer is made up by the caller asking
 * the primary again, a lost backup op by the primary's re-shipment: no call may stall (each
 * completes within a few attempt timeouts, far below the 30 s call timeout), none fails, and
 * the history is linearizable with no acknowledged write lost. Written while looking for the
 * cause of the stalls `bench/lossy.ts` showed with direct acks on (bench/RESULTS.md).
 */
import { describe, expect, test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";
import { checkLinearizable, checkNoLostWrites, History } from "../support/history_checker.ts";
import { GridHarness } from "../support/grid_harness.ts";

const FILE = "test/sim/imap_direct_acks_loss_test.ts";
const MEMBERS = 4;
const KEYS = 12;
const SECONDS = 15;
/** Longest a call may take: a few 2 s attempt timeouts, far below the 30 s call timeout. */
const MAX_CALL_MS = 8000;

describe("direct backup acks under message loss (virtual time)", () => {
  // With two backups every write has two members answering its caller, each naming the other.
  for (
    const { backups, members, seeds } of [{ backups: 1, members: MEMBERS, seeds: 3 }, {
      backups: 2,
      members: 5,
      seeds: 2,
    }]
  ) {
    test(
      `backup ${backups}: with 5 % of every link's messages lost, no call stalls or fails, and the history holds`,
      () =>
        withSeed(FILE, 7, async (seed) => {
          for (let s = seed; s < seed + seeds; s++) {
            // Production invoker defaults (2 s attempt timeout, 300 ms backup-ack wait, 30 s call timeout).
            const h = new GridHarness({
              seed: s,
              config: { backupCount: backups, invoke: {}, map: { directBackupAcks: true } },
            });
            const ids = Array.from({ length: members }, (_, i) => `n${i}`);
            for (const id of ids) await h.add(id);
            await h.run(3000);
            for (const a of ids) for (const b of ids) if (a !== b) h.net.setLink(a, b, { loss: 0.05 });
            const lostBefore = h.net.lost;

            const history = new History();
            let longest = 0;
            const end = h.clock.now() + SECONDS * 1000;
            const clients = ids.map(async (id, w) => {
              const map = h.members.get(id)!.grid.getMap<string, string>("m");
              for (let i = 0; h.clock.now() < end; i++) {
                const key = `k${(i * 7 + w) % KEYS}`, start = h.clock.now();
                const read = i % 3 === 2;
                const op = read
                  ? history.invoke(key, "get", start, undefined, id)
                  : history.invoke(key, "put", start, `${id}-${i}`, id);
                try {
                  const r = read ? await map.get(key) : await map.put(key, `${id}-${i}`);
                  history.ok(op, h.clock.now(), r);
                } catch {
                  history.fail(op);
                }
                longest = Math.max(longest, h.clock.now() - start);
              }
            });
            const done = Promise.all(clients);
            await h.until(done, SECONDS * 1000 + 60_000);
            await done;
            for (const a of ids) for (const b of ids) if (a !== b) h.net.setLink(a, b, { loss: 0 });
            // Each key read once more after the writes.
            const reader = h.members.get("n0")!.grid.getMap<string, string>("m");
            for (const key of history.keys()) {
              const op = history.invoke(key, "get", h.clock.now(), undefined, "n0");
              history.ok(op, h.clock.now(), await h.until(reader.get(key)));
            }

            const direct = ids.reduce((n, id) => n + h.members.get(id)!.grid.maps.counters.directAcked, 0);
            const failed = history.ops.filter((o) => o.status !== "ok").length;
            expect({ seed: s, failed }).toEqual({ seed: s, failed: 0 });
            expect(longest).toBeLessThanOrEqual(MAX_CALL_MS);
            expect(direct).toBeGreaterThan(100);
            expect(h.net.lost - lostBefore).toBeGreaterThan(100);
            expect([...checkNoLostWrites(history).problems, ...checkLinearizable(history).problems]).toEqual([]);
            h.stop();
          }
        }),
      300_000,
    );
  }
});
