/**
 * Members behind NATs in the namespace lab (test/nat/lab.ts): two cone NATs with STUN only
 * (a hole-punched direct path), a symmetric NAT with TURN (a relayed ICE path through
 * coturn), and a symmetric NAT without TURN whose traffic to a cone NAT goes through a
 * third member (mesh relay). Paths are checked where they are decided: in the routers'
 * conntrack tables. Figures (setup, join, PUT p50 per path) are printed at the end.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import {
  type ClusterView,
  type Flow,
  LAB_TEST_MS,
  type LabMember,
  labSkipReason,
  NatLab,
  percentile,
  PUB,
  STUN,
  TURN,
  until,
  wanOf,
} from "./lab.ts";

/** Failure detection as README states it (~2–4 s): the time by which a crashed member is suspected. */
const DETECTION_MS = 4_000;
/** Added to it for a CI machine under load (member start-ups of other tests, two cores). */
const LOAD_MARGIN_MS = 6_000;

const skip = labSkipReason();
if (skip) console.log(`skipping NAT lab tests: ${skip}`);

const figures: string[] = [];
let lab: NatLab;
let started: LabMember[] = [];

/** Starts a member and remembers it for afterEach. */
async function member(...a: Parameters<NatLab["member"]>): Promise<LabMember> {
  const m = await lab.member(...a);
  started.push(m);
  return m;
}

/** Waits until every member lists all of them with replicas in place. */
async function formed(members: LabMember[], timeoutMs = 30_000): Promise<ClusterView[]> {
  return await until(`${members.map((m) => m.name)} formed`, timeoutMs, async () => {
    const views = await Promise.all(members.map((m) => m.cluster()));
    const ok = views.every((v) =>
      v.members.length === members.length && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
    );
    return ok ? views : undefined;
  });
}

/** PUT latency p50 in ms over `n` keys written on `m` (each write also reaches the other member). */
async function putP50(m: LabMember, map: string, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    expect(await m.put(map, `k${i}`, { i, by: m.name })).toBe(200);
    times.push(performance.now() - t0);
  }
  return Math.round(percentile(times, 50) * 100) / 100;
}

/** The first link's selected ICE pair as "local/remote" candidate types. */
const pairOf = (v: ClusterView) => `${v.links[0]?.candidateType}/${v.links[0]?.remoteCandidateType}`;

/** Flows from this router's LAN to `wan` that carried traffic both ways. */
const repliedTo = (flows: Flow[], wan: string) => flows.filter((f) => f.replied && f.dst === wan);

beforeAll(async () => {
  if (skip) return;
  lab = await NatLab.up();
  figures.push(`lab setup (namespaces, routers, NAT rules): ${lab.netSetupMs} ms`);
});
afterEach(async () => {
  if (skip) return;
  await lab.stop(...started);
  started = [];
  // Back to three cone NATs with empty conntrack tables (flows of stopped members linger otherwise).
  for (const r of [1, 2, 3] as const) lab.nat(r, "cone");
});
afterAll(async () => {
  await lab?.down();
  if (figures.length) console.log(["NAT lab figures:", ...figures].join("\n  "));
});

describe.skipIf(skip !== null)("NAT lab: paths", () => {
  test(
    "two cone NATs, STUN only: a hole-punched direct link, and a map written behind one NAT read behind the other",
    async () => {
      const a = await member("cone-a", "h1", { runtime: "bun", ice: [STUN] });
      const t0 = performance.now();
      const b = await member("cone-b", "h2", { runtime: "deno", ice: [STUN] });
      const [va] = await formed([a, b]);
      figures.push(`join behind two cone NATs (ready → formed, Deno member): ${Math.round(performance.now() - t0)} ms`);
      expect(va.links).toMatchObject([{ peer: b.id, kind: "direct" }]);
      const vb = await b.cluster();
      expect(vb.links).toMatchObject([{ peer: a.id, kind: "direct" }]);
      // The selected ICE pair as each member reports it: no relay candidate, and the far end
      // is the other router's public mapping (server or peer reflexive).
      for (const l of [va.links[0], vb.links[0]]) {
        expect(["host", "srflx", "prflx"]).toContain(String(l.candidateType));
        expect(["srflx", "prflx"]).toContain(String(l.remoteCandidateType));
      }
      figures.push(`selected ICE pair behind two cone NATs: ${pairOf(va)} (cone-a), ${pairOf(vb)} (cone-b)`);

      // The data channel runs between the two routers' public addresses: hole punched, no relay.
      const r1 = repliedTo(lab.flows(1), wanOf(2));
      const r2 = repliedTo(lab.flows(2), wanOf(1));
      expect(r1.length).toBeGreaterThan(0);
      expect(r2.length).toBeGreaterThan(0);
      expect(lab.flows(1).some((f) => f.dst === PUB && f.dport >= 49160 && f.dport <= 49200)).toBe(false);

      for (let i = 0; i < 20; i++) expect(await a.put("notes", `n${i}`, { from: "cone-a", i })).toBe(200);
      for (let i = 0; i < 20; i++) {
        expect(await b.get("notes", `n${i}`)).toEqual({ status: 200, value: { from: "cone-a", i } });
      }
      const p50 = await putP50(a, "lat", 100);
      figures.push(`PUT p50, two members behind two cone NATs (direct srflx path): ${p50} ms`);

      // The same member with a neighbour on its own LAN (host candidates, never through the router).
      const lan = await member("lan-b", "h4", { runtime: "bun", ice: [STUN] });
      await lab.stop(b);
      await formed([a, lan]);
      const lanView = await a.cluster();
      expect(lanView.links).toEqual([{
        peer: lan.id,
        kind: "direct",
        candidateType: "host",
        remoteCandidateType: "host",
      }]);
      const lanP50 = await putP50(a, "lat-lan", 100);
      figures.push(`PUT p50, two members on one LAN (host path): ${lanP50} ms`);
    },
    LAB_TEST_MS,
  );

  test("symmetric NAT with TURN: the link forms through coturn's relay", async () => {
    lab.nat(2, "symmetric");
    const a = await member("cone-a", "h1", { runtime: "deno", ice: [STUN, TURN] });
    const t0 = performance.now();
    const b = await member("sym-b", "h2", { runtime: "bun", ice: [STUN, TURN] });
    await formed([a, b]);
    figures.push(`join, symmetric NAT ↔ cone NAT with TURN (ready → formed): ${Math.round(performance.now() - t0)} ms`);
    const [va, vb] = [await a.cluster(), await b.cluster()];
    expect(va.links).toMatchObject([{ peer: b.id, kind: "direct" }]);
    expect(vb.links).toMatchObject([{ peer: a.id, kind: "direct" }]);
    // The selected candidate pair, as each member reports it, has a relay candidate at one end.
    for (const l of [va.links[0], vb.links[0]]) expect([l.candidateType, l.remoteCandidateType]).toContain("relay");
    figures.push(`selected ICE pair, symmetric NAT with TURN: ${pairOf(va)} (cone-a), ${pairOf(vb)} (sym-b)`);

    // A second witness, in the routers: no flow carries traffic between the two routers;
    // both talk to coturn, one of them to a relay port.
    expect(repliedTo(lab.flows(1), wanOf(2))).toEqual([]);
    expect(repliedTo(lab.flows(2), wanOf(1))).toEqual([]);
    const relayPort = (f: Flow) => f.replied && f.dst === PUB && f.dport >= 49160 && f.dport <= 49200;
    const toRelay = [...lab.flows(1), ...lab.flows(2)].filter(relayPort);
    expect(toRelay.length).toBeGreaterThan(0);
    // coturn refused to relay to the members' private host candidates (denied-peer-ip).
    expect(lab.coturn.stdout).toMatch(/peer IP 10\.0\.\d\.\d+ denied/);

    for (let i = 0; i < 20; i++) expect(await b.put("turn", `t${i}`, i)).toBe(200);
    for (let i = 0; i < 20; i++) expect(await a.get("turn", `t${i}`)).toEqual({ status: 200, value: i });
    const p50 = await putP50(b, "lat-turn", 100);
    figures.push(`PUT p50, symmetric NAT ↔ cone NAT through TURN: ${p50} ms`);
  }, LAB_TEST_MS);
});

describe.skipIf(skip !== null)("NAT lab: mesh relay", () => {
  test(
    "symmetric NAT without TURN ↔ cone NAT: relayed by the member on the internet; killing it is detected",
    async () => {
      lab.nat(2, "symmetric");
      const relay = await member("relay", "pub", { runtime: "bun", ice: [STUN] });
      const cone = await member("cone-c", "h3", { runtime: "bun", ice: [STUN] });
      const t0 = performance.now();
      const sym = await member("sym-b", "h2", { runtime: "deno", ice: [STUN] });
      const ready = performance.now();
      await formed([relay, cone, sym], 60_000);
      // The pair cannot punch through a symmetric NAT with STUN alone: after failed attempts
      // each end routes the other through the member both reach.
      const linkOf = async (m: LabMember, peer: LabMember) => (await m.cluster()).links.find((l) => l.peer === peer.id);
      await until("sym-b ↔ cone-c relayed", 90_000, async () => {
        const [x, y] = [await linkOf(sym, cone), await linkOf(cone, sym)];
        return x?.kind === "relayed" && y?.kind === "relayed" && x.via === relay.id && y.via === relay.id;
      });
      const [fromStart, fromReady] = [performance.now() - t0, performance.now() - ready].map(Math.round);
      figures.push(
        `symmetric ↔ cone without TURN: mesh relay route in place ${fromStart} ms after the member started (${fromReady} ms after its ready line)`,
      );
      // A relayed peer has a path: nobody is listed as unreachable.
      for (const m of [relay, cone, sym]) expect((await m.cluster()).unreachable).toEqual([]);
      expect(await linkOf(sym, relay)).toMatchObject({ peer: relay.id, kind: "direct" });
      expect(await linkOf(cone, relay)).toMatchObject({ peer: relay.id, kind: "direct" });
      expect(repliedTo(lab.flows(2), wanOf(3))).toEqual([]);

      const all = [relay, cone, sym];
      for (const [i, w] of all.entries()) {
        for (let k = 0; k < 10; k++) expect(await w.put("mesh", `${w.name}-${k}`, i * 100 + k)).toBe(200);
      }
      for (const r of all) {
        for (const [i, w] of all.entries()) {
          for (let k = 0; k < 10; k++) {
            expect(await r.get("mesh", `${w.name}-${k}`)).toEqual({ status: 200, value: i * 100 + k });
          }
        }
      }
      const p50 = await putP50(sym, "lat-mesh", 100);
      figures.push(`PUT p50 on the symmetric-NAT member, 3 members, mesh relay for one pair: ${p50} ms`);

      // Without the relay the pair has no path at all. Within failure-detection time each end
      // stops reporting the relayed path and lists the other as unreachable (the relay's link
      // stays open: only the suspicion of the relay tells).
      const killedAt = performance.now();
      await lab.stop(relay);
      const cutOff = async (m: LabMember, other: LabMember) => {
        const v = await m.cluster();
        return !v.links.some((l) => l.via === relay.id || l.peer === other.id) && v.unreachable.includes(other.id);
      };
      await until(
        "the pair reported unreachable",
        DETECTION_MS + LOAD_MARGIN_MS,
        async () => (await cutOff(sym, cone)) && (await cutOff(cone, sym)),
      );
      figures.push(
        `relay killed → both ends report the pair unreachable: ${Math.round(performance.now() - killedAt)} ms`,
      );
      // Then the verdicts: each end drops the relay and the other. Nobody can confirm them
      // (the pair hears nobody), so Lifeguard keeps them slow: a member that hears nobody may
      // be the one cut off (test/sim/cluster_stall_test.ts, lone accusers).
      const gone = async (m: LabMember, other: LabMember) => {
        const v = await m.cluster();
        return !v.members.some((x) => x.id === relay.id || x.id === other.id);
      };
      await until(
        "the pair dropped on both sides",
        45_000,
        async () => (await gone(sym, cone)) && (await gone(cone, sym)),
      );
      figures.push(
        `relay killed → the unreachable pair dropped on both sides: ${Math.round(performance.now() - killedAt)} ms`,
      );
    },
    LAB_TEST_MS,
  );
});
