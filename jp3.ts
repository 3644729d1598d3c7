import { runJobChaos } from "./test/sim/jobs_chaos.ts";
import { reader, status } from "./test/sim/jobs_scenarios.ts";
import { JobSim } from "./test/sim/jobs_sim.ts";
const orig = JobSim.prototype.stopAll;
JobSim.prototype.stopAll = function (this: JobSim) {
  const sim = this;
  const p = (async () => {
    console.log("live", sim.live().map((m) => `${m.id} members=${m.membership.members().map((x) => x.id).join(",")} master=${m.membership.master()} coord=${m.jobs.coordinator.active}`).join(" | "));
    for (const id of ["job-a", "job-b"]) {
      const s = await sim.until(reader(sim).jobs.get(id)).catch((e) => String(e));
      console.log(id, JSON.stringify(s && typeof s === "object" ? { st: (s as any).status, tasks: (s as any).tasks.map((t: any) => [t.id.slice(-6), t.state, t.worker, t.attempt, t.recordsWritten]) } : s));
    }
    const ws = await sim.until(reader(sim).jobs.workers());
    console.log("workers", JSON.stringify(ws.map((w) => ({ m: w.member, free: w.free, total: w.total, tasks: w.tasks }))));
  })();
  return p.finally(() => orig.call(sim)) as unknown as void;
};
const r = await runJobChaos(Number(process.argv[2]), { pauses: true });
console.log(r.setup, r.problems);
await new Promise((r) => setTimeout(r, 3000));
process.exit(0);
