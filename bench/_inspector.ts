/**
 * CPU profiles of running processes through the V8 inspector (the Chrome DevTools Protocol's
 * `Profiler` domain). Deno has no `--cpu-prof` flag, but started with `--inspect=127.0.0.1:0` it
 * prints the inspector's WebSocket address on stderr; this module connects to it, samples for
 * as long as asked, and returns the profile in the `.cpuprofile` format (DevTools and Bun's
 * `--cpu-prof` read the same). Bench code: not part of the product.
 */

/** A `.cpuprofile`: the call tree's nodes with their own sample counts. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** The inspector's address printed by `--inspect` (`Debugger listening on ws://…`), if printed yet. */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
}

/** One inspector session on a process, able to start and stop the sampling profiler. */
export class InspectorSession {
  #ws: WebSocket;
  #next = 1;
  #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      let msg: { id?: number; result?: unknown; error?: { message: string } };
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      const w = msg.id === undefined ? undefined : this.#waiting.get(msg.id);
      if (!w) return; // an event, not an answer
      this.#waiting.delete(msg.id!);
      if (msg.error) w.reject(new Error(`inspector: ${msg.error.message}`));
      else w.resolve(msg.result);
    };
    ws.onclose = () => {
      for (const w of this.#waiting.values()) w.reject(new Error("inspector: connection closed"));
      this.#waiting.clear();
    };
  }

  /** Connects to the inspector at `url` (a `ws://` address from {@link inspectorUrl}). */
  static connect(url: string, timeoutMs = 10_000): Promise<InspectorSession> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => reject(new Error(`inspector: no connection to ${url}`)), timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new InspectorSession(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`inspector: cannot connect to ${url}`));
      };
    });
  }

  #call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Starts sampling every `intervalUs` µs. */
  async start(intervalUs = 1000): Promise<void> {
    await this.#call("Profiler.enable");
    await this.#call("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.#call("Profiler.start");
  }

  /** Stops sampling and returns the profile. */
  async stop(): Promise<CpuProfile> {
    const r = await this.#call<{ profile: CpuProfile }>("Profiler.stop");
    return r.profile;
  }

  close(): void {
    this.#ws.close();
  }
}

/** A function's share of a profile's samples: by itself (`self`) and with what it called (`total`). */
export interface ProfileRow {
  fn: string;
  where: string;
  self: number;
  total: number;
}

/**
 * The functions of `profile` ordered by their own samples, with the share of all busy samples
 * (idle ones left out) each took by itself and with its callees (a recursive function counts
 * once per sample).
 */
export function profileRows(profile: CpuProfile): ProfileRow[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (id: number) => {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^file:\/\//, "").replace(/^.*\/(node_modules|src|bench|test)\//, "$1/");
    return `${f.functionName || "(anonymous)"}\t${file}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>(), total = new Map<string, number>();
  let all = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0 || n.callFrame.functionName === "(idle)") continue;
    all += hits;
    const k = keyOf(n.id);
    self.set(k, (self.get(k) ?? 0) + hits);
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const key = keyOf(id);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + hits);
    }
  }
  const rows: ProfileRow[] = [];
  for (const [k, t] of total) {
    const [fn, where] = k.split("\t");
    rows.push({ fn, where, self: (self.get(k) ?? 0) / all, total: t / all });
  }
  return rows.sort((a, b) => b.self - a.self);
}

/** The first `n` rows of {@link profileRows} as a text table. */
export function profileTable(profile: CpuProfile, n = 30): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`.padStart(7);
  return profileRows(profile).slice(0, n).map((r) => `${pct(r.self)} ${pct(r.total)}  ${r.fn}  ${r.where}`).join(
    "\n",
  );
}
