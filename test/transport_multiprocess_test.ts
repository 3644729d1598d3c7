/**
 * Real processes, real WebRTC: a standalone signaling server plus three members (two under
 * Bun, one under Deno) connect pairwise and exchange messages. A fourth member links to
 * one of them through the server; the server is then killed (-9) and the fourth member
 * gets links to the other two through signaling relayed over the mesh alone. The server's
 * relay counters (read before the kill) show it carried nothing for those pairs. A member
 * with the wrong secret is refused with a clear reason, and so is an offer whose
 * fingerprint a malicious relay process swapped.
 */
import { afterAll, expect, test } from "bun:test";
import { type Proc, spawnScript } from "./support/cluster.ts";

const procs: Proc[] = [];
afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
});

const NODE = "test/foundation/node_proc.ts";
let seq = 0;

async function connect(p: Proc, peer: string, via?: string) {
  const r = await p.ask({ cmd: "connect", peer, via, id: ++seq }, "connected", 25_000);
  return r;
}

async function counts(p: Proc): Promise<{ received: Record<string, number>; outOfOrder: number }> {
  return (await p.ask({ cmd: "counts" }, "counts")) as never;
}

async function untilCounts(p: Proc, from: string, n: number) {
  const end = Date.now() + 20_000;
  for (;;) {
    const c = await counts(p);
    if ((c.received[from] ?? 0) >= n) return c;
    if (Date.now() > end) {
      throw new Error(`${p.name} got ${c.received[from] ?? 0}/${n} messages from ${from}\n${p.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(
  "three processes (Bun, Bun, Deno) form a full mesh; after the server dies a fourth links to the rest by relayed signaling",
  async () => {
    const server = spawnScript("signal", "bun", "mod.ts", ["signal", "--http", "127.0.0.1:0", "--log-level", "warn"]);
    procs.push(server);
    const ready = await server.waitFor((e) => e.event === "ready", "signal ready");
    const url = String(ready.url);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const a = spawnScript("a", "bun", NODE, ["--id", "a", "--signal", url]);
    const b = spawnScript("b", "bun", NODE, ["--id", "b", "--signal", url]);
    const c = spawnScript("c", "deno", NODE, ["--id", "c", "--signal", url]);
    procs.push(a, b, c);
    for (const p of [a, b, c]) await p.waitFor((e) => e.event === "ready", `${p.name} ready`, 30_000);
    expect((await c.ask({ cmd: "stats" }, "stats")).runtime).toBe("deno");

    // Full mesh through the server.
    const results = await Promise.all([connect(a, "b"), connect(a, "c"), connect(b, "c")]);
    for (const r of results) expect(r).toMatchObject({ ok: true });
    for (const [p, peers] of [[a, ["b", "c"]], [b, ["a", "c"]], [c, ["a", "b"]]] as const) {
      for (const peer of peers) {
        await p.waitFor((e) => e.event === "linkUp" && e.peer === peer, `${p.name} linkUp ${peer}`);
      }
    }
    for (const [p, peers] of [[a, ["b", "c"]], [b, ["a", "c"]], [c, ["a", "b"]]] as const) {
      for (const peer of peers) p.send({ cmd: "send", to: peer, n: 2000 });
    }
    for (const [p, peers] of [[a, ["b", "c"]], [b, ["a", "c"]], [c, ["a", "b"]]] as const) {
      for (const peer of peers) {
        const got = await untilCounts(p, peer, 2000);
        expect(got.received[peer]).toBe(2000);
        expect(got.outOfOrder).toBe(0);
      }
    }

    // A wrong-secret member is refused with a reason, not a timeout.
    const e = spawnScript("e", "bun", NODE, ["--id", "e", "--signal", url, "--secret", "wrong"]);
    procs.push(e);
    await e.waitFor((x) => x.event === "ready", "e ready");
    const refused = await connect(e, "a");
    expect(refused).toMatchObject({ ok: false, code: "AUTH_FAILED" });
    expect(String(refused.error)).toContain("authentication failed");
    e.send({ cmd: "exit" });

    // A malicious relay t (swaps the fingerprint in offers it relays) cannot put itself
    // between x and a: a refuses the offer and x learns why.
    const t = spawnScript("t", "bun", NODE, ["--id", "t", "--signal", url, "--tamper", "fp"]);
    const x = spawnScript("x", "bun", NODE, ["--id", "x", "--signal", url]);
    procs.push(t, x);
    await t.waitFor((ev) => ev.event === "ready", "t ready");
    await x.waitFor((ev) => ev.event === "ready", "x ready");
    expect(await connect(t, "a")).toMatchObject({ ok: true });
    expect(await connect(x, "t")).toMatchObject({ ok: true });
    const tampered = await connect(x, "a", "t");
    expect(tampered).toMatchObject({ ok: false, code: "AUTH_FAILED" });
    expect(String(tampered.error)).toContain("fingerprint");
    const aRefusals = (await a.ask({ cmd: "stats" }, "stats")).signaling as { refused: number; lastRefusal: string };
    expect(aRefusals.refused).toBe(2); // e's wrong secret, then this
    expect(aRefusals.lastRefusal).toContain("fingerprint");
    t.send({ cmd: "exit" });
    x.send({ cmd: "exit" });

    // The fourth member's first link goes through the server.
    const d = spawnScript("d", "bun", NODE, ["--id", "d", "--signal", url]);
    procs.push(d);
    await d.waitFor((x) => x.event === "ready", "d ready");
    expect(await connect(d, "a")).toMatchObject({ ok: true });

    const before = await (await fetch(`${url}/signal/stats`)).json();
    expect(before.relayed["d>a"]).toBeGreaterThan(0);
    server.kill("SIGKILL");
    await server.exited;

    // Links to b (Bun) and c (Deno) through relayed signaling alone.
    const [db, dc] = await Promise.all([connect(d, "b", "a"), connect(d, "c", "a")]);
    expect(db).toMatchObject({ ok: true });
    expect(dc).toMatchObject({ ok: true });
    d.send({ cmd: "send", to: "b", n: 500 });
    d.send({ cmd: "send", to: "c", n: 500 });
    b.send({ cmd: "send", to: "d", n: 500 });
    c.send({ cmd: "send", to: "d", n: 500 });
    expect((await untilCounts(b, "d", 500)).received.d).toBe(500);
    expect((await untilCounts(c, "d", 500)).received.d).toBe(500);
    const dCounts = await untilCounts(d, "c", 500);
    expect((await untilCounts(d, "b", 500)).received.b).toBe(500);
    expect(dCounts.outOfOrder).toBe(0);

    // The server never carried anything between d and b or d and c.
    for (const pair of ["d>b", "b>d", "d>c", "c>d"]) expect(before.relayed[pair] ?? 0).toBe(0);
    const dStats = await d.ask({ cmd: "stats" }, "stats");
    expect(dStats.signalingConnected).toBe(false);
    expect(dStats.signaling).toMatchObject({ offersViaServer: 1, offersViaMesh: 2 });
    expect((dStats.links as string[]).sort()).toEqual(["a", "b", "c"]);
    const aStats = await a.ask({ cmd: "stats" }, "stats");
    expect((aStats.signaling as { relayed: number }).relayed).toBeGreaterThanOrEqual(4);

    for (const p of [a, b, c, d]) p.send({ cmd: "exit" });
    for (const p of [a, b, c, d]) expect(await p.exited).toBe(0);
  },
  120_000,
);
