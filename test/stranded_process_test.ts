/**
 * No member stranded when its seed dies (issue 11), on real member processes: four members
 * (Bun, Deno, Bun, Deno) join through member a's signaling endpoint (c through b's, so that
 * d's seed is a more often). The moment all four
 * list each other, a is frozen (SIGSTOP): d, the last joiner, is then still opening its links
 * to b and c, signalled through a, and those attempts hang as they do when a dies in the
 * middle of relaying them. A run in which d already had a link to b or c is not the scenario:
 * it is stopped there and another is started (at most 30 runs in all). 0–2 s later a is killed (SIGKILL), which also closes
 * its signaling endpoint. d must give up the attempts through a and reach b and c through
 * their own endpoints (their URLs are in the member list), so the three survivors agree on
 * the new master and are linked to each other (directly or relayed). Five runs; the time
 * from the kill (and from the freeze) to that state is printed and held to the issue's
 * target, 3 s from the kill, in every one of the five (see the assertion; the simulator
 * holds every one of its seeds to it, test/sim/cluster_stranded_test.ts).
 * d also suspects a alone while frozen, its local health low (its only link is to a): the
 * others' messages, following the new master, confirm its suspicion.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { fetchJson } from "../src/runtime/fetch_json.ts";
import { killAll, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(() => killAll());

/** STRANDED_LOG=debug prints the survivors' link and signaling logs of each run. */
const LOG = process.env.STRANDED_LOG ?? "info";
/** The issue's target from the kill to agreement and full links; slower runs print the survivors' logs. */
const TARGET_MS = 3_000;
/**
 * A joiner picks its seed at random among the members registered at the join URL's server
 * (a, b), so its only link is to a in about half of the runs: runs are tried this many times
 * at most, in turn over the kill delays, to get five.
 */
const ATTEMPTS = 30;
const RUNS = 5;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface View {
  master: string;
  members: Array<{ id: string; urls?: string[] }>;
  links: Array<{ peer: string; kind: string }>;
}

const view = (url: string) => fetchJson<View>(`${url}/cluster`, {}, 5_000).catch(() => null);

interface RunResult {
  /** d had a link to neither b nor c when a froze (the scenario); otherwise the run does not count. */
  stranded: boolean;
  fromKillMs: number;
  fromFreezeMs: number;
}

async function run(killAfterMs: number): Promise<RunResult> {
  const secret = `stranded-${Date.now()}`;
  const a = await startMember({ name: "sa", runtime: "bun", secret });
  // c joins through b's endpoint, so only a and b are registered at a's server and d's seed
  // is a in about half of the runs (a third if c were registered there too).
  const b = await startMember({ name: "sb", runtime: "deno", join: a.url, secret, env: { SHOAL_LOG_LEVEL: LOG } });
  const c = await startMember({ name: "sc", runtime: "bun", join: b.url, secret, env: { SHOAL_LOG_LEVEL: LOG } });
  await until(
    async () => {
      const vs = await Promise.all([a, b, c].map((m) => view(m.url)));
      return vs.every((v) => v && v.members.length === 3 && v.links.length === 2) ? true : undefined;
    },
    60_000,
    "a, b and c list and reach each other",
  );
  // d's ready line waits for its links: watch the member lists instead.
  const dStarted = startMember({
    name: "sd",
    runtime: "deno",
    join: a.url,
    secret,
    env: { SHOAL_LOG_LEVEL: LOG },
  });
  dStarted.catch(() => {});
  let dUrl = "";
  let dId = "";
  await until(
    async () => {
      const va = await view(a.url);
      const d = va?.members.find((m) => ![a.id, b.id, c.id].includes(m.id));
      if (!d?.urls?.[0]) return undefined;
      [dId, dUrl] = [d.id, d.urls[0]];
      const vs = await Promise.all([b.url, c.url, dUrl].map(view));
      return vs.every((v) => v?.members.length === 4) ? true : undefined;
    },
    60_000,
    "all four list each other",
    5,
  );
  a.child.kill("SIGSTOP");
  const frozenAt = performance.now();
  const dView = await view(dUrl);
  const stranded = !!dView && !dView.links.some((l) => (l.peer === b.id || l.peer === c.id) && l.kind === "direct");
  if (!stranded) {
    // Not the scenario: stop here rather than spend the kill and the wait on it.
    killAll();
    return { stranded, fromKillMs: NaN, fromFreezeMs: NaN };
  }
  await sleep(killAfterMs);
  a.kill9();
  const killedAt = performance.now();
  const survivors = [b.url, c.url, dUrl];
  const ids = [b.id, c.id, dId].sort().join(",");
  await until(
    async () => {
      const vs = await Promise.all(survivors.map(view));
      const agree = vs.every((v) =>
        v && v.master === vs[0]!.master && v.members.map((m) => m.id).sort().join(",") === ids &&
        v.links.length === 2
      );
      return agree ? true : undefined;
    },
    60_000,
    "survivors agree and are linked to each other",
  ).catch(async (e) => {
    for (const url of survivors) console.log(`${url}: ${JSON.stringify(await view(url)).slice(0, 500)}`);
    const d = await dStarted.catch(() => null);
    const log = (d?.stderr() ?? "").split("\n").filter((l) => /signaling|link|split|merge|member\.dead/.test(l));
    console.log(log.slice(-30).map((l) => l.slice(0, 300)).join("\n"));
    throw e;
  });
  const now = performance.now();
  if (LOG === "debug" || now - killedAt > TARGET_MS) {
    const d = await dStarted.catch(() => null);
    const t0 = Date.now() - (now - killedAt);
    console.log(`kill at ${new Date(t0).toISOString()}, ${(now - killedAt).toFixed(0)} ms`);
    for (const m of [b, c, d]) {
      const log = (m?.stderr() ?? "").split("\n").filter((l) =>
        /signaling|path_lost|link|member\.dead|suspect|master\.changed|list|transport|endpoint|probe\.failed/.test(l) &&
        !/frame|flush/.test(l)
      );
      console.log(log.slice(LOG === "debug" ? -400 : -60).map((l) => l.slice(0, 300)).join("\n"));
    }
  }
  killAll();
  return { stranded, fromKillMs: now - killedAt, fromFreezeMs: now - frozenAt };
}

describe("stranded joiner: a killed right after four members list each other, while d links only to a", () => {
  test("5 runs (kill 0, 0.5, 1, 1.5, 2 s after the freeze): survivors agree and are fully linked", async () => {
    const counted: RunResult[] = [];
    const skipped: RunResult[] = [];
    const delays = (process.env.STRANDED_KILL_AFTER ?? "0,500,1000,1500,2000").split(",").map(Number);
    for (let attempt = 0; attempt < ATTEMPTS && counted.length < RUNS; attempt++) {
      // The next kill delay not yet covered by a counted run.
      const r = await run(delays[counted.length % delays.length]);
      (r.stranded ? counted : skipped).push(r);
    }
    const fmt = (rs: RunResult[], k: "fromKillMs" | "fromFreezeMs") => rs.map((r) => r[k].toFixed(0)).join(", ");
    console.log(
      `stranded joiner: agreed and fully linked ${fmt(counted, "fromKillMs")} ms after the kill ` +
        `(${fmt(counted, "fromFreezeMs")} ms after the freeze); ${skipped.length} runs skipped, where d was ` +
        `linked to b or c before the freeze`,
    );
    expect(counted.length).toBe(RUNS);
    // The issue's target: 3 s from the kill on every run (runs beyond it print the survivors'
    // logs above). Before: 99 of 100 looped runs at load 5-18 were within 3 s; one took 12.0 s
    // (and one 11.2 s in 30 more): a false dead verdict during formation left the link between
    // two survivors open at one end only, and the older end waited 12 s before opening it. Now
    // an end that closed a link opens it again at once (links.ts), and the members connected to
    // a killed member's signaling endpoint probe it as soon as the endpoint closes: 115 looped
    // runs at load 4-13 were all within 3 s (max 2.5 s; killed at the freeze, 2.0-2.5 s after
    // the kill, where 2.1-2.8 s before). One earlier run took 17.0 s at load 9 (c declared d
    // dead 3.4 s after the kill, logs at info level, cause not found); no run of these 145
    // looped ones with debug logs (30 before the fixes, 115 after) did so.
    for (const r of counted) expect(r.fromKillMs).toBeLessThanOrEqual(TARGET_MS);
  }, 900_000);
});
