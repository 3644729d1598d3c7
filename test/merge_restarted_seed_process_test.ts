/**
 * A two-member cluster (a = seed, started with no --join; b joined through a), 200 acknowledged
 * writes, kill -9 of a, then a restarted with the same command line (same port, no --join): it
 * forms a one-member cluster at member-list version 1, b's join-URL signaling finds it, and the
 * two groups merge. Equal sizes went to the master id that sorts first: when the empty restarted
 * seed won, `discard` dropped every entry b held (found by an internal review). The group whose
 * member list has more history (the higher version) now wins a tie of sizes.
 */
import { afterAll, expect, test } from "bun:test";
import { createServer } from "node:net";
import { type ClusterJson, killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}
const view = (m: Member) => m.json<ClusterJson>("/cluster", 3000).catch(() => undefined);
const KEYS = 200;

test("discard: a seed restarted alone merges into the member holding the data, which keeps every entry", async () => {
  const port = await freePort();
  const http = `127.0.0.1:${port}`;
  const secret = `pair-${Date.now()}`;
  const args = ["--partition-count", "31", "--merge-policy", "discard"];
  const a = await startMember({ name: "a", runtime: "bun", http, secret, args });
  // The case that lost the data needs the restarted seed's id to sort before b's. Ids are random:
  // a b whose id sorts low is started again (else a restart would rarely draw a lower id).
  let b = await startMember({ name: "b", runtime: "deno", join: a.url, secret, args });
  for (let run = 0; run < 10 && b.id < "8"; run++) {
    b.child.kill("SIGKILL");
    await b.child.exited;
    await until(async () => (await view(a))?.members.length === 1 || undefined, 60_000, "b removed by a");
    b = await startMember({ name: "b", runtime: "deno", join: a.url, secret, args });
  }
  await until(
    async () => {
      const vs = await Promise.all([a, b].map(view));
      return vs.every((v) => v && v.members.length === 2 && v.partitions.replicasMissing === 0) || undefined;
    },
    60_000,
    "2 members settled",
  );
  for (let i = 0; i < KEYS; i++) {
    const r = await fetch(`${[a, b][i % 2].url}/maps/m/k${i}`, {
      method: "PUT",
      body: JSON.stringify(`v${i}`),
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(200);
  }
  a.kill9();
  await a.child.exited;
  await until(async () => (await view(b))?.members.length === 1 || undefined, 60_000, "a removed by b");
  // The restarted seed's id must sort before b's: restart it until so.
  let a2: Member | undefined;
  for (let run = 0; run < 10 && !a2; run++) {
    const m = await startMember({ name: "a", runtime: "bun", http, secret, args });
    if (m.id < b.id) a2 = m;
    else {
      m.child.kill("SIGKILL");
      await m.child.exited;
      await until(async () => (await view(b))?.members.length === 1 || undefined, 60_000, "the retry removed by b");
    }
  }
  expect(a2).toBeDefined();
  const ids = [a2!.id, b.id].sort().join(",");
  const merged = await until(
    async () => {
      const vs = await Promise.all([a2!, b].map(view));
      return vs.every((v) =>
          v && v.members.map((m) => m.id).sort().join(",") === ids && v.master === vs[0]!.master &&
          v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
        )
        ? vs[0]
        : undefined;
    },
    90_000,
    "a2 and b in one cluster",
  );
  expect(merged!.master).toBe(b.id);
  const missing: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const res = await fetch(`${[a2!, b][i % 2].url}/maps/m/k${i}`);
    const got = res.status === 200 ? (await res.json()).value : `<${res.status}>`;
    if (got !== `v${i}`) missing.push(`k${i}=${got}`);
  }
  expect(missing).toEqual([]);
  a2!.child.kill("SIGKILL");
  b.child.kill("SIGKILL");
}, 300_000);
