/**
 * Three Shoal members in one process, linked over real WebRTC data channels (werift, on
 * loopback): write a map through one member, read it through the others, then stop the
 * master (which also served the signaling endpoint) and show that every entry survives
 * and a new master takes over.
 *
 *     bun run examples/local-cluster.ts
 *     deno run -A examples/local-cluster.ts
 *
 * Exits 0 when every check held, 1 otherwise.
 */
import process from "node:process"; // Deno and Bun both provide it
import { type Node, startNode } from "../mod.ts";

const secret = "local-cluster-example";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
const say = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(4)}s] ${s}`);

/** Polls `ok` until it holds, for at most `timeoutMs`. */
async function waitFor(what: string, ok: () => boolean, timeoutMs = 60_000, state?: () => string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!ok()) {
    if (performance.now() > end) {
      throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${state ? `; state: ${state()}` : ""}`);
    }
    await sleep(50);
  }
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const nodes: Node[] = [];
let code = 0;
try {
  // The first member bootstraps the cluster: it serves HTTP and the signaling endpoint.
  const a = await startNode({ name: "a", secret, http: "127.0.0.1:0", logLevel: "warn" });
  nodes.push(a);
  say(`a started; it serves REST, the dashboard and signaling at ${a.httpUrl}`);
  // The others join through it and serve no HTTP of their own.
  // One after the other, so b is older than c (the oldest member is the master).
  const b = await startNode({ name: "b", secret, http: false, join: [a.httpUrl!], logLevel: "warn" });
  nodes.push(b);
  const c = await startNode({ name: "c", secret, http: false, join: [a.httpUrl!], logLevel: "warn" });
  nodes.push(c);
  await waitFor(
    "3 members, linked to each other, and every partition backed up",
    () =>
      nodes.every((n) => n.membership.members().length === 3 && n.links().length === 2) &&
      a.partitionSummary().replicasMissing === 0,
  );
  const names = (n: Node) => n.membership.members().map((m) => m.name).join(", ");
  say(`cluster of 3 over WebRTC: ${names(a)}; master ${a.membership.member(a.membership.master()!)?.name}`);
  say(`links from a: ${a.links().map((l) => `${l.peer.slice(0, 6)} ${l.kind}`).join(", ")}`);

  // Write through b, read through c and a.
  const cities = b.getMap<string, { country: string; population: number }>("cities");
  const data: Array<[string, { country: string; population: number }]> = [
    ["Lisbon", { country: "PT", population: 545_000 }],
    ["Osaka", { country: "JP", population: 2_750_000 }],
    ["Quito", { country: "EC", population: 2_800_000 }],
  ];
  for (let i = 0; i < 297; i++) data.push([`town-${i}`, { country: "XX", population: i * 100 }]);
  await cities.putAll(data);
  say(`b wrote ${data.length} entries into map "cities" (each on its partition's primary and backup)`);
  check(
    (await c.getMap<string, { population: number }>("cities").get("Osaka"))?.population === 2_750_000,
    "c reads Osaka",
  );
  check(await a.getMap("cities").size() === data.length, "a counts every entry");
  say(
    `c reads Osaka → ${JSON.stringify(await c.getMap("cities").get("Osaka"))}; a counts ${await a.getMap("cities")
      .size()} entries`,
  );
  const owners = a.partitionSummary().owners;
  say(
    `primaries per member: ${
      Object.entries(owners).map(([id, n]) => `${a.membership.member(id)?.name} ${n}`).join(", ")
    }`,
  );

  // Stop the master. Its partitions move to b and c; b (the next oldest) becomes master.
  say("shutting down a (the master and the signaling endpoint)");
  await a.shutdown();
  nodes.shift();
  await waitFor(
    "2 members with a new master and every partition backed up",
    () =>
      [b, c].every((n) => n.membership.members().length === 2 && n.membership.master() === b.id) &&
      b.partitionSummary().replicasMissing === 0,
    60_000,
    () =>
      JSON.stringify(
        [b, c].map((n) => ({
          members: n.membership.members().map((m) => m.name),
          master: n.membership.member(n.membership.master() ?? "")?.name,
          partitions: n.partitionSummary(),
        })),
      ),
  );
  say(`members now: ${names(b)}; new master ${b.membership.member(b.membership.master()!)?.name}`);

  const all = await c.getMap<string, { country: string; population: number }>("cities").getAll(data.map(([k]) => k));
  check(all.size === data.length, `all ${data.length} entries survive (got ${all.size})`);
  for (const [k, v] of data) check(JSON.stringify(all.get(k)) === JSON.stringify(v), `entry ${k} intact`);
  check(await b.getMap("cities").size() === data.length, "size unchanged");
  say(`all ${data.length} entries survived, read back through c; size through b: ${await b.getMap("cities").size()}`);
  await cities.put("Lisbon", { country: "PT", population: 548_000 });
  say(`the cluster still takes writes: Lisbon → ${JSON.stringify(await c.getMap("cities").get("Lisbon"))}`);
  say("done");
} catch (err) {
  console.error(`local-cluster example FAILED: ${(err as Error).stack ?? err}`);
  code = 1;
} finally {
  // One at a time: a leaving member hands its partitions to the ones still running.
  for (const n of nodes.reverse()) await n.shutdown().catch(() => {});
}
process.exit(code);
