/**
 * A work queue on Shoal: three members in one process over real WebRTC (loopback). A
 * producer on `a` offers 200 jobs to the distributed queue "work"; consumers on `b` and `c`
 * take them. Midway, `c` stops dead in the middle of a job (its loop is abandoned and the
 * member shut down without finishing it). Every job is still done exactly once:
 *
 * - a consumer records the job in the map "in-progress" (job → member) before working on it;
 * - it completes the job with `results.putIfAbsent(job, …)`: a second completion of the same
 *   job is refused, so redoing a job never counts twice; the `increment` entry processor
 *   counts completions on one key without a compare-and-set loop;
 * - a janitor re-offers the jobs in "in-progress" whose member left the cluster (the queue's
 *   redelivery rule: an item belongs to the poll that took it, so the application hands back
 *   the work of a consumer that died).
 *
 *     bun run examples/work-queue.ts
 *     deno run -A examples/work-queue.ts
 *
 * Exits 0 when every job was done exactly once, 1 otherwise.
 */
import process from "node:process"; // Deno and Bun both provide it
import { type Node, startNode } from "../mod.ts";

const secret = "work-queue-example";
const JOBS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
const say = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(4)}s] ${s}`);

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await ok())) {
    if (performance.now() > end) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/** One consumer: takes jobs until `stopped()`; `dieMidJob()` abandons the current job without finishing it. */
async function consume(node: Node, stopped: () => boolean, dieMidJob: () => boolean): Promise<number> {
  const work = node.getQueue<number>("work");
  const inProgress = node.getMap<number, string>("in-progress");
  const results = node.getMap<number, string>("results");
  const stats = node.getMap<string, number>("stats");
  let done = 0;
  let idle = 0;
  while (!stopped()) {
    const job = await work.poll({ timeoutMs: 200 });
    if (job === undefined) {
      if (dieMidJob() && ++idle > 25) return done; // told to die, but no job came for 5 s
      continue;
    }
    await inProgress.set(job, node.id);
    await sleep(5); // the work itself
    if (dieMidJob()) return done; // dies holding `job`: it stays in "in-progress"
    if ((await results.putIfAbsent(job, node.name)) === undefined) {
      await stats.executeOnKey("completed", "increment");
      done++;
    }
    await inProgress.delete(job);
  }
  return done;
}

const nodes: Node[] = [];
let code = 0;
try {
  const a = await startNode({ name: "a", secret, http: "127.0.0.1:0", logLevel: "warn" });
  nodes.push(a);
  const b = await startNode({ name: "b", secret, http: false, join: [a.httpUrl!], logLevel: "warn" });
  nodes.push(b);
  const c = await startNode({ name: "c", secret, http: false, join: [a.httpUrl!], logLevel: "warn" });
  nodes.push(c);
  await waitFor(
    "3 members and every partition backed up",
    () => nodes.every((n) => n.membership.members().length === 3) && a.partitionSummary().replicasMissing === 0,
  );
  say("cluster of 3 over WebRTC: a produces, b and c consume");

  const work = a.getQueue<number>("work");
  const producing = (async () => {
    for (let job = 0; job < JOBS; job++) if (!(await work.offer(job, { timeoutMs: 10_000 }))) throw new Error("full");
  })();

  let all = false;
  let cDies = false;
  const bDone = consume(b, () => all, () => false);
  const cDone = consume(c, () => all, () => cDies);
  const results = a.getMap<number, string>("results");
  await waitFor("a quarter of the jobs done", async () => (await results.size()) >= JOBS / 4);
  cDies = true;
  const cCount = await cDone;
  say(`c stops dead in the middle of a job after ${cCount} jobs; shutting it down`);
  await c.shutdown();
  nodes.pop();

  // The janitor: hand back the jobs of consumers that are no longer members.
  const inProgress = a.getMap<number, string>("in-progress");
  let handedBack = 0;
  const janitor = (async () => {
    while (!all) {
      const live = new Set(a.membership.members().map((m) => m.id));
      for await (const [job, owner] of inProgress.entries()) {
        if (!live.has(owner) && (await inProgress.remove(job, owner))) {
          await work.offer(job);
          handedBack++;
        }
      }
      await sleep(200);
    }
  })();

  await producing;
  await waitFor("every job done", async () => (await results.size()) === JOBS, 120_000);
  all = true;
  const bCount = await bDone;
  await janitor;
  const completed = await a.getMap<string, number>("stats").get("completed");
  say(`jobs handed back by the janitor: ${handedBack}`);
  say(`done by b ${bCount}, by c ${cCount}; results ${await results.size()}, completions counted ${completed}`);
  if (completed !== JOBS || bCount + cCount !== JOBS) throw new Error("a job was lost or done twice");
  say(`every one of ${JOBS} jobs done exactly once`);
  say("done");
} catch (err) {
  console.error(`work-queue example FAILED: ${(err as Error).stack ?? err}`);
  code = 1;
} finally {
  for (const n of nodes.reverse()) await n.shutdown().catch(() => {});
}
process.exit(code);
