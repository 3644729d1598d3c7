/**
 * Connect time (offer → open) and round-trip time through each path of the NAT lab, with
 * bare transports (test/nat/link_probe.ts) so member start-up and map work are not in the
 * figures: host (one LAN), server-reflexive (two cone NATs, hole punched), TURN (symmetric
 * NAT ↔ cone NAT through coturn) and mesh relay (symmetric ↔ cone, forwarded by a third
 * transport on the internet). Prints the figures; asserts only that every path works.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LAB_TEST_MS, type LabProc, labSkipReason, NatLab, STUN, TURN, wanOf } from "./lab.ts";

const skip = labSkipReason();
if (skip) console.log(`skipping NAT lab tests: ${skip}`);

let lab: NatLab;
const rows: string[] = [];

beforeAll(async () => {
  if (skip) return;
  lab = await NatLab.up();
  lab.nat(2, "symmetric");
});
afterAll(async () => {
  await lab?.down();
  if (rows.length) {
    console.log(["NAT lab paths (offer → open, RTT of 100 B pings one at a time):", ...rows].join("\n  "));
  }
});

async function measure(path: string, a: LabProc, b: LabProc, connect: boolean): Promise<void> {
  let ms = "—";
  if (connect) {
    const c = await a.ask({ cmd: "connect", peer: b.name }, "connected");
    expect(c).toMatchObject({ ok: true });
    ms = `${c.ms} ms`;
  }
  await a.ask({ cmd: "ping", peer: b.name, n: 50 }, "pinged"); // warm-up, not counted
  const r = await a.ask({ cmd: "ping", peer: b.name, n: 200 }, "pinged");
  expect(r).toMatchObject({ ok: true, n: 200 });
  rows.push(`${path.padEnd(44)} connect ${ms.padStart(7)}  RTT p50 ${r.p50} ms, p90 ${r.p90} ms`);
}

describe.skipIf(skip !== null)("NAT lab: figures per path", () => {
  test("host, server-reflexive, TURN and mesh relay paths all carry traffic", async () => {
    const [pub, a, lan, sym, cone] = await Promise.all([
      lab.probe("pub", "pub", "bun", [STUN]),
      lab.probe("a", "h1", "bun", [STUN]),
      lab.probe("lan", "h4", "deno", [STUN]),
      lab.probe("sym", "h2", "bun", [STUN, TURN]),
      lab.probe("cone", "h3", "bun", [STUN]),
    ]);
    await measure("host (one LAN, Bun ↔ Deno)", lan, a, true);
    await measure("srflx (two cone NATs, hole punched)", a, cone, true);
    expect(lab.flows(1).some((f) => f.replied && f.dst === wanOf(3))).toBe(true);
    await measure("TURN relay (symmetric NAT ↔ cone NAT)", sym, a, true);
    expect(lab.flows(2).some((f) => f.replied && f.dst === wanOf(1))).toBe(false);
    // Mesh relay: sym and cone each reach the transport on the internet, and route through it.
    await measure("direct to the internet (symmetric NAT → pub)", sym, pub, true);
    expect((await cone.ask({ cmd: "connect", peer: "pub" }, "connected")).ok).toBe(true);
    await sym.ask({ cmd: "route", peer: "cone", via: "pub" }, "routed");
    await cone.ask({ cmd: "route", peer: "sym", via: "pub" }, "routed");
    await measure("mesh relay (symmetric ↔ cone through pub)", sym, cone, false);
  }, LAB_TEST_MS);
});
