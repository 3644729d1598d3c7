// A cancel for the attempt being started, arriving while the superseded attempt is still in the
// worker's tasks (an abort stops it only at its next batch), cancelled the old runner and
// returned: the new attempt then started anyway, and the cancel was never answered (found by a
// review of the cancel-while-starting fix). The worker's job map is a stub that answers the job
// entry when the test says so, to hold the start open.
import { expect, test } from "bun:test";
import { VirtualClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import { Random } from "../src/core/random.ts";
import type { ClusterView } from "../src/cluster/view.ts";
import { ConnectorRegistry } from "../src/jobs/connector_registry.ts";
import { buildPlan, planTasks } from "../src/jobs/job_plan.ts";
import type { JobEntry } from "../src/jobs/map_names.ts";
import type { JobDeployTask } from "../src/jobs/messages.ts";
import { Worker } from "../src/jobs/worker.ts";
import type { IMap } from "../src/map/imap.ts";
import type { Message } from "../src/wire/message.ts";
import { Kind } from "../src/wire/kinds.ts";

test("a cancel of attempt 2 while it starts and attempt 1 winds down: attempt 2 does not start, and the cancel is answered", async () => {
  const registry = ConnectorRegistry.withBuiltins();
  const view = {
    self: "w1",
    members: () => [{ id: "m0" }, { id: "w1" }],
    member: () => undefined,
    master: () => "m0",
    subscribe: () => () => {},
  } as unknown as ClusterView;
  const definition = registry.normalizeDefinition({
    name: "j",
    source: { type: "sequence", count: 10, ratePerSecond: 10 },
    sink: { type: "map", map: "out" },
  });
  const entry: JobEntry = { id: "j", definition, plan: buildPlan("j", definition), createdAt: 0 };
  let answerEntry: (e: JobEntry) => void = () => {};
  const getMap = (name: string) =>
    ({ get: () => name === "jobs" ? new Promise((r) => (answerEntry = r)) : new Promise(() => {}) }) as unknown as IMap<
      unknown,
      unknown
    >;
  const sent: Message[] = [];
  const worker = new Worker({
    self: "w1",
    view,
    clock: new VirtualClock(),
    rng: new Random(1),
    log: silentLogger,
    getMap,
    send: (_to, msg) => sent.push(msg),
    registry,
    slots: 4,
  });
  worker.start();
  const taskId = planTasks(entry.plan)[0].id;
  const deploy = (attempt: number): JobDeployTask => ({
    t: Kind.JobDeployTask,
    jobId: "j",
    taskId,
    attempt,
    workerId: worker.workerId,
    term: 1,
  });
  worker.onDeploy("m0", deploy(1));
  answerEntry(entry);
  await new Promise((r) => setTimeout(r, 10));
  expect(worker.running().get(taskId)).toBe(1);
  worker.onDeploy("m0", deploy(2)); // aborts attempt 1 (stops at its next batch), attempt 2 starting
  worker.onCancel("m0", { t: Kind.JobCancelTask, jobId: "j", taskId, attempt: 2, term: 1 } as never);
  answerEntry(entry);
  await new Promise((r) => setTimeout(r, 10));
  const answers = sent.filter((m) => m.t === Kind.JobTaskDone && (m as { attempt?: number }).attempt === 2);
  expect(worker.running().get(taskId)).not.toBe(2);
  expect(answers.map((m) => (m as { state?: string }).state)).toEqual(["CANCELED"]);
  worker.stop();
});
