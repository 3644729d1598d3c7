/**
 * Job failover end to end with real processes: three members (child processes of the
 * runtime running this script, the first one bootstrapping the cluster with its embedded
 * signaling endpoint), two jobs of 6,000 records each — one writing into a map (idempotent
 * sink), one appending to a log (two-phase sink, committed at checkpoints) — and a
 * `kill -9` of the master while both run. Prints the timeline as seen from a survivor and
 * checks the output: the map holds exactly the 6,000 right records, the log holds each
 * record exactly once (no duplicate, no gap).
 *
 *     bun run examples/job-failover.ts
 *     deno run -A examples/job-failover.ts
 *
 * Exits 0 when every check held, 1 otherwise. Everything goes through the REST API of the
 * members, so the same steps work with curl against any Shoal cluster.
 */
import { fetchJson } from "../src/runtime/fetch_json.ts";
import { exit } from "../src/runtime/process.ts";
import { type ChildHandle, runtimeScriptCommand, spawnChild } from "../src/runtime/spawn.ts";
import { waitUntil } from "../src/runtime/wait_until.ts";

const records = 6000;
const valueOf = (id: number) => (id * 7919) % 1_000_003; // the `sequence` source's value of record `id`
const root = new URL("..", import.meta.url).pathname;
const secret = `failover-${Math.random().toString(36).slice(2)}`;
const t0 = performance.now();
const say = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long each step may take; a request failing meanwhile (a member busy failing over) is retried. */
const patient = { timeoutMs: 90_000, everyMs: 150 };

interface Member {
  name: string;
  id: string;
  url: string;
  child: ChildHandle;
  stderr: string[];
}
const members: Member[] = [];
const children: ChildHandle[] = [];

/** Starts `mod.ts node …` under this runtime and waits for its ready line. */
async function startMember(name: string, join?: string): Promise<Member> {
  const stderr: string[] = [];
  let onReady!: (line: { member: string; http: string }) => void;
  const ready = new Promise<{ member: string; http: string }>((r) => (onReady = r));
  const args = [
    "node",
    "--name",
    name,
    "--secret",
    secret,
    "--http",
    "127.0.0.1:0",
    "--log-level",
    "warn",
    ...(join ? ["--join", join] : []),
  ];
  const child = spawnChild([...runtimeScriptCommand(`${root}mod.ts`), ...args], {
    cwd: root,
    onStdoutLine: (l) => l.includes('"event":"ready"') && onReady(JSON.parse(l)),
    onStderrLine: (l) => stderr.push(l) > 100 && stderr.shift(),
  });
  children.push(child);
  const exited = child.exited.then((code) => {
    throw new Error(`${name} exited (${code}) before it was ready:\n${stderr.slice(-20).join("\n")}`);
  });
  const r = await Promise.race([
    ready,
    exited,
    sleep(90_000).then(() => Promise.reject(new Error(`${name}: no ready line in 90 s`))),
  ]);
  const m = { name, id: r.member, url: r.http, child, stderr };
  members.push(m);
  return m;
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

type Job = {
  id: string;
  status: string;
  error?: string;
  tasks: { id: string; state: string; worker: string | null; attempt: number; recordsWritten: number }[];
};

let code = 0;
try {
  // 1. A cluster of three: the first member serves the signaling endpoint, the others join it.
  const a = await startMember("m1");
  say(`m1 bootstrapped the cluster at ${a.url}`);
  await Promise.all([startMember("m2", a.url), startMember("m3", a.url)]);
  const nameOf = (id: string | null) => members.find((m) => m.id === id)?.name ?? String(id);
  const formed = await waitUntil(async () => {
    const v = await fetchJson(`${a.url}/cluster`);
    return v.members.length === 3 && v.partitions.replicasMissing === 0 ? v : undefined;
  }, { ...patient, what: "3 members, every partition backed up" });
  const master = members.find((m) => m.id === formed.master)!;
  const survivor = members.find((m) => m !== master)!;
  say(
    `cluster: ${
      members.map((m) => m.name).join(", ")
    }; master (and job coordinator) ${master.name}; watching from ${survivor.name}`,
  );

  // 2. Two jobs, submitted to a member that is not the master (any member accepts them).
  const submit = async (sink: { type: string; map: string }) =>
    (await fetchJson<{ id: string }>(`${survivor.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: `sequence → ${sink.type}`,
        source: { type: "sequence", count: records, parallelism: 3, ratePerSecond: 1000 },
        sink,
        checkpointIntervalMs: 500,
      }),
    })).id;
  const jobs = {
    map: await submit({ type: "map", map: "failover-out" }),
    log: await submit({ type: "log", map: "failover-log" }),
  };
  say(`submitted job ${jobs.map} (map sink → "failover-out") and ${jobs.log} (log sink → "failover-log")`);

  // 3. Once both are a third done, kill -9 the master.
  const written = (j: Job) => j.tasks.reduce((s, t) => s + t.recordsWritten, 0);
  const before = await waitUntil(async () => {
    const js = await Promise.all([jobs.map, jobs.log].map((id) => fetchJson<Job>(`${survivor.url}/jobs/${id}`)));
    for (const j of js) {
      if (["FINISHED", "FAILED", "CANCELED"].includes(j.status)) {
        throw new Error(`job ${j.id} ended ${j.status} too early`);
      }
    }
    return js.every((j) => written(j) >= records / 3 && j.tasks.every((t) => t.worker)) ? js : undefined;
  }, { ...patient, what: "both jobs a third done" });
  for (const j of before) {
    say(
      `job ${j.id} ${j.status}: ${written(j)} records; tasks ${
        j.tasks.map((t) => `${t.id.split("/").pop()}@${nameOf(t.worker)}#${t.attempt}`).join(" ")
      }`,
    );
  }
  const killedAt = performance.now();
  master.child.kill("SIGKILL");
  say(`kill -9 ${master.name} (pid ${master.child.pid}), the master`);

  // 4. Timeline from the survivor: master change, task restarts, job states.
  const since = () => `${Math.round(performance.now() - killedAt)} ms after the kill`;
  const newMaster = await waitUntil(async () => {
    const v = await fetchJson(`${survivor.url}/cluster`);
    return v.master && v.master !== master.id ? v.master as string : undefined;
  }, { what: "a new master", timeoutMs: 30_000, everyMs: 50 });
  say(`new master ${nameOf(newMaster)} ${since()}; it restores both jobs from the job maps`);
  const seen = new Map<string, string>();
  const finals = await waitUntil(async () => {
    const js = await Promise.all([jobs.map, jobs.log].map((id) => fetchJson<Job>(`${survivor.url}/jobs/${id}`)));
    for (const j of js) {
      for (const t of j.tasks) {
        const b = before.find((x) => x.id === j.id)!.tasks.find((x) => x.id === t.id)!;
        const key = `${t.id}#${t.attempt}`;
        if (t.attempt !== b.attempt && t.worker && !seen.has(key)) {
          seen.set(key, "");
          say(
            `task ${t.id} restarted on ${
              nameOf(t.worker)
            } from its last checkpoint (attempt ${b.attempt} → ${t.attempt}; it ran on ${nameOf(b.worker)})`,
          );
        }
      }
      if (seen.get(j.id) !== j.status) {
        seen.set(j.id, j.status);
        say(`job ${j.id} ${j.status} (${since()})`);
      }
      if (j.status === "FAILED" || j.status === "CANCELED") {
        throw new Error(`job ${j.id} ended ${j.status}: ${j.error}`);
      }
    }
    return js.every((j) => j.status === "FINISHED") ? js : undefined;
  }, { ...patient, what: "both jobs FINISHED" });
  for (const j of finals) {
    for (const t of j.tasks) {
      const b = before.find((x) => x.id === j.id)!.tasks.find((x) => x.id === t.id)!;
      // Only the dead worker's tasks should need a restart; the output check below is what decides.
      if (b.worker !== master.id && t.attempt !== b.attempt) {
        say(
          `note: task ${t.id} on surviving ${nameOf(b.worker)} was restarted too (attempt ${b.attempt} → ${t.attempt})`,
        );
      }
    }
  }

  // 5. Exact output.
  const others = members.filter((m) => m !== master);
  const sizeOut = (await fetchJson(`${survivor.url}/maps/failover-out`)).size;
  check(sizeOut === records, `map sink holds ${records} records (has ${sizeOut})`);
  let wrong = 0;
  for (let i = 0; i < records; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, records - i) }, async (_, k) => {
      const id = i + k;
      const r = await fetchJson(`${others[id % 2].url}/maps/failover-out/${id}`);
      if (r.value?.id !== id || r.value?.value !== valueOf(id)) wrong++;
    }));
  }
  check(wrong === 0, `${wrong} records of the map sink are wrong`);
  say(`map sink: exactly ${records} records in "failover-out", each with the right value`);
  const logTasks = finals.find((j) => j.id === jobs.log)!.tasks;
  const ids: number[] = [];
  for (const t of logTasks) {
    const list = (await fetchJson(`${survivor.url}/maps/failover-log/${encodeURIComponent(t.id)}`)).value as {
      entries: { id: number; value: number }[];
    };
    for (const e of list.entries) {
      check(e.value === valueOf(e.id), `log entry ${e.id} has the right value`);
      ids.push(e.id);
    }
  }
  const unique = new Set(ids);
  check(unique.size === ids.length, `${ids.length - unique.size} duplicate entries in the log sink`);
  check(
    unique.size === records && ids.every((id) => id >= 0 && id < records),
    `log sink has ${unique.size} of ${records} records`,
  );
  say(
    `log sink: ${ids.length} entries over ${logTasks.length} task lists — every record exactly once, no duplicate, no gap`,
  );
  say("done: the master died mid-job and both jobs finished with exact output");
} catch (err) {
  console.error(`job-failover example FAILED: ${(err as Error).message ?? err}`);
  for (const m of members) {
    if (m.stderr.length) console.error(`--- ${m.name} stderr (last lines):\n${m.stderr.slice(-15).join("\n")}`);
  }
  code = 1;
} finally {
  for (const c of children) c.kill("SIGKILL");
  await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(3_000)]);
}
exit(code);
