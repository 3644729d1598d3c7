/**
 * A member holding the secret that answers the master's anti-entropy with a member list in the
 * master's own name (found by a flood of random cluster-layer messages: a seed-9 flood of 50,000
 * made the master install such a list, drop itself and follow the liar; the list's epoch of
 * 2.7 million then overflowed the partition layer's term space on the next master, and the
 * cluster never converged). The master is the only source of lists naming it: it never asks
 * another member for one, nor installs one another member sends.
 */
import { describe, expect } from "bun:test";
import { Kind } from "../../src/wire/kinds.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { seededTest } from "../support/seeded.ts";
import { fullReplicas, imapSimulation } from "./imap_sim.ts";

const seeded = seededTest("test/sim/cluster_hostile_list_test.ts");

describe("a member that claims a newer list of the master's and sends one in its name", () => {
  seeded("the master neither asks for it nor installs it; it stays master of everyone", 1, async (seed) => {
    const problems: string[] = [];
    const liar = "n00003";
    const sim = imapSimulation({
      seed,
      encode: true,
      grid: { partitionCount: 31 },
      isLite: (id) => id === liar,
      problems,
    });
    const first = sim.spawn();
    void first.m.start([]);
    await sim.run(10);
    for (let i = 0; i < 3; i++) void sim.spawn().m.start([first.id]);
    await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
    const [a, b, c, evil] = sim.liveNodes();
    const wire = sim.net.node(evil.id) as MemoryTransport;
    expect(a.m.isMaster()).toBe(true);
    const changes: string[] = [];
    a.m.subscribe((e) => {
      if (e.type === "masterChanged" || e.type === "removedFromList") changes.push(e.type);
    });
    const version = a.m.memberListVersion;
    // A push-pull claiming a newer list of the master's (the master would ask the liar for it),
    // then, before the request arrives, the "answer": a list in the master's name without the
    // master, at a far-future epoch.
    wire.send(a.id, { t: Kind.ClusterPushPull, reply: true, lv: version + 5, ms: a.id, states: [] });
    wire.send(a.id, {
      t: Kind.ClusterMemberList,
      base: 0,
      list: {
        version: version + 5,
        master: a.id,
        epoch: 2 ** 21,
        nextJoin: 99,
        members: [b, c, evil].map((n) => ({ ...a.m.member(n.id)! })),
      },
      removed: [],
      g: [],
    });
    await sim.run(3_000);
    expect(changes).toEqual([]);
    expect(a.m.master()).toBe(a.id);
    expect(a.m.masterEpoch).toBeLessThan(100);
    expect(a.m.stats.rejected.list_not_from_master).toBeGreaterThan(0);
    expect(fullReplicas(sim.liveNodes())).toBe(true);
    expect(problems).toEqual([]);
  });
});
