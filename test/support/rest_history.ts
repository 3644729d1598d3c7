/**
 * Clients that record a history of REST map operations against real members (PUT returning
 * the previous value, GET, DELETE returning the previous value) on a few hot keys, for the
 * linearizability checker (history_checker.ts). A `503` with code `QUORUM` is recorded as
 * refused (the operation did not run); any other failure as unknown (it may have run).
 */
import { History, type HistoryOp } from "./history_checker.ts";

/** A member as the clients see it. */
export interface RestTarget {
  name: string;
  url: string;
}

export type Outcome = { ok: true; value: string | undefined } | { ok: false; refused: boolean };

/** Runs one recorded operation on map `q` through `m`'s REST API. */
export async function restOp(m: RestTarget, op: HistoryOp, token?: string, timeoutMs = 20_000): Promise<Outcome> {
  const url = `${m.url}/maps/q/${op.key}`;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  try {
    const init: RequestInit = op.kind === "put"
      ? { method: "PUT", body: JSON.stringify(op.value), headers: { ...headers, "content-type": "application/json" } }
      : op.kind === "remove"
      ? { method: "DELETE", headers }
      : { headers };
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await r.json() as { value?: string; previous?: string | null; code?: string };
    if (r.status === 200) return { ok: true, value: (op.kind === "get" ? body.value : body.previous) ?? undefined };
    if (r.status === 404 && op.kind === "get") return { ok: true, value: undefined };
    return { ok: false, refused: r.status === 503 && body.code === "QUORUM" };
  } catch {
    return { ok: false, refused: false };
  }
}

export interface RestLoadOptions {
  members: RestTarget[];
  clients: number;
  keys: number;
  token?: string;
}

/** Clients writing and reading until {@link RestLoad.stop}; times are ms since the load started. */
export class RestLoad {
  readonly history = new History();
  /** Refusals (QUORUM) by the member called. */
  readonly refusedBy = new Map<string, number>();
  /** Successful answers, by the member called, to operations sent at or after `since`. */
  readonly answeredSince = new Map<string, number>();
  since = Infinity;
  #t0 = performance.now();
  #running = true;
  #clients: Promise<void>[];
  #seq = 0;

  constructor(readonly opts: RestLoadOptions) {
    this.#clients = Array.from({ length: opts.clients }, (_, c) => this.#client(c));
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  /** Stops the clients and waits for their last operations. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#clients);
  }

  /** One final read of every key through `m` (after the load stopped and the cluster settled). */
  async readAll(m: RestTarget): Promise<void> {
    for (let k = 0; k < this.opts.keys; k++) {
      const op = this.history.invoke(`k${k}`, "get", this.now(), undefined, m.name);
      const out = await restOp(m, op, this.opts.token);
      if (out.ok) this.history.ok(op, this.now(), out.value);
      else this.history.fail(op);
    }
  }

  async #client(c: number): Promise<void> {
    const { members, keys, token } = this.opts;
    while (this.#running) {
      const m = members[Math.floor(Math.random() * members.length)];
      const key = `k${Math.floor(Math.random() * keys)}`;
      const r = Math.random();
      const kind = r < 0.45 ? "put" : r < 0.8 ? "get" : "remove";
      const op = this.history.invoke(
        key,
        kind,
        this.now(),
        kind === "put" ? `c${c}-${this.#seq++}` : undefined,
        m.name,
      );
      const out = await restOp(m, op, token);
      if (out.ok) {
        this.history.ok(op, this.now(), out.value);
        if (op.invokeAt >= this.since) this.answeredSince.set(m.name, (this.answeredSince.get(m.name) ?? 0) + 1);
      } else if (out.refused) {
        this.history.refused(op);
        this.refusedBy.set(m.name, (this.refusedBy.get(m.name) ?? 0) + 1);
      } else this.history.fail(op);
      await new Promise<void>((r) => setTimeout(r, Math.random() * 20));
    }
  }
}
