/**
 * Split-brain merge of map data in the simulator, over real Membership: 5 members split
 * into 3 + 2, both sides write (different keys, the same keys in both orders, removals),
 * the split heals, the smaller side merges into the larger, and every key must then hold
 * what the configured merge policy says (ARCHITECTURE.md, "Split-brain merge of data", states what each keeps and
 * loses): under latestUpdate and putIfAbsent a key removed on either side after the other side's last write stays
 * removed. Two backups, so the larger side holds every partition through the split. An entry
 * written with a TTL on the smaller side only keeps its expiry state through the merge: every
 * copy holds its TTL and original update time, and it expires when it would have without the
 * split.
 */
import { describe, expect, test } from "bun:test";
import type { CustomMergePolicy, MergePolicyName } from "../../src/map/merge_policy.ts";
import { partitionOfBytes } from "../../src/partition/partition_of.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { encodeValue } from "../../src/wire/codec.ts";
import { fullReplicas, type ImapSimNode, imapSimulation, settle, untilHealed } from "./imap_sim.ts";

const FILE = "test/sim/imap_split_merge_test.ts";
const KEYS = 60;
/** TTL of the entry written on the smaller side (virtual ms; the heal and merge take a few seconds). */
const TTL_MS = 30_000;

interface Seen {
  value: string | undefined;
  /** Virtual time of the write that produced it (base writes: before the split). */
  at: number;
}

/** A custom policy: the value written last on either side wins, and removals never travel. */
const newestValue: CustomMergePolicy = {
  name: "newestValue",
  mergingWins: (existing, merging) =>
    merging.value !== null && (existing === undefined || existing.value === null || merging.at > existing.at),
};

async function scenario(seed: number, name: MergePolicyName | "custom") {
  const policy = name === "custom" ? newestValue : name;
  const problems: string[] = [];
  const sim = imapSimulation({
    seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    tickMs: 5,
    grid: { partitionCount: 31, backupCount: 2, mergePolicy: policy },
    problems,
  });
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < 4; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  const age = sim.liveNodes()[0].m.members().map((m) => m.id);
  const A = age.slice(0, 3).map((id) => sim.node(id)!); // the larger side, with the master
  const B = age.slice(3).map((id) => sim.node(id)!);
  const mapOf = (n: ImapSimNode) => n.grid.getMap<string, string>("m");

  const t0 = sim.clock.now();
  for (let k = 0; k < KEYS; k++) await settle(sim, mapOf(A[k % 3]).set(`k${k}`, "base"));
  await sim.run(100);

  sim.partition([A.map((n) => n.id), B.map((n) => n.id)]);
  await sim.until(() => fullReplicas(A) && fullReplicas(B), 60_000, 50, () => "the sides did not settle apart");

  // During the split (each side's writes acknowledged by that side):
  //  k0–9 only B writes; k10–19 only A writes; k20–29 A then B; k30–39 B then A;
  //  k40–44 A removes; k45–49 B removes; n0–4 are new on B; k50–59 untouched.
  const sides = { A: new Map<string, Seen>(), B: new Map<string, Seen>() };
  const write = async (side: "A" | "B", key: string, value: string | undefined) => {
    const nodes = side === "A" ? A : B;
    const at = sim.clock.now();
    const m = mapOf(nodes[Math.floor(at) % nodes.length]);
    if (value === undefined) {
      // A removal of a key this side no longer holds (its copy of the partition was lost in
      // the split) removes nothing and leaves no tombstone.
      if ((await settle(sim, m.remove(key))) !== undefined) sides[side].set(key, { value, at });
    } else {
      await settle(sim, m.set(key, value));
      sides[side].set(key, { value, at });
    }
    await sim.run(2);
  };
  for (let k = 10; k < 30; k++) await write("A", `k${k}`, `A${k}`);
  for (let k = 40; k < 45; k++) await write("A", `k${k}`, undefined);
  await sim.run(50);
  for (let k = 0; k < 10; k++) await write("B", `k${k}`, `B${k}`);
  for (let k = 20; k < 40; k++) await write("B", `k${k}`, `B${k}`);
  for (let k = 45; k < 50; k++) await write("B", `k${k}`, undefined);
  for (let k = 0; k < 5; k++) await write("B", `n${k}`, `Bn${k}`);
  await sim.run(50);
  for (let k = 30; k < 40; k++) await write("A", `k${k}`, `A${k}`);
  // An entry with a TTL, on the smaller side only.
  const ttlAt = sim.clock.now();
  await settle(sim, B[0].grid.getMap<string, string>("ttl").set("t", "v", { ttlMs: TTL_MS }));

  // What each side holds at the end of the split, read through the side itself.
  const keys = [...Array.from({ length: KEYS }, (_, k) => `k${k}`), ...Array.from({ length: 5 }, (_, k) => `n${k}`)];
  const held = { A: new Map<string, Seen>(), B: new Map<string, Seen>() };
  for (const side of ["A", "B"] as const) {
    const nodes = side === "A" ? A : B;
    for (const key of keys) {
      const value = await settle(sim, mapOf(nodes[0]).get(key));
      const w = sides[side].get(key);
      // A value not written during the split is the base value (written before it).
      held[side].set(key, { value, at: w ? w.at : t0 });
    }
  }

  sim.heal();
  const all = [...A, ...B];
  await untilHealed(sim, all);
  await sim.run(2000);
  await untilHealed(sim, all, 60_000);

  const wrong: string[] = [];
  for (const key of keys) {
    const a = held.A.get(key)!, b = held.B.get(key)!;
    // What each policy keeps (merge_policy.ts). A removal during the split is a state with
    // its own time (a tombstone); a key a side never held has the time before the split.
    let want: string | undefined;
    if (name === "discard") want = a.value;
    else if (name === "passThrough") want = b.value ?? a.value;
    else if (name === "putIfAbsent") want = a.value ?? (b.value !== undefined && b.at > a.at ? b.value : undefined);
    else if (name === "custom") {
      want = b.value !== undefined && (a.value === undefined || b.at > a.at) ? b.value : a.value;
    } else want = b.at > a.at ? b.value : a.value;
    for (const n of [A[0], B[0]]) {
      const got = await settle(sim, mapOf(n).get(key));
      if (got !== want) {
        wrong.push(`${key} via ${n.id}: ${got}, expected ${want} (A held ${a.value}, B held ${b.value})`);
      }
    }
  }
  // The merged TTL entry: on every copy with its TTL and original update time; gone once it expires.
  const tk = encodeValue("t");
  const tp = partitionOfBytes(tk, 31);
  const ttlCopies = all.map((n) => n.grid.maps.debugLocalRecord(tp, "ttl", tk)).filter((r) => r !== undefined)
    .map((r) => ({ ttlMs: r!.ttlMs, early: r!.updatedAt <= ttlAt + 1 }));
  const ttlBeforeExpiry = await settle(sim, A[0].grid.getMap<string, string>("ttl").get("t"));
  await sim.run(Math.max(0, ttlAt + TTL_MS + 1000 - sim.clock.now()));
  const ttlAfterExpiry = await settle(sim, A[0].grid.getMap<string, string>("ttl").get("t"));
  const merges = B.reduce((s, n) => s + n.grid.merge.stats.merges, 0);
  const applied = B.reduce((s, n) => s + n.grid.merge.stats.entriesApplied, 0);
  const failed = B.reduce((s, n) => s + n.grid.merge.stats.chunksFailed, 0);
  for (const n of all) n.stop();
  return { wrong, merges, applied, failed, problems, held, ttlCopies, ttlBeforeExpiry, ttlAfterExpiry };
}

describe("split-brain merge of map data", () => {
  for (
    const [policy, seed] of [
      ["latestUpdate", 1],
      ["passThrough", 2],
      ["discard", 3],
      ["putIfAbsent", 4],
      ["custom", 5],
    ] as const
  ) {
    test(`${policy}: after the heal every key holds what the policy keeps`, () =>
      withSeed(FILE, seed, async (s) => {
        const r = await scenario(s, policy);
        console.log(`${policy}: ${r.merges} merge events on the smaller side, ${r.applied} entries applied`);
        expect(r.merges).toBe(2);
        expect(r.wrong).toEqual([]);
        expect(r.failed).toBe(0);
        expect(r.problems).toEqual([]);
        if (policy === "discard") expect(r.applied).toBe(0);
        else {
          expect(r.applied).toBeGreaterThan(0);
          expect(r.ttlBeforeExpiry).toBe("v");
          expect(r.ttlCopies).toEqual([0, 1, 2].map(() => ({ ttlMs: TTL_MS, early: true })));
        }
        expect(r.ttlAfterExpiry).toBeUndefined();
      }), 120_000);
  }
});
