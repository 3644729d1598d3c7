/**
 * Member ids bound to certificates, across real processes: Bun and Deno members a, b and c
 * form a cluster (c joins through b). Another process holding the cluster secret
 * (test/foundation/node_proc.ts, with its own DTLS certificate) registers in b's signaling
 * room under the master a's id (the real a is not in that room once linked) and offers a
 * link to c, which signals through that room. c refuses the offer and counts it
 * (`shoal_cluster_rejected_total{reason="foreign_certificate"}`), and a keeps working: it
 * stays the master and serves writes that c reads.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { signalUrl } from "../src/signaling/client.ts";
import { killAll, root, spawnScript, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

interface ClusterJson {
  members: { id: string }[];
}

describe("a process with the secret claiming a member's id", () => {
  test("its link to c under the master's id is refused and counted; the master keeps working", async () => {
    const a = await startMember({ name: "a", runtime: "bun" });
    const b = await startMember({ name: "b", runtime: "deno", join: a.url });
    const c = await startMember({ name: "c", runtime: "bun", join: b.url });
    const ids = async () => (await c.json<ClusterJson>("/cluster")).members.map((m) => m.id).sort();
    await until(async () => (await ids()).length === 3 || undefined, 30_000, "3-member view");
    // Members keep a signaling connection to another's endpoint until 5 s after they linked.
    await new Promise((r) => setTimeout(r, 6_000));

    const impostor = spawnScript("impostor", "bun", `${root}/test/foundation/node_proc.ts`, [
      "--id",
      a.id,
      "--signal",
      signalUrl(b.url),
      "--cluster",
      "shoal",
      "--secret",
      "test-secret",
    ]);
    await impostor.waitFor((e) => e.event === "ready", "impostor ready", 30_000);
    const r = await impostor.ask({ cmd: "connect", peer: c.id, id: 1 }, "connected", 30_000);
    expect(r.ok).toBe(false);
    expect(String(r.error)).toContain("joined with another DTLS certificate");
    const metrics = await (await c.get("/metrics")).text();
    expect(metrics).toContain('shoal_cluster_rejected_total{reason="foreign_certificate"} 1');
    impostor.send({ cmd: "exit" });
    await impostor.exited;

    // a still works: the master, and its writes read back through c.
    expect((await c.json<{ master: string }>("/cluster")).master).toBe(a.id);
    expect(await ids()).toEqual([a.id, b.id, c.id].sort());
    const put = await fetch(`${a.url}/maps/idb/k`, { method: "PUT", body: JSON.stringify({ by: "a" }) });
    expect(put.status).toBeLessThan(300);
    await put.body?.cancel();
    const got = await until(
      async () => {
        const res = await c.get("/maps/idb/k");
        return res.status === 200 ? await res.json() : (await res.body?.cancel(), undefined);
      },
      10_000,
      "a's write read through c",
    );
    expect(got).toMatchObject({ value: { by: "a" } });
    expect(await ids()).toEqual([a.id, b.id, c.id].sort());
  }, 120_000);
});
