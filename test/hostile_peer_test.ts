/**
 * A member that holds a valid link but lies: a "hostile" lite member of a 3-member data
 * grid (virtual time, memory network) sends 10^5 (two seeds of 50,000) random but
 * well-typed messages of every registered kind, generated from the layers' zod schemas with real member ids, small
 * partition numbers and versions and epochs from zero to far future, while honest members
 * run a recorded put/get workload. Afterwards no honest member's handler threw, and the
 * history checker finds no lost acknowledged write and a linearizable history.
 */
import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import type { IMap } from "../src/map/imap.ts";
import type { MemoryTransport } from "../src/transport/memory.ts";
import { registeredKinds } from "../src/wire/message.ts";
import { randomMessage } from "./support/arbitrary_message.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";
import { checkLinearizable, checkNoLostWrites, History } from "./support/history_checker.ts";
import "../src/cluster/messages.ts";
import "../src/jobs/messages.ts";
import "../src/invoke/messages.ts";
import "../src/map/messages.ts";
import "../src/partition/messages.ts";
import "../src/signaling/messages.ts";
import "../src/transport/messages.ts";

const P = 31;

function recorder(h: GridHarness, map: IMap<string, string>, history: History, via: string) {
  let pending = 0;
  return {
    get pending() {
      return pending;
    },
    put(key: string, value: string): void {
      const op = history.invoke(key, "put", h.clock.now(), value, via);
      pending++;
      map.put(key, value).then((prev) => history.ok(op, h.clock.now(), prev), () => history.fail(op)).finally(() =>
        pending--
      );
    },
    get(key: string): void {
      const op = history.invoke(key, "get", h.clock.now(), undefined, via);
      pending++;
      map.get(key).then((v) => history.ok(op, h.clock.now(), v), () => history.fail(op)).finally(() => pending--);
    },
  };
}

describe("a hostile member", () => {
  for (const [seed, total] of [[1, 50_000], [2, 50_000]] as const) {
    test(
      `${
        total.toLocaleString("en")
      } random well-typed messages of every kind (seed ${seed}): no honest member throws, the data stays intact`,
      async () => {
        const h = new GridHarness({ seed, config: { partitionCount: P } });
        for (const id of ["a", "b", "c"]) await h.add(id);
        // The hostile member: linked to everyone, in the member list (lite, so it owns nothing), running no grid.
        const evil = h.net.attach("evil") as MemoryTransport;
        evil.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
        for (const id of ["a", "b", "c"]) void evil.connect(id);
        h.cluster.add("evil", true);
        h.cluster.publish();
        expect(await h.runUntil(() => incompleteReplication(h, P) === null, 60_000)).toBe(true);

        const history = new History();
        const recs = ["a", "b", "c"].map((id) =>
          recorder(h, h.members.get(id)!.grid.getMap<string, string>("m"), history, id)
        );
        const rng = new Random(seed * 7919);
        const kinds = registeredKinds().map((k) => k.kind);
        const hints = { ids: ["a", "b", "c", "evil", "m", "k1", "k2"] };
        const sentByKind = new Map<number, number>();
        const perRound = Math.ceil(total / 200);
        let sent = 0;
        for (let round = 0; round < 200; round++) {
          for (let tries = 0, n = 0; n < perRound && sent < total && tries < perRound * 4; tries++) {
            const t = kinds[rng.int(kinds.length)];
            const msg = randomMessage(t, rng, hints);
            if (!msg) continue;
            n++;
            evil.send(["a", "b", "c"][rng.int(3)], msg);
            sentByKind.set(t, (sentByKind.get(t) ?? 0) + 1);
            sent++;
          }
          const rec = recs[round % 3];
          rec.put(`k${round % 20}`, `v${round}`);
          rec.get(`k${(round * 7) % 20}`);
          await h.run(20);
        }
        await h.runUntil(() => recs.every((r) => r.pending === 0), 120_000, 10);
        for (let i = 0; i < 20; i++) recs[i % 3].get(`k${i}`);
        await h.runUntil(() => recs.every((r) => r.pending === 0), 120_000, 10);

        // Every kind got messages, honest members' handlers never threw, and the data is intact.
        const missing = registeredKinds().filter((k) => !sentByKind.has(k.kind)).map((k) => k.name);
        expect(missing).toEqual([]);
        expect(sent).toBe(total);
        expect(h.handlerErrors.map(String)).toEqual([]);
        for (const m of h.live()) expect(m.router.handlerErrors).toBe(0);
        expect([...checkNoLostWrites(history).problems, ...checkLinearizable(history).problems]).toEqual([]);
        expect(history.ops.filter((o) => o.status === "ok").length).toBeGreaterThan(history.ops.length / 2);
        h.stop();
      },
      300_000,
    );
  }
});
