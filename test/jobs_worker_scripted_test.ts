/**
 * A worker (worker.ts) against a scripted member view and job map, so the order of the events is
 * exact:
 * - its member dropped from the master's list and listed again: it stops its tasks, comes back
 *   under a new worker id and says hello again; a deploy for the old id that was still starting
 *   (reading the job's entry) when that happened does not start;
 * - a cancel for the attempt being started while the superseded attempt is still in its tasks (an
 *   abort stops it only at its next batch) cancelled the old runner and returned: the new attempt
 *   then started anyway, and the cancel was never answered (found by a review of the
 *   cancel-while-starting fix).
 */
import { expect, test } from "bun:test";
import { VirtualClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import { Random } from "../src/core/random.ts";
import type { ClusterEvent, ClusterView } from "../src/cluster/view.ts";
import { ConnectorRegistry } from "../src/jobs/connector_registry.ts";
import { buildPlan, planTasks } from "../src/jobs/job_plan.ts";
import type { JobEntry } from "../src/jobs/map_names.ts";
import type { JobDeployTask } from "../src/jobs/messages.ts";
import { Worker } from "../src/jobs/worker.ts";
import type { IMap } from "../src/map/imap.ts";
import type { Message } from "../src/wire/message.ts";
import { Kind } from "../src/wire/kinds.ts";

const registry = ConnectorRegistry.withBuiltins();
/** The worker ids of the hellos sent. */
const hellos = (sent: Message[]) =>
  sent.filter((m) => m.t === Kind.JobWorkerHello).map((m) => (m as unknown as { workerId: string }).workerId);

function scripted() {
  let listed = true;
  const listeners = new Set<(e: ClusterEvent) => void>();
  const view = {
    self: "w1",
    members: () => (listed ? [{ id: "m0" }, { id: "w1" }] : [{ id: "m0" }]),
    member: () => undefined,
    master: () => "m0",
    subscribe: (l: (e: ClusterEvent) => void) => (listeners.add(l), () => listeners.delete(l)),
  } as unknown as ClusterView;
  const setListed = (v: boolean) => {
    listed = v;
    for (const l of listeners) l({ type: "memberListChanged", version: v ? 3 : 2 });
  };
  const definition = registry.normalizeDefinition({
    name: "j",
    source: { type: "sequence", count: 10, ratePerSecond: 10 },
    sink: { type: "map", map: "out" },
  });
  const entry: JobEntry = { id: "j", definition, plan: buildPlan("j", definition), createdAt: 0 };
  let answerEntry: (e: JobEntry) => void = () => {};
  const getMap = (name: string) =>
    ({
      get: () => name === "jobs" ? new Promise((r) => (answerEntry = r)) : new Promise(() => {}),
    }) as unknown as IMap<unknown, unknown>;
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
  const taskId = planTasks(entry.plan)[0].id;
  const deploy = (workerId: string, attempt = 1): JobDeployTask => ({
    t: Kind.JobDeployTask,
    jobId: "j",
    taskId,
    attempt,
    workerId,
    term: 1,
  });
  return { worker, setListed, sent, deploy, taskId, answerEntry: () => answerEntry(entry) };
}

test("dropped from the member list and listed again: a new worker id, hello again", () => {
  const { worker, setListed, sent } = scripted();
  worker.start();
  const first = worker.workerId;
  expect(hellos(sent)).toEqual([first]);
  worker.onHelloAck("m0", { t: Kind.JobWorkerHelloAck, workerId: first, term: 1 });
  setListed(false);
  setListed(true);
  expect(worker.workerId).not.toBe(first);
  expect(hellos(sent)).toEqual([first, worker.workerId]);
  worker.stop();
});

test("a deploy still starting when the member was dropped and listed again does not start", async () => {
  const { worker, setListed, sent, deploy, answerEntry } = scripted();
  worker.start();
  const first = worker.workerId;
  worker.onDeploy("m0", deploy(first));
  setListed(false);
  setListed(true);
  answerEntry(); // the job's entry arrives only now
  await new Promise((r) => setTimeout(r, 10));
  expect(worker.running().size).toBe(0);
  const acks = sent.filter((m) => m.t === Kind.JobDeployAck) as unknown as Array<{ ok: boolean }>;
  expect(acks.map((a) => a.ok)).toEqual([false]);
  worker.stop();
});

test("a cancel of attempt 2 while it starts and attempt 1 winds down: attempt 2 does not start, and the cancel is answered", async () => {
  const { worker, sent, deploy, taskId, answerEntry } = scripted();
  worker.start();
  worker.onDeploy("m0", deploy(worker.workerId, 1));
  answerEntry();
  await new Promise((r) => setTimeout(r, 10));
  expect(worker.running().get(taskId)).toBe(1);
  worker.onDeploy("m0", deploy(worker.workerId, 2)); // aborts attempt 1 (stops at its next batch), attempt 2 starting
  worker.onCancel("m0", { t: Kind.JobCancelTask, jobId: "j", taskId, attempt: 2, term: 1 } as never);
  answerEntry();
  await new Promise((r) => setTimeout(r, 10));
  const answers = sent.filter((m) => m.t === Kind.JobTaskDone && (m as { attempt?: number }).attempt === 2);
  expect(worker.running().get(taskId)).not.toBe(2);
  expect(answers.map((m) => (m as { state?: string }).state)).toEqual(["CANCELED"]);
  worker.stop();
});
