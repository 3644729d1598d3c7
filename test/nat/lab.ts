/**
 * The NAT lab for the suite (bun:test only): network namespaces built by
 * `scripts/natlab.sh` (a fake internet 198.18.0.0/24 with coturn and a `mod.ts signal`
 * server, three home routers with LANs 10.0.N.0/24), and Shoal members started inside them
 * through the public CLI. Tests talk to members over REST on a management link
 * (10.254.S.0/24, never an ICE candidate: werift skips veth* interfaces) and read their
 * stdout JSON lines. Everything started is stopped by PID and every namespace removed in
 * {@link NatLab.down}; labs left by a crashed run are removed by the next one.
 */
import { spawnSync, type Subprocess } from "bun";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import type { CandidateType } from "../../src/transport/transport.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCRIPT = `${ROOT}scripts/natlab.sh`;
const BIN = `${ROOT}node_modules/.bin/`;
const TOKEN = "natlab-token";
export const SECRET = "natlab-secret";
export const PUB = "198.18.0.1";
export const STUN = `stun:${PUB}:3478`;
export const TURN = `turn:shoal:natlab-pass@${PUB}:3478`;
export const SIGNAL = `http://${PUB}:7000`;

/** Per-test budget of the lab tests (test/run.sh's default of 120 s is tight for member start-ups under load). */
export const LAB_TEST_MS = 300_000;

/** Where a member runs: `pub` (the fake internet) or a host behind router N. */
export type Site = "pub" | "h1" | "h2" | "h3" | "h4";
const siteIndex: Record<Site, number> = { pub: 0, h1: 1, h2: 2, h3: 3, h4: 4 };
/** The address a member offers as its host candidate (its LAN address, or 198.18.0.1 on pub). */
export const siteAddress: Record<Site, string> = {
  pub: PUB,
  h1: "10.0.1.2",
  h2: "10.0.2.2",
  h3: "10.0.3.2",
  h4: "10.0.1.3",
};
/** Router N's WAN address. */
export const wanOf = (router: 1 | 2 | 3) => `198.18.0.${10 + router}`;

/**
 * Why the lab cannot run here, or null. Under CI=true a missing prerequisite is an error,
 * not a skip.
 */
export function labSkipReason(): string | null {
  let reason: string | null = null;
  if (process.platform !== "linux") reason = "needs Linux network namespaces";
  else if (process.getuid?.() !== 0) reason = "needs root (ip netns)";
  else {
    const missing = ["ip", "iptables", "conntrack", "turnserver"].filter((t) => Bun.which(t) === null);
    if (missing.length) reason = `missing ${missing.join(", ")} (apt-get install iproute2 iptables conntrack coturn)`;
  }
  if (reason && process.env.CI === "true") throw new Error(`NAT lab must run under CI but ${reason}`);
  return reason;
}

function sh(args: string[]): string {
  const r = spawnSync(["bash", SCRIPT, ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`natlab.sh ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

type Line = Record<string, unknown>;

/** A process started in a namespace: stdout JSON lines collected, stderr tail kept. */
export class LabProc {
  readonly lines: Line[] = [];
  /** The tail of stdout and of stderr as text. */
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;
  constructor(readonly name: string, readonly p: Subprocess<"pipe", "pipe", "pipe">) {
    this.exited = p.exited;
    // NATLAB_LOG_DIR=dir keeps every line of every lab process in dir/<name>.log.
    const dir = process.env.NATLAB_LOG_DIR;
    const keep = dir ? (l: string) => appendFileSync(`${dir}/${name}.log`, l + "\n") : () => {};
    void this.#pump(p.stdout, (l) => {
      keep(l);
      this.stdout = (this.stdout + l + "\n").slice(-8_000);
      try {
        this.lines.push(JSON.parse(l));
      } catch {
        // not a JSON line (coturn's log)
      }
    });
    void this.#pump(p.stderr, (l) => {
      keep(l);
      this.stderr = (this.stderr + l + "\n").slice(-8_000);
    });
  }

  async #pump(s: ReadableStream<Uint8Array>, f: (line: string) => void) {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) f(buf.slice(0, i));
    }
  }

  get pid(): number {
    return this.p.pid;
  }

  get alive(): boolean {
    return this.p.exitCode === null && this.p.signalCode === null;
  }

  /** Waits for a stdout line with `event` (the first one from line index `from` on). */
  async line(event: string, timeoutMs: number, from = 0): Promise<Line> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => l.event === event);
      if (hit) return hit;
      if (!this.alive) throw new Error(`${this.name} exited (${this.p.exitCode}) before "${event}":\n${this.stderr}`);
      if (performance.now() > end) throw new Error(`${this.name}: no "${event}" in ${timeoutMs} ms:\n${this.stderr}`);
      await Bun.sleep(25);
    }
  }

  /** Writes a JSON-line command and waits for the reply line `event`. */
  async ask(cmd: Record<string, unknown>, event: string, timeoutMs = 30_000): Promise<Line> {
    const from = this.lines.length;
    this.p.stdin.write(JSON.stringify(cmd) + "\n");
    this.p.stdin.flush();
    return await this.line(event, timeoutMs, from);
  }

  kill(signal: "SIGKILL" | "SIGTERM" = "SIGTERM"): void {
    if (this.alive) process.kill(this.pid, signal);
  }
}

/** A Shoal member in the lab, reached over REST on its management address. */
export class LabMember {
  constructor(readonly proc: LabProc, readonly site: Site, readonly id: string, readonly url: string) {}

  get name(): string {
    return this.proc.name;
  }

  async req<T = Line>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 20_000,
  ): Promise<{ status: number; body: T }> {
    const t0 = performance.now();
    let r: Response;
    let text: string;
    try {
      r = await fetch(this.url + path, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await r.text();
    } catch (e) {
      const ms = Math.round(performance.now() - t0);
      throw new Error(`${this.name}: ${method} ${path} failed after ${ms} ms: ${(e as Error).message}`);
    }
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text
    }
    return { status: r.status, body: parsed as T };
  }

  async cluster(): Promise<ClusterView> {
    const r = await this.req<ClusterView>("GET", "/cluster");
    if (r.status !== 200) throw new Error(`${this.name} GET /cluster: ${r.status}`);
    return r.body;
  }

  async put(map: string, key: string, value: unknown): Promise<number> {
    return (await this.req("PUT", `/maps/${map}/${encodeURIComponent(key)}`, value)).status;
  }

  async get(map: string, key: string): Promise<{ status: number; value: unknown }> {
    const r = await this.req<{ value?: unknown }>("GET", `/maps/${map}/${encodeURIComponent(key)}`);
    return { status: r.status, value: r.body.value };
  }
}

export interface ClusterView {
  self: string;
  master: string;
  members: { id: string; name: string; runtime: string }[];
  partitions: { count: number; replicasMissing: number; migrating: number; lost: number; dataLoss: number };
  links: {
    peer: string;
    kind: "direct" | "relayed";
    via?: string;
    candidateType?: CandidateType;
    remoteCandidateType?: CandidateType;
  }[];
  unreachable: string[];
}

/** One UDP flow in a router's conntrack table. */
export interface Flow {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** Replies were seen: the mapping carried traffic both ways. */
  replied: boolean;
  /** conntrack's ASSURED (both ways, and on this kernel for over 2 s for UDP). */
  assured: boolean;
}

export interface MemberOptions {
  runtime: "bun" | "deno";
  /** STUN/TURN URLs (`--ice`); an empty list offers host candidates only. */
  ice: string[];
  /** More CLI flags. */
  args?: string[];
}

let labCount = 0;

/** One lab: its namespaces and everything started in them. */
export class NatLab {
  readonly id: number;
  readonly #procs: LabProc[] = [];
  readonly #subnet: number;
  /** Milliseconds `natlab.sh net` took. */
  netSetupMs = 0;
  coturn!: LabProc;
  signal!: LabProc;

  private constructor() {
    this.id = process.pid * 10 + (labCount++ % 10);
    this.#subnet = this.id % 250 + 1;
  }

  /** Removes stale labs of dead runs, builds the namespaces, starts coturn and the signaling server. */
  static async up(): Promise<NatLab> {
    const lab = new NatLab();
    sh(["stale"]);
    const t0 = performance.now();
    try {
      sh(["net", String(lab.id), String(process.pid)]);
      lab.netSetupMs = Math.round(performance.now() - t0);
      const state = `/tmp/shoal-natlab-${lab.id}`;
      mkdirSync(state, { recursive: true });
      writeFileSync(`${state}/turnserver.conf`, sh(["coturn-conf", String(lab.id)]));
      lab.coturn = lab.spawn("coturn", "pub", ["turnserver", "-c", `${state}/turnserver.conf`]);
      lab.signal = lab.spawn("signal", "pub", [`${BIN}bun`, "run", "mod.ts", "signal", "--http", `${PUB}:7000`]);
      await lab.signal.line("ready", 20_000);
      await lab.#waitCoturn();
    } catch (e) {
      await lab.down();
      throw e;
    }
    return lab;
  }

  async #waitCoturn() {
    const end = performance.now() + 10_000;
    while (!this.coturn.stdout.includes("Total General servers")) {
      if (!this.coturn.alive) throw new Error(`coturn exited:\n${this.coturn.stdout}${this.coturn.stderr}`);
      if (performance.now() > end) throw new Error(`coturn not ready in 10 s:\n${this.coturn.stdout}`);
      await Bun.sleep(50);
    }
  }

  /** Starts `cmd` in the namespace of `site` (or of router `r1`…). */
  spawn(name: string, where: Site | "r1" | "r2" | "r3", cmd: string[]): LabProc {
    const p = Bun.spawn(["ip", "netns", "exec", `sn${this.id}-${where}`, ...cmd], {
      cwd: ROOT,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", NO_COLOR: "1" },
    });
    const proc = new LabProc(name, p);
    this.#procs.push(proc);
    return proc;
  }

  /** The management URL of a member on `site`. */
  url(site: Site): string {
    return `http://10.254.${this.#subnet}.${4 * siteIndex[site] + 2}:5701`;
  }

  /** Starts a member on `site` that joins through the signaling server, and waits for its ready line. */
  async member(name: string, site: Site, o: MemberOptions): Promise<LabMember> {
    const rt = o.runtime === "bun" ? [`${BIN}bun`, "run"] : [`${BIN}deno`, "run", "-A"];
    const url = this.url(site);
    const args = [
      ...rt,
      "mod.ts",
      "node",
      "--name",
      name,
      "--secret",
      SECRET,
      "--token",
      TOKEN,
      "--join",
      SIGNAL,
      "--http",
      url.slice("http://".length),
      "--ice-host-address",
      siteAddress[site],
      "--log-level",
      "info",
      ...o.ice.flatMap((u) => ["--ice", u]),
      ...(o.args ?? []),
    ];
    const proc = this.spawn(name, site, args);
    const ready = await proc.line("ready", 60_000);
    return new LabMember(proc, site, String(ready.member), url);
  }

  /** Starts test/nat/link_probe.ts on `site` and waits for its ready line. */
  async probe(name: string, site: Site, runtime: "bun" | "deno", ice: string[]): Promise<LabProc> {
    const rt = runtime === "bun" ? [`${BIN}bun`, "run"] : [`${BIN}deno`, "run", "-A"];
    const args = ["test/nat/link_probe.ts", "--id", name, "--signal", SIGNAL, "--host-address", siteAddress[site]];
    const p = this.spawn(name, site, [...rt, ...args, ...ice.flatMap((u) => ["--ice", u])]);
    await p.line("ready", 30_000);
    return p;
  }

  /** Switches router N between a port-restricted cone and a symmetric NAT (forgets its mappings). */
  nat(router: 1 | 2 | 3, kind: "cone" | "symmetric"): void {
    sh(["nat", String(this.id), String(router), kind]);
  }

  /** Moves router N's UDP mappings to new ports and forgets the old ones. */
  rebind(router: 1 | 2 | 3): void {
    sh(["rebind", String(this.id), String(router)]);
  }

  /** Router N's UDP flows (its conntrack table). */
  flows(router: 1 | 2 | 3): Flow[] {
    const r = spawnSync(["ip", "netns", "exec", `sn${this.id}-r${router}`, "conntrack", "-L", "-p", "udp"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out: Flow[] = [];
    for (const line of r.stdout.toString().split("\n")) {
      const m = line.match(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/);
      if (!m) continue;
      out.push({
        src: m[1],
        dst: m[2],
        sport: Number(m[3]),
        dport: Number(m[4]),
        assured: line.includes("[ASSURED]"),
        replied: !line.includes("[UNREPLIED]"),
      });
    }
    return out;
  }

  /** Stops every process of this lab by PID (SIGTERM, then SIGKILL) and removes the namespaces. */
  async down(): Promise<void> {
    for (const p of this.#procs) p.kill("SIGTERM");
    await Promise.race([Promise.all(this.#procs.map((p) => p.exited)), Bun.sleep(3_000)]);
    for (const p of this.#procs) p.kill("SIGKILL");
    await Promise.race([Promise.all(this.#procs.map((p) => p.exited)), Bun.sleep(2_000)]);
    sh(["down", String(this.id)]);
  }

  /** Stops members (SIGKILL) and forgets them; for the end of each test. */
  async stop(...members: LabMember[]): Promise<void> {
    for (const m of members) m.proc.kill("SIGKILL");
    await Promise.all(members.map((m) => m.proc.exited));
  }
}

/** Polls `f` until it returns a value other than undefined/false. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  f: () => Promise<T | undefined | false> | T | undefined | false,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  let lastErr = "";
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastErr = String(e);
    }
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${lastErr}`);
    await Bun.sleep(100);
  }
}

/** The p-th percentile (0–100) of `xs`. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
