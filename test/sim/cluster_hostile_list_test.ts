/**
 * A member holding the secret that answers the master's anti-entropy with a member list in the
 * master's own name (found by a flood of random cluster-layer messages: a seed-9 flood of 50,000
 * made the master install such a list, drop itself and follow the liar; the list's epoch of
 * 2.7 million then overflowed the partition layer's term space on the next master, and the
 * cluster never converged). The master is the only source of lists naming it: it never asks
 * another member for one, nor installs one another member sends.
 */
import { describe, expect } from "bun:test";
import type { MemberListM, ViewReply } from "../../src/cluster/messages.ts";
import type { MemberInfo } from "../../src/cluster/view.ts";
import { Kind } from "../../src/wire/kinds.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { seededTest } from "../support/seeded.ts";
import { fullReplicas } from "./imap_sim.ts";
import { gridWithLiar } from "./hostile_grid.ts";

const seeded = seededTest("test/sim/cluster_hostile_list_test.ts");

/** A full member list in `master`'s name at `version`, its epoch 2^21 (far ahead of any here). */
const forgedList = (version: number, master: string, members: MemberInfo[]): MemberListM => ({
  t: Kind.ClusterMemberList,
  base: 0,
  list: { version, master, epoch: 2 ** 21, nextJoin: 99, members },
  removed: [],
  g: [],
});

describe("a member that claims a newer list of the master's and sends one in its name", () => {
  seeded("the master neither asks for it nor installs it; it stays master of everyone", 1, async (seed) => {
    const { sim, problems, honest: [a, b, c], evil, wire } = await gridWithLiar(seed);
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
    wire.send(a.id, forgedList(version + 5, a.id, [b, c, evil].map((n) => ({ ...a.m.member(n.id)! }))));
    await sim.run(3_000);
    expect(changes).toEqual([]);
    expect(a.m.master()).toBe(a.id);
    expect(a.m.masterEpoch).toBeLessThan(100);
    expect(a.m.stats.rejected.list_not_from_master).toBeGreaterThan(0);
    expect(fullReplicas(sim.liveNodes())).toBe(true);
    expect(problems).toEqual([]);
  });
});

describe("lists that do not come from the master, at a far-future epoch", () => {
  const lies: Array<[string, Partial<ViewReply["list"]>]> = [
    ["2^21 epochs ahead", { epoch: 2 ** 21 }],
    ["with an admission number of 2^53 - 1", { nextJoin: Number.MAX_SAFE_INTEGER }],
  ];
  for (const [what, lie] of lies) {
    seeded(
      `a new master does not adopt a collected view ${what}; the next reign's list and table stand`,
      1,
      async (seed) => {
        const { sim, problems, honest: [a, b, c], evil, wire } = await gridWithLiar(seed);
        // The liar answers the new master's view request with its view, far ahead.
        const send = wire.send.bind(wire);
        wire.send = (to, msg) =>
          send(to, msg.t === Kind.ClusterViewReply ? { ...msg, list: { ...(msg as ViewReply).list, ...lie } } : msg);
        sim.crash(a.id);
        await sim.until(
          () => fullReplicas(sim.liveNodes()) && b.m.isMaster(),
          60_000,
          50,
          () => `no single cluster under b: ${problems}`,
        );
        expect(b.m.stats.rejected.far_future).toBe(1);
        for (const n of [b, c, evil]) expect(n.m.masterEpoch).toBeLessThan(100);
        // A member admitted now gets an admission number the wire carries, and every member takes the list.
        const d = sim.spawn();
        void d.m.start([b.id]);
        await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "the joiner was not admitted");
        expect(d.m.member(d.id)!.joinedAt).toBeLessThan(1000);
        expect(problems).toEqual([]);
      },
    );
  }

  seeded(
    "a member asking another for the list (its master out of reach) does not install one 2^21 epochs ahead",
    1,
    async (seed) => {
      const { sim, problems, honest: [a, , c], wire } = await gridWithLiar(seed);
      const version = c.m.memberListVersion;
      (sim.net.node(c.id) as MemoryTransport).dropLink(a.id, "test: the master out of reach");
      wire.send(c.id, { t: Kind.ClusterPushPull, reply: true, lv: version + 5, ms: a.id, states: [] });
      await sim.run(1);
      wire.send(c.id, forgedList(version + 5, a.id, sim.liveNodes().map((n) => ({ ...c.m.member(n.id)! }))));
      await sim.run(100);
      expect(c.m.stats.rejected.far_future).toBe(1);
      expect(c.m.masterEpoch).toBeLessThan(100);
      await sim.until(() => fullReplicas(sim.liveNodes()), 30_000, 50, () => "no single cluster again");
      expect(problems).toEqual([]);
    },
  );
});
