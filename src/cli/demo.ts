/**
 * `mod.ts demo`: the master-failover story on one machine, with nothing to set up. Starts
 * a standalone signaling server and three member processes of the runtime running the
 * demo, loads a map over REST, submits a sequence → map job, `kill -9`s the master while
 * the job runs, narrates the failover (new master, promoted partitions, replicas restored,
 * tasks restarted) and checks the outcome: the output map holds exactly the job's records
 * with the right values, and the preloaded map is intact. Exit codes: 0 when every check
 * passed, 1 when one failed (the reason and the members' last log lines go to stderr),
 * 2 for usage errors, 130 when interrupted. Every child is killed before the demo ends.
 */
import { sequenceValue } from "../jobs/source_sequence.ts";
import { fetchJson, HttpStatusError } from "../runtime/fetch_json.ts";
import { permissionHint } from "../runtime/permissions.ts";
import { exit } from "../runtime/process.ts";
import { type ChildHandle, runtimeScriptCommand, spawnChild } from "../runtime/spawn.ts";
import { type FlagSpec, formatFlagHelp, parseFlags } from "./flags.ts";
import type { Command } from "./command.ts";
import { onStopSignal, processEnv, runtimeName, writeStdoutLine } from "./process_io.ts";

/** The demo's flags, in `--help` order. */
export const demoFlags: readonly FlagSpec[] = [
  {
    name: "entries",
    kind: "int",
    min: 1,
    max: 100_000,
    noEnv: true,
    description: 'entries preloaded into the map "inventory"',
    defaultText: "1000",
  },
  {
    name: "records",
    kind: "int",
    min: 100,
    max: 1_000_000,
    noEnv: true,
    description: 'records the job writes into the map "out"',
    defaultText: "6000",
  },
  {
    name: "rate",
    kind: "int",
    min: 10,
    max: 1_000_000,
    noEnv: true,
    description: "job source rate, records per second (whole job)",
    defaultText: "1000",
  },
  {
    name: "timeout",
    kind: "int",
    min: 10,
    max: 3600,
    noEnv: true,
    description: "give up (and fail) after this many seconds",
    defaultText: "150",
  },
];

/** `--help` text of the demo. */
export function demoHelp(): string {
  return [
    "Usage: mod.ts demo [flags]",
    "",
    "Runs the failover demo on this machine: a signaling server and three members (processes",
    "of this same runtime), a preloaded map, and a 6,000-record job (parallelism 3, map sink,",
    "checkpoints every 500 ms). While the job runs the master is killed with SIGKILL; the demo",
    "narrates the failover and checks that the job's output is exact and the map intact.",
    "Prints a dashboard URL to watch it live. Exits 0 only if every check passed.",
    "",
    "Flags:",
    formatFlagHelp(demoFlags),
    "  --help       show this help",
    "",
    "Examples:",
    "  bun run mod.ts demo",
    "  deno run -A mod.ts demo --records 12000 --rate 2000",
  ].join("\n");
}

/** A check of the demo did not hold; the message says which. */
export class DemoFailure extends Error {
  override name = "DemoFailure";
}

/** Most stderr lines kept per child for the failure report. */
const keptStderrLines = 200;

interface Child {
  name: string;
  handle: ChildHandle;
  stderr: string[];
  /** Set when the demo kills it on purpose, so its exit is not a failure. */
  expectedExit: boolean;
  ready: Promise<Record<string, unknown>>;
}

interface ClusterBody {
  self: string;
  master: string | null;
  epoch: number;
  members: Array<{ id: string; name: string; runtime: string }>;
  partitions: { count: number; owners: Record<string, number>; replicasMissing: number; migrating: number };
}

interface SnapshotBody {
  table: { ids: string[]; replicas: number[][] };
}

interface JobBody {
  id: string;
  status: string;
  tasks: Array<{ id: string; state: string; worker: string | null; attempt: number; recordsWritten: number }>;
  metrics?: { recordsRead: number; recordsWritten: number };
  error?: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const fmt = (n: number) => n.toLocaleString("en-US");
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One run of the demo: its children, clock and narration. */
class DemoRun {
  readonly children: Child[] = [];
  readonly t0 = performance.now();
  readonly deadline: number;
  readonly secret = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  readonly modPath = new URL("../../mod.ts", import.meta.url).pathname;
  readonly root = new URL("../..", import.meta.url).pathname;
  readonly headers: Record<string, string> = {};
  /** First unexpected child exit; checked by every wait. */
  unexpectedExit: string | undefined;

  constructor(readonly opts: { entries: number; records: number; rate: number; timeoutMs: number }) {
    this.deadline = this.t0 + opts.timeoutMs;
    const token = processEnv().SHOAL_TOKEN;
    if (token) this.headers.authorization = `Bearer ${token}`;
  }

  say(text: string): void {
    const t = ((performance.now() - this.t0) / 1000).toFixed(1).padStart(5);
    writeStdoutLine(`[${t}s] ${text}`);
  }

  /** Starts `mod.ts <args>` under this runtime; resolves `ready` with its ready line. */
  spawn(name: string, args: string[], env?: Record<string, string>): Child {
    let resolveReady!: (v: Record<string, unknown>) => void;
    let rejectReady!: (e: Error) => void;
    const ready = new Promise<Record<string, unknown>>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {});
    const stderr: string[] = [];
    const handle = spawnChild([...runtimeScriptCommand(this.modPath), ...args], {
      cwd: this.root,
      ...(env ? { env } : {}),
      onStdoutLine: (line) => {
        if (!line.includes('"event":"ready"')) return;
        try {
          resolveReady(JSON.parse(line));
        } catch {
          // Not the JSON line; keep waiting.
        }
      },
      onStderrLine: (line) => {
        stderr.push(line);
        if (stderr.length > keptStderrLines) stderr.shift();
      },
    });
    const child: Child = { name, handle, stderr, expectedExit: false, ready };
    this.children.push(child);
    void handle.exited.then((code) => {
      rejectReady(new DemoFailure(`${name} exited with code ${code} before it was ready`));
      if (!child.expectedExit) this.unexpectedExit ??= `${name} exited unexpectedly with code ${code}`;
    });
    return child;
  }

  check(): void {
    if (this.unexpectedExit) throw new DemoFailure(this.unexpectedExit);
    if (performance.now() > this.deadline) {
      throw new DemoFailure(`the demo did not finish within ${secs(this.opts.timeoutMs)}`);
    }
  }

  /** Polls `f` every `intervalMs` until it returns a value, checking children and the deadline. */
  async until<T>(what: string, f: () => Promise<T | undefined>, intervalMs = 100, timeoutMs = 30_000): Promise<T> {
    const end = Math.min(this.deadline, performance.now() + timeoutMs);
    let last: unknown;
    for (;;) {
      this.check();
      try {
        const v = await f();
        if (v !== undefined) return v;
      } catch (err) {
        if (err instanceof DemoFailure) throw err;
        last = err;
      }
      if (performance.now() > end) {
        throw new DemoFailure(
          `${what}: not reached within ${secs(timeoutMs)}${
            last ? ` (last error: ${(last as Error).message ?? last})` : ""
          }`,
        );
      }
      await sleep(intervalMs);
    }
  }

  async readyOf(child: Child, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new DemoFailure(`${child.name} printed no ready line within ${secs(timeoutMs)}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([child.ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  json<T>(url: string, init: RequestInit = {}): Promise<T> {
    return fetchJson<T>(url, { ...init, headers: { ...this.headers, ...(init.headers ?? {}) } });
  }

  /** Kills every child that is still running and waits (briefly) for them to end. */
  async cleanup(): Promise<void> {
    for (const c of this.children) {
      c.expectedExit = true;
      c.handle.kill("SIGKILL");
    }
    await Promise.race([Promise.all(this.children.map((c) => c.handle.exited)), sleep(3_000)]);
  }

  /** The last log lines of every child, for a failure report. */
  stderrReport(lines = 25): string {
    return this.children
      .filter((c) => c.stderr.length > 0)
      .map((c) => `--- last stderr lines of ${c.name}:\n${c.stderr.slice(-lines).join("\n")}`)
      .join("\n");
  }
}

/** Runs `worker` over `items` with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await worker(items[next++]);
    }),
  );
}

/** Retries a REST call a few times: during a failover a member may answer 503 briefly. */
async function retrying<T>(f: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(200);
    }
  }
}

function inventoryValue(i: number): { sku: string; stock: number } {
  return { sku: `sku-${i}`, stock: (i * 37) % 500 };
}

async function runDemo(run: DemoRun): Promise<void> {
  const { entries, records, rate } = run.opts;
  const rt = runtimeName();
  writeStdoutLine(`Shoal demo on ${rt}: a signaling server and 3 members on 127.0.0.1, master killed mid-job`);

  // 1. Signaling server and members.
  const signal = run.spawn("signal", ["signal", "--http", "127.0.0.1:0", "--log-level", "warn"]);
  const signalUrl = String((await run.readyOf(signal)).url);
  run.say(`signaling server listening on ${signalUrl}`);
  const memberArgs = (
    name: string,
  ) => [
    "node",
    "--name",
    name,
    "--http",
    "127.0.0.1:0",
    "--join",
    signalUrl,
    "--log-level",
    "warn",
  ];
  const names = ["demo-1", "demo-2", "demo-3"];
  const members: Array<{ name: string; child: Child; id: string; url: string }> = [];
  // The first member starts alone so it is the oldest, hence the master.
  for (const group of [[names[0]], names.slice(1)]) {
    // The secret by the environment, not the command line (where `ps` shows it to every user).
    const started = group.map((name) => run.spawn(name, memberArgs(name), { SHOAL_SECRET: run.secret }));
    const readies = await Promise.all(started.map((c) => run.readyOf(c)));
    readies.forEach((r, i) => {
      members.push({ name: group[i], child: started[i], id: String(r.member), url: String(r.http) });
      run.say(`member ${group[i]} (${String(r.member).slice(0, 8)}, ${rt}) ready at ${r.http}`);
    });
  }
  const byId = (id: string | null | undefined) => members.find((m) => m.id === id);
  const label = (id: string | null | undefined) => byId(id)?.name ?? String(id).slice(0, 8);

  const formed = await run.until(
    "cluster of 3 with every partition fully replicated",
    async () => {
      const views = await Promise.all(members.map((m) => run.json<ClusterBody>(m.url + "/cluster")));
      const ok = views.every((v) =>
        v.members.length === 3 && v.master === views[0].master && v.partitions.replicasMissing === 0 &&
        v.partitions.migrating === 0
      );
      return ok ? views[0] : undefined;
    },
    200,
    60_000,
  );
  const master = byId(formed.master);
  if (!master) throw new DemoFailure(`the master ${formed.master} is not one of the demo's members`);
  const owners = Object.entries(formed.partitions.owners).map(([id, n]) => `${label(id)} ${n}`).join(", ");
  run.say(
    `cluster formed: 3 members, master ${master.name}, ${formed.partitions.count} partitions (primaries: ${owners}), every partition has its backup`,
  );
  const watcher = members.find((m) => m !== master)!;
  const others = members.filter((m) => m !== master);
  run.say(`dashboard: ${watcher.url}/  (on ${watcher.name}, which survives the kill; open it to watch the failover)`);

  // 2. Preload a map over REST, spread over all members.
  const keys = Array.from({ length: entries }, (_, i) => i);
  const loadStart = performance.now();
  await pool(keys, 32, async (i) => {
    const m = members[i % members.length];
    await retrying(
      () =>
        run.json(`${m.url}/maps/inventory/${i}`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(inventoryValue(i)),
        }),
      5,
    );
  });
  run.say(`loaded ${fmt(entries)} entries into map "inventory" over REST in ${secs(performance.now() - loadStart)}`);

  // 3. Submit the job.
  const jobId = `demo-${run.secret.slice(0, 8)}`;
  const definition = {
    id: jobId,
    name: "sequence → map (demo)",
    source: { type: "sequence", count: records, parallelism: 3, ratePerSecond: rate },
    sink: { type: "map", map: "out" },
    checkpointIntervalMs: 500,
  };
  // The id is ours, so a retried submit is applied once.
  await retrying(
    () =>
      run.json(`${watcher.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(definition),
      }),
    5,
  );
  const jobStart = performance.now();
  run.say(
    `submitted job ${jobId}: sequence of ${fmt(records)} records, parallelism 3, ${
      fmt(rate)
    } records/s → map "out", checkpoint every 500 ms`,
  );

  const jobUrl = (m: { url: string }) => `${m.url}/jobs/${jobId}`;
  const written = (j: JobBody) => j.metrics?.recordsWritten ?? j.tasks.reduce((s, t) => s + t.recordsWritten, 0);
  const ended = (j: JobBody) => ["FINISHED", "FAILED", "CANCELED"].includes(j.status);

  // 4. Let it get about a third of the way, then kill the master.
  let lastReport = 0;
  let lastStatus = "";
  const beforeKill = await run.until(
    "job a third done",
    async () => {
      const j = await run.json<JobBody>(jobUrl(watcher));
      if (ended(j)) {
        throw new DemoFailure(
          `job ended (${j.status}) before the master could be killed${j.error ? `: ${j.error}` : ""}`,
        );
      }
      if (j.status !== lastStatus) {
        lastStatus = j.status;
        const placed = j.tasks.every((t) => t.worker)
          ? `; tasks on ${j.tasks.map((t) => label(t.worker)).join(", ")}`
          : "";
        run.say(`job ${j.status}${placed}`);
      }
      const w = written(j);
      const ready = w >= records / 3 && j.tasks.length > 0 && j.tasks.every((t) => t.worker);
      if (!ready && performance.now() - lastReport > 1_000) {
        lastReport = performance.now();
        run.say(`progress: ${fmt(w)} / ${fmt(records)} records written`);
      }
      return ready ? j : undefined;
    },
    100,
    60_000,
  );
  const attemptsBefore = new Map(beforeKill.tasks.map((t) => [t.id, t]));
  const tableBefore = await run.json<SnapshotBody>(`${watcher.url}/snapshot`);

  const killedAt = performance.now();
  master.child.expectedExit = true;
  master.child.handle.kill("SIGKILL");
  run.say(
    `kill -9 ${master.name} (the master, pid ${master.child.handle.pid}) at ${fmt(written(beforeKill))} / ${
      fmt(records)
    } records${written(beforeKill) >= records ? " (every record is written; the job is finishing)" : ""}`,
  );

  // 5. Watch the failover from a survivor.
  let sawMaster = false;
  let sawRemoved = false;
  let maxMissing = 0;
  let sawAlone = false;
  let promotion: { hadPrimary: number; promoted: Map<string, number>; moved: number } | undefined;
  const countPromotions = (after: SnapshotBody) => {
    const b = tableBefore.table, a = after.table;
    let hadPrimary = 0, moved = 0;
    const promoted = new Map<string, number>();
    b.replicas.forEach((reps, p) => {
      if (b.ids[reps[0]] !== master.id) return;
      hadPrimary++;
      const newPrimary = a.ids[a.replicas[p]?.[0]];
      if (reps.slice(1).some((i) => b.ids[i] === newPrimary)) {
        promoted.set(newPrimary, (promoted.get(newPrimary) ?? 0) + 1);
      } else moved++;
    });
    return { hadPrimary, promoted, moved };
  };
  const healed = await run.until(
    "failover complete (new master, 2 members, every partition fully replicated)",
    async () => {
      const v = await run.json<ClusterBody>(`${watcher.url}/cluster`);
      const now = performance.now() - killedAt;
      if (!sawMaster && v.master && v.master !== master.id) {
        sawMaster = true;
        run.say(
          `new master: ${label(v.master)}, ${
            fmt(Math.round(now))
          } ms after the kill (epoch ${v.epoch}); it now runs the job coordinator`,
        );
      }
      if (!sawRemoved && !v.members.some((m) => m.id === master.id)) {
        sawRemoved = true;
        run.say(
          `${master.name} removed from the member list; ${v.members.length} members: ${
            v.members.map((m) => label(m.id)).join(", ")
          }`,
        );
      }
      if (sawRemoved && v.members.length < 2 && !sawAlone) {
        sawAlone = true;
        run.say(`warning: ${watcher.name} sees no other member: the survivors lost each other (they must merge back)`);
      }
      maxMissing = Math.max(maxMissing, v.partitions.replicasMissing);
      if (!promotion && sawMaster && !(master.id in v.partitions.owners)) {
        // The first table without the dead primary shows the promotions (later ones may rebalance).
        promotion = countPromotions(await run.json<SnapshotBody>(`${watcher.url}/snapshot`));
        const { hadPrimary, promoted, moved } = promotion;
        const n = [...promoted.values()].reduce((x, y) => x + y, 0);
        run.say(
          `${hadPrimary} partitions had their primary on ${master.name}: ${n} backups promoted to primary (${
            [...promoted].map(([id, k]) => `${label(id)} ${k}`).join(", ") || "none"
          })${moved > 0 ? `, ${moved} already rebalanced further` : ""}`,
        );
      }
      return sawMaster && sawRemoved && promotion && v.members.length === 2 && v.partitions.replicasMissing === 0 &&
          v.partitions.migrating === 0
        ? { v, now }
        : undefined;
    },
    100,
    60_000,
  );
  run.say(
    `replicasMissing ${maxMissing > 0 ? `rose to ${maxMissing} and ` : ""}is 0 ${
      secs(healed.now)
    } after the kill: every partition has its primary and a backup on the two survivors (primaries: ${
      Object.entries(healed.v.partitions.owners).map(([id, n]) => `${label(id)} ${n}`).join(", ")
    })`,
  );

  // 6. The job finishes on the survivors.
  const reported = new Set<string>();
  lastReport = 0;
  let notFound = 0;
  const finished = await run.until(
    "job FINISHED",
    async () => {
      const j = await run.json<JobBody>(jobUrl(watcher)).catch((err) => {
        // A job that existed and now reads as unknown, again and again, lost its state.
        if (err instanceof HttpStatusError && err.status === 404 && ++notFound >= 25) {
          throw new DemoFailure(
            `job ${jobId} is gone after the failover (GET /jobs/${jobId} → 404 for 5 s): its state was lost from the job maps`,
          );
        }
        throw err;
      });
      notFound = 0;
      if (j.status !== lastStatus && !ended(j)) {
        lastStatus = j.status;
        run.say(`job ${j.status}`);
      }
      for (const t of j.tasks) {
        const before = attemptsBefore.get(t.id);
        if (before && t.attempt > before.attempt && t.worker && !reported.has(t.id)) {
          reported.add(t.id);
          run.say(
            `task ${t.id} restarted on ${label(t.worker)} from its last checkpoint (attempt ${t.attempt}; it ran on ${
              label(before.worker)
            })`,
          );
        }
      }
      if (j.status === "FAILED" || j.status === "CANCELED") {
        throw new DemoFailure(
          `job ended ${j.status}${j.error ? `: ${j.error}` : ""}`,
        );
      }
      if (j.status === "FINISHED") return j;
      if (performance.now() - lastReport > 1_000) {
        lastReport = performance.now();
        run.say(`progress: ${fmt(written(j))} / ${fmt(records)} records written (${j.status})`);
      }
      return undefined;
    },
    200,
    90_000,
  );
  for (const t of finished.tasks) {
    const before = attemptsBefore.get(t.id);
    // Not a correctness failure (the output is checked below), but worth saying: only the
    // dead worker's tasks should have needed a restart.
    if (before && before.worker !== master.id && t.attempt !== before.attempt) {
      run.say(
        `note: task ${t.id} on surviving ${
          label(before.worker)
        } was restarted too (attempt ${before.attempt} → ${t.attempt})`,
      );
    }
  }
  const kept = finished.tasks.filter((t) => attemptsBefore.get(t.id)?.attempt === t.attempt).length;
  run.say(
    `job FINISHED ${
      secs(performance.now() - jobStart)
    } after submit; ${kept} of 3 tasks kept their attempt, ${reported.size} restarted`,
  );

  // 7. Check the output and the preloaded map, reading through both survivors.
  const checkMap = async (map: string, count: number, expect: (i: number) => unknown) => {
    const sizes = await Promise.all(
      others.map((m) => retrying(() => run.json<{ size: number }>(`${m.url}/maps/${map}`))),
    );
    for (const [i, s] of sizes.entries()) {
      if (s.size !== count) {
        throw new DemoFailure(`map "${map}" has ${fmt(s.size)} entries on ${others[i].name}, expected ${fmt(count)}`);
      }
    }
    const wrong: string[] = [];
    await pool(Array.from({ length: count }, (_, i) => i), 48, async (i) => {
      const m = others[i % others.length];
      const got = await retrying(() => run.json<{ value: unknown }>(`${m.url}/maps/${map}/${i}`), 5).catch((err) => ({
        value: `missing (${(err as Error).message})`,
      }));
      if (JSON.stringify(got.value) !== JSON.stringify(expect(i)) && wrong.length < 5) {
        wrong.push(`key ${i}: got ${JSON.stringify(got.value)}, expected ${JSON.stringify(expect(i))}`);
      }
    });
    if (wrong.length > 0) throw new DemoFailure(`map "${map}" holds wrong values: ${wrong.join("; ")}`);
  };
  await checkMap("out", records, (i) => ({ id: i, value: sequenceValue(i) }));
  run.say(
    `verified: map "out" holds exactly ${
      fmt(records)
    } records, each with the right value (no loss, no duplicate key, nothing extra)`,
  );
  await checkMap("inventory", entries, inventoryValue);
  run.say(`verified: map "inventory" still holds its ${fmt(entries)} entries, all intact`);
  run.say(`all checks passed in ${secs(performance.now() - run.t0)}; stopping the processes`);
}

/** The `demo` command. */
export const demoCommand = {
  summary: "run the failover demo: 3 members, a job, the master killed mid-job",
  async run(args: string[]): Promise<number> {
    const parsed = parseFlags(demoFlags, args, {});
    if (parsed.kind === "help") {
      console.log(demoHelp());
      return 0;
    }
    if (parsed.kind === "error") {
      console.error(`error: ${parsed.error}\nRun with --help for the list of flags.`);
      return 2;
    }
    if (parsed.positionals.length > 0) {
      console.error(`error: unexpected argument "${parsed.positionals[0]}"\nRun with --help for the list of flags.`);
      return 2;
    }
    const v = parsed.values;
    const run = new DemoRun({
      entries: (v.entries as number | undefined) ?? 1000,
      records: (v.records as number | undefined) ?? 6000,
      rate: (v.rate as number | undefined) ?? 1000,
      timeoutMs: ((v.timeout as number | undefined) ?? 150) * 1000,
    });
    let interrupted = false;
    const removeSignals = onStopSignal((sig) => {
      if (interrupted) return;
      interrupted = true;
      console.error(`\n${sig}: stopping the demo's processes`);
      void run.cleanup().finally(() => exit(130));
    });
    try {
      await runDemo(run);
      return 0;
    } catch (err) {
      if (interrupted) return 130;
      const hint = permissionHint(err, "demo");
      if (hint !== undefined) {
        console.error(`error: ${hint}`);
        return 2;
      }
      const reason = err instanceof DemoFailure ? err.message : `unexpected error: ${(err as Error)?.stack ?? err}`;
      console.error(`\ndemo FAILED: ${reason}`);
      const report = run.stderrReport();
      if (report) console.error(report);
      return 1;
    } finally {
      removeSignals();
      await run.cleanup();
    }
  },
} satisfies Command;
