/**
 * A member holding the secret (a lite member that joined honestly) floods the honest members with
 * random, schema-valid messages of one layer at a time, so that each layer's handlers get a dense
 * flood, and of every layer at once ("all"). Invoke floods carry
 * valid op bodies of every op (maps, processors, locks, queues, topics) on names the workload
 * does not use; transport floods wrap random messages in relays (Forward) in others' names.
 *
 * What must hold: no handler throws, every message an honest member sends passes validation (a
 * number it adopted and then raised must still fit the wire), one cluster with every partition
 * replicated after the flood, and the put/get/remove history has no lost acknowledged write and
 * is linearizable.
 *
 * CI runs each at one seed (all kinds at two). The same file is the campaign tool: FUZZ_SEEDS=1-40,
 * FUZZ_TOTAL (messages), FUZZ_LAYER (a layer name, several joined by commas, or "all"),
 * FUZZ_DATA (data members), FUZZ_BACKUPS, FUZZ_QUORUM with FUZZ_LEASE (split-brain protection),
 * FUZZ_MIGRATE=join|leave|crash (a member joins, leaves or dies mid-flood), FUZZ_LOSS (packet
 * loss). SIM_LOG=debug prints the members' logs.
 */
import { describe, expect } from "bun:test";
import { Random } from "../../src/core/random.ts";
import { bodySchemaOf, opNames } from "../../src/map/operations.ts";
import { Kind, KindRanges } from "../../src/wire/kinds.ts";
import { type Message, registeredKinds, validateMessage } from "../../src/wire/message.ts";
import "../../src/jobs/messages.ts";
import "../../src/invoke/messages.ts";
import "../../src/signaling/messages.ts";
import "../../src/transport/messages.ts";
import type { Forward } from "../../src/transport/messages.ts";
import { randomMessage, randomValue } from "../support/arbitrary_message.ts";
import { checkLinearizable, checkNoLostWrites } from "../support/history_checker.ts";
import { seededTest } from "../support/seeded.ts";
import { fullReplicas, settle, SimLoad } from "./imap_sim.ts";
import { gridWithLiar } from "./hostile_grid.ts";

const FILE = "test/sim/hostile_flood_layers_test.ts";
const seeded = seededTest(FILE);
const env = process.env;
const [firstSeed, lastSeed] = (env.FUZZ_SEEDS ?? "1").split("-").map(Number);
/** Messages per flood: 50,000 of all kinds at once, 10,000 of one layer. */
const totalOf = (layer: string) => Number(env.FUZZ_TOTAL ?? (layer === "all" ? 50_000 : 10_000));
const LAYERS = env.FUZZ_LAYER
  ? [env.FUZZ_LAYER]
  : ["all", "cluster", "partition", "map", "invoke", "transport", "jobs"];
const DATA = Number(env.FUZZ_DATA ?? 3);
const BACKUPS = Number(env.FUZZ_BACKUPS ?? 1);
const QUORUM = Number(env.FUZZ_QUORUM ?? 0);
const LEASE = Number(env.FUZZ_LEASE ?? 0);
const MIGRATE = env.FUZZ_MIGRATE ?? "none";
const LOSS = Number(env.FUZZ_LOSS ?? 0);
const P = 31;
const KEYS = 12;
const ROUNDS = 200;

function kindsOf(layer: string): number[] {
  const all = registeredKinds().map((k) => k.kind);
  if (layer === "all") return all;
  const ranges = layer.split(",").map((l) => KindRanges[l as keyof typeof KindRanges]);
  return all.filter((k) => ranges.some(([lo, hi]) => k >= lo && k <= hi));
}

async function flood(seed: number, layer: string): Promise<void> {
  const { sim, problems, honest, evil, wire } = await gridWithLiar(seed, DATA, {
    partitionCount: P,
    backupCount: BACKUPS,
    ...(QUORUM ? { minClusterSize: QUORUM } : {}),
    ...(LEASE ? { leaseMs: LEASE } : {}),
  });
  // Every message an honest member sends, and every message it relays, must pass validation.
  const badSends: string[] = [];
  const watch = (id: string) => {
    const t = sim.net.node(id)!;
    const send = t.send.bind(t);
    t.send = (to, msg) => {
      const inner = msg.t === Kind.Forward ? (msg as Forward).m : msg;
      if ((!validateMessage(msg).ok || !validateMessage(inner).ok) && badSends.length < 20) {
        badSends.push(`${id}->${to}: ${JSON.stringify(msg).slice(0, 300)}`);
      }
      return send(to, msg);
    };
  };
  for (const n of honest) watch(n.id);
  const load = new SimLoad(sim, sim.rng.fork(), { map: "m", keys: KEYS, mix: { put: 0.5, get: 0.8 }, pauseMs: 20 });
  for (const n of honest) load.start(n);

  const rng = new Random(seed * 7919 + 13);
  const kinds = kindsOf(layer);
  const total = totalOf(layer);
  const ids = [...honest.map((n) => n.id), evil.id];
  const hints = { ids: [...ids, "m", "k1", "sim"] };
  const opHints = { ids: [...ids, "x", "q", "sim"] };
  const ops = Object.keys(opNames).map(Number);
  const innerKinds = registeredKinds().map((k) => k.kind).filter((k) => k !== Kind.Forward && k !== Kind.Chunk);
  const draw = (t: number): Message | null => {
    if (t === Kind.InvokeRequest && rng.next() < 0.7) {
      // A valid op body, on a name nobody's workload uses.
      const op = ops[rng.int(ops.length)];
      const b = randomValue(bodySchemaOf(op)!.schema, rng, opHints);
      const c = `${evil.id}:${rng.int(1000)}:${rng.int(100)}`;
      return { t, c, a: rng.int(3), p: rng.int(P + 2), e: [0, 1, 2, 5, 1e9][rng.int(5)], op, b } as Message;
    }
    if (t === Kind.Forward && rng.next() < 0.8) {
      const inner = randomMessage(innerKinds[rng.int(innerKinds.length)], rng, hints);
      if (!inner) return null;
      const from = [...ids, "ghost"][rng.int(ids.length + 1)];
      const tag = rng.next() < 0.5 ? { n: rng.int(100), mac: new Uint8Array(16).fill(rng.int(256)) } : {};
      return { t, from, to: ids[rng.int(ids.length)], ttl: rng.int(5), m: inner, ...tag } as Message;
    }
    return randomMessage(t, rng, hints);
  };
  if (LOSS) sim.setLoss(LOSS);
  let sent = 0;
  const sentKinds = new Set<number>();
  for (let round = 0; round < ROUNDS; round++) {
    if (round === ROUNDS / 4) {
      if (MIGRATE === "join") {
        const joiner = sim.spawn();
        watch(joiner.id);
        void joiner.m.start([honest[0].id]);
      } else if (MIGRATE === "leave") {
        const l = honest[DATA - 1];
        void l.grid.migrateAway().then(() => l.m.leave()).then(() => sim.crash(l.id));
      } else if (MIGRATE === "crash") sim.crash(honest[DATA - 1].id);
    }
    for (let n = 0, tries = 0; n < total / ROUNDS && tries < total / 50; tries++) {
      const msg = draw(kinds[rng.int(kinds.length)]);
      if (!msg) continue;
      sentKinds.add(msg.t);
      const targets = sim.liveNodes().filter((x) => x !== evil);
      wire.send(targets[rng.int(targets.length)].id, msg);
      n++;
      sent++;
    }
    await sim.run(20);
  }
  if (LOSS) sim.setLoss(0);
  // Lies the protocol cannot refuse (a dead notice about a member not heard lately) may cost a
  // member a rejoin; afterwards the cluster is one again.
  await sim.until(
    () => fullReplicas(sim.liveNodes()),
    120_000,
    50,
    () =>
      `no single cluster after the flood: ${
        sim.liveNodes().map((n) =>
          `${n.id}: master ${n.m.master()} members ${n.m.members().map((x) => x.id)} v${n.m.memberListVersion} ` +
          `table v${n.grid.partitions.table.version} ${JSON.stringify(n.grid.partitionSummary())}`
        ).join("\n")
      }`,
  );
  const via = honest.find((n) => n.alive)!;
  await settle(sim, load.stop(), 10);
  for (let k = 0; k < KEYS; k++) {
    const op = load.history.invoke(`k${k}`, "get", sim.clock.now(), undefined, via.id);
    load.history.ok(op, sim.clock.now(), await settle(sim, via.grid.getMap<string, string>("m").get(`k${k}`)));
  }
  expect(sent).toBe(total);
  // Every kind of the layer was sent (a kind the generator never validly fills would go untested).
  expect(kinds.filter((k) => !sentKinds.has(k))).toEqual([]);
  const refused = honest.reduce((s, n) => s + Object.values(n.m.stats.rejected).reduce((x, y) => x + y, 0), 0);
  if (layer === "all" || layer === "cluster") expect(refused).toBeGreaterThan(0);
  expect(problems).toEqual([]);
  expect(badSends).toEqual([]);
  expect([...checkNoLostWrites(load.history).problems, ...checkLinearizable(load.history).problems]).toEqual([]);
  expect(load.history.ops.filter((o) => o.status === "ok").length).toBeGreaterThan(50);
}

describe("a member holding the secret floods one layer at a time with random well-typed messages", () => {
  for (const layer of LAYERS) {
    const last = lastSeed ?? (env.FUZZ_SEEDS === undefined && layer === "all" ? 2 : firstSeed);
    for (let seed = firstSeed; seed <= last; seed++) {
      seeded(
        `${layer} (${
          totalOf(layer).toLocaleString("en")
        } messages, seed ${seed}): no throw, valid sends, one view, data intact`,
        seed,
        (s) => flood(s, layer),
        600_000,
      );
    }
  }
});
