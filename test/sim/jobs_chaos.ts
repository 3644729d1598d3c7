/**
 * Seeded failover runs of the job coordinator: a map-sink job and a log-sink job run on three
 * or four members (real membership, partitioned IMaps and job services in virtual time, see
 * jobs_sim.ts) under 0, 1 or 3 % packet loss; the seed picks the members, the loss, the
 * submitting member and the fault:
 *
 * - `master`: the master (which also runs tasks) crashes once one job has written a
 *   seed-chosen number of records (0–5,899 of 6,000);
 * - `worker`: a member that is not master crashes at such a moment;
 * - `finishing`: the master crashes once a job is FINISHING or FINISHED (its last checkpoint
 *   and commit under way);
 * - `twice` (four members): the master crashes at such a moment, then, 3–6 s after the next
 *   master took over, that one too.
 *
 * With `pauses`, the fault is a pause instead (SIGSTOP, a long GC: the member's event loop
 * blocks, then it goes on from where it was): of the master (`pauseMaster`) or of another
 * member (`pauseWorker`), 1.5–8 s long, so shorter and longer than failure detection. A member
 * paused past it is declared dead, its tasks and the coordinator move on without it, and it
 * wakes to find itself out of the cluster, while its task runners and coordinator loop still
 * hold their old state.
 *
 * Checked: both jobs end FINISHED; the map sink holds exactly the 6,000 transformed records,
 * the log sink every record exactly once (no duplicate, no gap); every slot is back. What a
 * check reports is the run's problem (`problems`), so a sweep goes on past a failure.
 */
import { Random } from "../../src/core/random.ts";
import { simMapLayer, simTuning } from "./jobs_cluster.ts";
import { loadMapLayer } from "./jobs_map_layer.ts";
import { checkPairOutput, logJob, mapJob, progress, reader, status, waitEnded, waitStatus } from "./jobs_scenarios.ts";
import { JobSim } from "./jobs_sim.ts";

export type JobFault = "master" | "worker" | "finishing" | "twice" | "pauseMaster" | "pauseWorker";

export interface JobChaosRun {
  seed: number;
  /** How each job ended (FINISHED or FAILED), in submission order; empty when they did not. */
  ended: string[];
  /** Members, loss, fault and moment, for the report. */
  setup: string;
  fault: JobFault;
  problems: string[];
}

/**
 * One run (see the module's comment); `pauses`: a pause instead of a crash; `quorum`: with
 * split-brain protection (a majority of the members).
 */
export async function runJobChaos(
  seed: number,
  opts: { pauses?: boolean; quorum?: boolean } = {},
): Promise<JobChaosRun> {
  const r = new Random(seed * 7919 + 1);
  const n = r.chance(0.5) ? 3 : 4;
  const loss = [0, 0.01, 0.03][r.int(3)];
  const faults: JobFault[] = opts.pauses
    ? ["pauseMaster", "pauseWorker"]
    : n === 4
    ? ["master", "worker", "finishing", "twice"]
    : ["master", "worker", "finishing"];
  const fault = faults[r.int(faults.length)];
  const at = r.int(5900);
  const pauseMs = opts.pauses ? 1500 + r.int(6500) : 0;
  const setup = `${n} members, ${loss * 100} % loss, ${fault}${fault === "finishing" ? "" : ` after ${at} records`}` +
    (pauseMs ? ` for ${pauseMs} ms` : "") + (opts.quorum ? ", quorum" : "");
  const mapLayer = opts.quorum ? (await loadMapLayer(Math.floor(n / 2) + 1))! : simMapLayer;
  const sim = new JobSim({ seed, mapLayer, slots: 4, tuning: simTuning });
  const problems: string[] = [];
  const ended: string[] = [];
  try {
    for (let i = 0; i < n; i++) await sim.addMember();
    await sim.runUntil(async () => {
      const m = sim.master();
      // With protection a member refuses (QUORUM) until its first lease: not yet, then.
      const workers = await sim.until(reader(sim).jobs.workers().catch(() => []));
      return !!m && m.jobs.coordinator.active && workers.length === n;
    }, 30_000);
    for (const a of sim.live()) {
      for (const b of sim.live()) if (a !== b) sim.net.setLink(a.id, b.id, { packetLoss: loss });
    }
    const master = sim.master()!;
    const submitter = sim.live()[r.int(n)];
    const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
    const b = await sim.until(submitter.jobs.submit(logJob("b"), "job-b"));
    await waitStatus(sim, a, (s) => s !== "PENDING");
    if (fault === "finishing") {
      await sim.runUntil(
        async () => {
          const s = await Promise.all([a, b].map((id) => status(sim, id)));
          return s.some((x) => x?.status === "FINISHING" || x?.status === "FINISHED");
        },
        60_000,
        undefined,
        10,
      );
    } else {
      const watched = r.chance(0.5) ? a : b;
      await sim.runUntil(async () => (await progress(sim, watched)) >= at, 60_000, undefined, 10);
    }
    const victim = fault === "worker" || fault === "pauseWorker" ? sim.live().find((m) => m !== master)! : master;
    if (pauseMs) sim.stall(victim.id, pauseMs);
    else sim.crash(victim.id);
    if (fault === "twice") {
      await sim.runUntil(() => {
        const m = sim.master();
        return !!m && m.id !== victim.id && m.jobs.coordinator.active;
      }, 20_000);
      await sim.run(3000 + r.int(3000));
      sim.crash(sim.master()!.id);
    }
    const [fa, fb] = await waitEnded(sim, a, b);
    ended.push(fa.status, fb.status);
    for (const f of [fa, fb]) if (f.status !== "FINISHED") problems.push(`${f.id} ended ${f.status}: ${f.error}`);
    if (problems.length === 0) await checkPairOutput(sim, "out-a", "log-b", b);
  } catch (e) {
    problems.push((e as Error).message.split("\n").filter((l) => l.trim()).slice(0, 4).join(" "));
  } finally {
    sim.stopAll();
  }
  return { seed, setup, fault, problems, ended };
}
