/**
 * The invocation layer: sends an operation to its partition's primary (from this member's
 * table), retries on WRONG_TARGET / MIGRATING / STALE_EPOCH / MEMBER_GONE / OVERLOADED / QUORUM and
 * on lost requests or answers with bounded, jittered backoff, and gives up after the call
 * timeout with a typed error: TimeoutError when the operation surely did not run, else
 * IndeterminateResultError for writes.
 *
 * Every call has an id (this invoker's client id and a sequence number, invoke/call_id.ts)
 * that stays the same across retries; the primary keeps (and replicates) the result of
 * each write under that id, so a retried write is applied once. Every request carries the
 * watermark `w` of its partition: the lowest sequence number of a write to that partition
 * still pending here (every write to it below that is answered), so partitions keep the
 * records of unanswered writes however long they retry and drop the others. Pending calls
 * are bounded, and so is the distance from a partition's oldest pending write to the newest
 * call (`maxPendingCalls` both), which bounds the records.
 *
 * With split-brain protection on, the quorum gate is checked before every attempt (a
 * member that may not serve data refuses its own callers at once with `QUORUM`) and before
 * serving (a primary whose lease ran out answers `QUORUM`, which the caller retries: its
 * partitions are about to move).
 */
import type { ServiceDeps } from "../cluster/service_deps.ts";
import { type Clock, type Timer, TimerQueue } from "../core/clock.ts";
import { IndeterminateResultError, ShoalError, type ShoalErrorCode, TimeoutError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { PartitionService } from "../partition/partition_service.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { callId } from "./call_id.ts";
import {
  InvokeBackupAnswerMsg,
  type InvokeRequest,
  InvokeRequestMsg,
  type InvokeResponse,
  InvokeResponseMsg,
} from "./messages.ts";

export type { InvokeRequest } from "./messages.ts";

export interface InvokerConfig {
  /**
   * Wait at most this long for an answer before retrying; once answers from the target were
   * timed, the wait is 2 × (SRTT + 4 × RTTVAR) of them, clamped to [minAttemptTimeoutMs, this].
   * @default 2000
   */
  attemptTimeoutMs?: number;
  /**
   * Shortest attempt timeout derived from the measured round trips. A retry travels the same
   * ordered channel as the request it repeats, so it cannot overtake a lost packet (SCTP
   * recovers that in a few round trips); a short floor only adds duplicate work when a
   * loaded member answers late. @default 500
   */
  minAttemptTimeoutMs?: number;
  /** Give up after this long. @default 30000 */
  callTimeoutMs?: number;
  /**
   * Calls in flight from this member, and calls started since the oldest call to the same
   * partition still in flight (the dedupe records a partition keeps for this member's calls). @default 10000
   */
  maxPendingCalls?: number;
  /** First retry delay. @default 5 */
  retryBaseMs?: number;
  /** Longest retry delay. @default 500 */
  retryMaxMs?: number;
  /**
   * After the first of several backups answered a write, wait this long for the others'
   * answers before asking the primary again (same call id: answered once the primary saw
   * their acks). @default 300
   */
  backupAckWaitMs?: number;
}

/**
 * Answers a request: status "ok" or an error code. A write whose backups answer its caller
 * themselves (InvokeBackupAnswer, map/backup.ts) is not answered by the primary.
 */
export type Reply = (status: "ok" | ShoalErrorCode, result?: unknown, message?: string) => void;
export type InvokeServer = (from: NodeId, req: InvokeRequest, reply: Reply) => void;

const RETRYABLE = new Set<string>(["WRONG_TARGET", "MIGRATING", "STALE_EPOCH", "MEMBER_GONE", "OVERLOADED", "QUORUM"]);
/** Answers a primary gives only before it runs a request: the attempt did not run. */
const REFUSED_UNRUN = new Set<string>(["WRONG_TARGET", "STALE_EPOCH", "OVERLOADED", "QUORUM"]);

interface Call {
  id: string;
  /** The call's number (its id is `<client>/<seq>`). */
  seq: number;
  p: number;
  op: number;
  body: unknown;
  write: boolean;
  /** How long the primary may park it (its answers time no round trip). */
  parkMs: number;
  attempt: number;
  /** A request of this call may have reached a primary. */
  sent: boolean;
  /** When the call began (clock time). */
  began: number;
  /** The current attempt was sent and no refusal proving it did not run has answered it. */
  unanswered: boolean;
  /** An earlier attempt may have run (sent, then not refused): later attempts carry the call's age (`g`). */
  mayHaveRun: boolean;
  target: NodeId | undefined;
  /** When the current attempt was sent (for the round-trip estimate). */
  sentAt: number;
  deadline: number;
  timer: Timer | null;
  retries: number;
  /** A write answered by one of `primary`'s backups that still waits for these other backups' answers. */
  awaiting: { result: unknown; primary: NodeId; from: Set<NodeId> } | null;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export interface InvokerOptions extends ServiceDeps {
  partitions: PartitionService;
  config?: InvokerConfig;
  /**
   * Split-brain protection: null when this member may call (`serving` false) or serve
   * (`serving` true) an operation on partition `p` with this body now, else the error to
   * answer with. The body's map name decides per-map overrides; an op over every map
   * (MapSizes) is held to the strictest.
   */
  gate?: (p: number, op: number, body: unknown, serving: boolean) => ShoalError | null;
}

export class Invoker {
  readonly config: Required<InvokerConfig>;
  #self: NodeId;
  #transport: Transport;
  #clock: Clock;
  /** The calls' attempt, retry and ack-wait timers: one timer of the clock for all (two per call otherwise). */
  #timers: TimerQueue;
  #rng: Random;
  #log: Logger;
  #partitions: PartitionService;
  #gate: (p: number, op: number, body: unknown, serving: boolean) => ShoalError | null;
  #server: InvokeServer | null = null;
  #calls = new Map<string, Call>();
  /**
   * Pending writes by partition, each in number order (for the per-partition watermark). Only
   * writes leave dedupe records, and a primary refuses only a write below a watermark, so a read
   * held long on its primary (a listener's poll, held up to half an attempt timeout) does not
   * hold the watermark back: it did, and 10,000 calls of this member meanwhile (listeners
   * opened and closed, or a busy member) made every further call to that partition OVERLOADED
   * (found by an internal review).
   */
  #byPartition = new Map<number, Set<Call>>();
  /** Smoothed round trip (request → answer) per target, RFC 6298 style; live members only. */
  #rtt = new Map<NodeId, { srtt: number; rttvar: number }>();
  /** This invoker's client id (call ids are `<client>/<seq>`). */
  readonly client: string;
  #counter = 0;
  #stopped = false;
  #unsubscribe: () => void;
  readonly stats = {
    calls: 0,
    retries: 0,
    timeouts: 0,
    indeterminate: 0,
    served: 0,
    quorumRefused: 0,
    /** Backup answers dropped for lists of unequal length. */
    badAnswers: 0,
  };

  constructor(opts: InvokerOptions) {
    this.#self = opts.self;
    this.#transport = opts.transport;
    this.#clock = opts.clock;
    this.#timers = new TimerQueue(opts.clock);
    this.#rng = opts.rng;
    this.#log = opts.log;
    this.#partitions = opts.partitions;
    this.#gate = opts.gate ?? (() => null);
    this.config = {
      attemptTimeoutMs: 2000,
      minAttemptTimeoutMs: 500,
      callTimeoutMs: 30_000,
      maxPendingCalls: 10_000,
      retryBaseMs: 5,
      retryMaxMs: 500,
      backupAckWaitMs: 300,
      ...opts.config,
    };
    // Unique across restarts of the same member id.
    this.client = `${opts.self}/${opts.rng.id(8)}`;
    opts.router.on(InvokeRequestMsg, (from, msg) => this.#serve(from, msg));
    opts.router.on(InvokeResponseMsg, (from, msg) => this.#onResponse(from, msg));
    opts.router.on(InvokeBackupAnswerMsg, (from, msg) => this.onBackupAnswers(from, msg.pr, msg.cs, msg.rs, msg.ob));
    const unView = opts.view.subscribe((e) => {
      if (e.type === "memberRemoved") {
        const id = e.member.id;
        this.#rtt.delete(id);
        const rows = this.#partitions.table.replicas;
        for (const c of this.#calls.values()) {
          // A write waits for its backups' answers: one whose backup left asks its primary again.
          if (c.target === id || c.awaiting?.from.has(id) || (c.write && c.sent && rows[c.p]?.includes(id))) {
            this.#retry(c, 0);
          }
        }
      }
    });
    // A call waiting on a member that is no longer its partition's primary is re-driven at
    // once instead of waiting for its attempt to time out.
    const unTable = opts.partitions.onTableChange((next) => {
      for (const c of this.#calls.values()) {
        if (c.target !== undefined && next.replicas[c.p]?.[0] !== c.target) this.#retry(c, 0);
      }
    });
    this.#unsubscribe = () => {
      unView();
      unTable();
    };
  }

  /** Installs the serving side (the map service). */
  serve(server: InvokeServer): void {
    this.#server = server;
  }

  get pendingCalls(): number {
    return this.#calls.size;
  }

  /**
   * Every write to partition `p` numbered below this is answered (will never be sent again):
   * the lowest number of a write to `p` still pending (calls enter in number order), else the
   * next number. Per partition, since each partition keeps only its own calls' records: a
   * call stuck on one partition (its primary unreachable) holds back no other partition's.
   */
  watermarkOf(p: number): number {
    const pending = this.#byPartition.get(p);
    if (pending) { for (const c of pending) return c.seq; }
    return this.#counter;
  }

  /**
   * How long an attempt sent to `target` waits for its answer: from the round trips measured
   * to it (a lost request or answer is retried after a few round trips instead of after the
   * fixed bound; the retry keeps the call id, so a write still applies once).
   */
  attemptTimeoutFor(target: NodeId): number {
    const r = this.#rtt.get(target);
    if (!r) return this.config.attemptTimeoutMs;
    const derived = 2 * (r.srtt + 4 * r.rttvar);
    return Math.min(this.config.attemptTimeoutMs, Math.max(this.config.minAttemptTimeoutMs, derived));
  }

  #sampleRtt(target: NodeId, ms: number): void {
    const r = this.#rtt.get(target);
    if (!r) this.#rtt.set(target, { srtt: ms, rttvar: ms / 2 });
    else {
      r.rttvar = 0.75 * r.rttvar + 0.25 * Math.abs(r.srtt - ms);
      r.srtt = 0.875 * r.srtt + 0.125 * ms;
    }
  }

  /**
   * Runs an operation on partition `p`'s primary.
   * @param write whether the op may change state (decides the error after a timeout)
   * @param parkMs how long the primary may hold the request before answering (a parked wait,
   *   map/parked_ops.ts): each attempt waits that much longer for its answer
   * @returns the primary's result
   * @throws TimeoutError, IndeterminateResultError, ShoalError (QUORUM, OVERLOADED, INVALID_ARGUMENT, SHUTDOWN…)
   */
  invoke(p: number, op: number, body: unknown, write: boolean, parkMs = 0): Promise<unknown> {
    if (this.#stopped) return Promise.reject(new ShoalError("SHUTDOWN", "Cannot invoke: this member is shut down"));
    const refused = this.#gate(p, op, body, false);
    if (refused) {
      this.stats.quorumRefused++;
      return Promise.reject(refused);
    }
    if (this.#calls.size >= this.config.maxPendingCalls) {
      return Promise.reject(new ShoalError("OVERLOADED", `Cannot invoke: ${this.#calls.size} calls already pending`));
    }
    if (write && this.#counter - this.watermarkOf(p) >= this.config.maxPendingCalls) {
      // A partition keeps a dedupe record of every write to it from the oldest pending one on.
      return Promise.reject(
        new ShoalError(
          "OVERLOADED",
          `Cannot invoke: the oldest pending call to partition ${p} is ${this.config.maxPendingCalls} calls back`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const seq = this.#counter++;
      const call: Call = {
        id: callId(this.client, seq),
        seq,
        p,
        op,
        body,
        write,
        parkMs,
        attempt: 0,
        sent: false,
        began: this.#clock.now(),
        unanswered: false,
        mayHaveRun: false,
        target: undefined,
        sentAt: 0,
        deadline: this.#clock.now() + this.config.callTimeoutMs,
        timer: null,
        retries: 0,
        awaiting: null,
        resolve,
        reject,
      };
      this.#calls.set(call.id, call);
      if (write) {
        const pending = this.#byPartition.get(p) ?? new Set<Call>();
        this.#byPartition.set(p, pending.add(call));
      }
      this.stats.calls++;
      this.#attempt(call);
    });
  }

  /** Fails every pending call (SHUTDOWN) and stops serving. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe();
    for (const c of [...this.#calls.values()]) {
      this.#finish(c);
      c.reject(
        c.write && c.sent
          ? new IndeterminateResultError(`Call ${c.id} interrupted by shutdown`)
          : new ShoalError("SHUTDOWN", "Call interrupted by shutdown"),
      );
    }
  }

  #finish(c: Call): void {
    c.timer?.cancel();
    c.timer = null;
    this.#calls.delete(c.id);
    const pending = this.#byPartition.get(c.p);
    if (pending?.delete(c) && pending.size === 0) this.#byPartition.delete(c.p);
  }

  #attempt(c: Call): void {
    if (!this.#calls.has(c.id)) return;
    const now = this.#clock.now();
    if (now >= c.deadline) return this.#giveUp(c);
    const refused = this.#gate(c.p, c.op, c.body, false);
    if (refused) {
      // An earlier attempt of a write may have been applied: then the answer is indeterminate.
      this.stats.quorumRefused++;
      this.#finish(c);
      if (!(c.write && c.sent)) return c.reject(refused);
      this.stats.indeterminate++;
      return c.reject(new IndeterminateResultError(`${refused.message} (an earlier attempt may have been applied)`));
    }
    const target = this.#partitions.primaryOf(c.p);
    if (!target) {
      c.target = undefined;
      this.#partitions.requestTable();
      return this.#retry(c);
    }
    c.attempt++;
    c.target = target;
    c.sentAt = now;
    if (c.unanswered) c.mayHaveRun = true;
    // The message itself serves a local call too (the server ignores `t`).
    const req: InvokeRequest & { t: number } = {
      t: Kind.InvokeRequest,
      c: c.id,
      a: c.attempt,
      p: c.p,
      e: this.#partitions.epochOf(c.p),
      op: c.op,
      b: c.body,
      w: this.watermarkOf(c.p),
    };
    if (c.mayHaveRun) req.g = Math.max(0, Math.floor(now - c.began));
    if (target === this.#self) {
      c.sent = true;
      this.#clock.setTimer(0, () => this.#serve(this.#self, req));
    } else {
      const ok = this.#transport.send(target, req);
      if (!ok) return this.#retry(c);
      c.sent = true;
    }
    c.unanswered = true;
    c.timer?.cancel();
    const attemptMs = (target === this.#self ? this.config.attemptTimeoutMs : this.attemptTimeoutFor(target)) +
      c.parkMs;
    c.timer = this.#timers.setTimer(Math.min(attemptMs, c.deadline - now), () => {
      c.timer = null;
      this.#retry(c, 0);
    });
  }

  #retry(c: Call, delayMs?: number): void {
    if (!this.#calls.has(c.id)) return;
    c.timer?.cancel();
    c.retries++;
    this.stats.retries++;
    const backoff = delayMs ??
      Math.min(this.config.retryMaxMs, this.config.retryBaseMs * 2 ** Math.min(c.retries, 8)) *
        (0.5 + this.#rng.next() / 2);
    const wait = Math.min(backoff, Math.max(0, c.deadline - this.#clock.now()));
    c.timer = this.#timers.setTimer(wait, () => {
      c.timer = null;
      this.#attempt(c);
    });
  }

  /** Sends call `c` again after `ms` (or at its deadline), unless something settles or re-drives it first. */
  #askAgainAfter(c: Call, ms: number): void {
    c.timer?.cancel();
    c.timer = this.#timers.setTimer(Math.min(ms, Math.max(0, c.deadline - this.#clock.now())), () => {
      c.timer = null;
      this.#retry(c, 0);
    });
  }

  #giveUp(c: Call): void {
    this.#finish(c);
    if (c.write && c.sent) {
      this.stats.indeterminate++;
      c.reject(
        new IndeterminateResultError(
          `Call to partition ${c.p} timed out after ${this.config.callTimeoutMs} ms; the write may or may not have been applied`,
        ),
      );
    } else {
      this.stats.timeouts++;
      c.reject(new TimeoutError(`Call to partition ${c.p} timed out after ${this.config.callTimeoutMs} ms`));
    }
  }

  /**
   * Backup `from` applied the writes of these calls, shipped by `primary`, whose results are
   * `results` and whose other ackers are `others` (InvokeBackupAnswer; called directly by the
   * map service when the backup is this member). A call is answered once each of its ackers
   * answered it.
   */
  onBackupAnswers(
    from: NodeId,
    primary: NodeId,
    callIds: readonly string[],
    results: readonly unknown[],
    others?: readonly (readonly NodeId[])[],
  ): void {
    if (results.length !== callIds.length || (others && others.length !== callIds.length)) {
      this.stats.badAnswers++;
      return;
    }
    for (let i = 0; i < callIds.length; i++) {
      const c = this.#calls.get(callIds[i]);
      if (!c) continue;
      const a = c.awaiting;
      if (a && a.primary === primary) {
        a.from.delete(from);
        if (a.from.size === 0) {
          this.#finish(c);
          c.resolve(a.result);
        }
        continue;
      }
      // Karn: only a first attempt's answer times a round trip unambiguously.
      if (c.attempt === 1 && primary !== this.#self && c.target === primary && !c.parkMs) {
        this.#sampleRtt(primary, this.#clock.now() - c.sentAt);
      }
      const rest = others?.[i];
      const waitFor = rest && rest.length > 0 ? new Set(rest) : null;
      waitFor?.delete(from);
      if (!waitFor || waitFor.size === 0) {
        this.#finish(c);
        c.resolve(results[i]);
        continue;
      }
      // Acknowledged once each other acker answered this primary's write too; an answer may be
      // lost: then ask the primary again, which answers once it saw their acks itself.
      c.awaiting = { result: results[i], primary, from: waitFor };
      this.#askAgainAfter(c, this.config.backupAckWaitMs);
    }
  }

  /**
   * Why this member refuses to serve request `req` now (split-brain protection), or null:
   * checked again when a parked request runs.
   */
  refusal(req: Pick<InvokeRequest, "p" | "op" | "b">): ShoalError | null {
    return this.#gate(req.p, req.op, req.b, true);
  }

  #serve(from: NodeId, req: InvokeRequest): void {
    if (this.#stopped) return;
    const reply: Reply = (status, result, message) => {
      const m: InvokeResponse = { t: Kind.InvokeResponse, c: req.c, a: req.a, s: status, r: result ?? null };
      if (message) m.msg = message.slice(0, 512);
      if (from === this.#self) this.#onResponse(this.#self, m);
      else this.#transport.send(from, m);
    };
    if (!this.#server) return reply("WRONG_TARGET", null, "no service on this member");
    const refused = this.#gate(req.p, req.op, req.b, true);
    if (refused) return reply("QUORUM", null, refused.message);
    this.stats.served++;
    this.#server(from, req, reply);
  }

  #onResponse(primary: NodeId, msg: InvokeResponse): void {
    const c = this.#calls.get(msg.c);
    if (!c) return;
    // Karn: only a first attempt's answer times a round trip unambiguously.
    if (c.attempt === 1 && msg.a === 1 && primary !== this.#self && c.target === primary && !c.awaiting && !c.parkMs) {
      this.#sampleRtt(primary, this.#clock.now() - c.sentAt);
    }
    const status = msg.s;
    if (status === "ok") {
      if (msg.bk === undefined || msg.bk.length === 0) {
        this.#finish(c);
        return c.resolve(msg.r);
      }
      // A member older than InvokeBackupAnswer answered before its backups acked (messages.ts):
      // asked again, it answers once they have.
      if (msg.a !== c.attempt || c.awaiting) return;
      this.#askAgainAfter(c, this.config.backupAckWaitMs);
      return;
    }
    // An answer to an older attempt: the current one is in flight, and decides. Except
    // INDETERMINATE: the call may have been applied (its side merged into another cluster
    // before the commit, map/primary.ts), and any further attempt could apply it a second time.
    if (msg.a !== c.attempt && status !== "INDETERMINATE") return;
    if (RETRYABLE.has(status)) {
      // Refused before it ran: this attempt did not run (earlier ones may have). Not MIGRATING: a
      // primary also answers it for a write it applied when its partition moved on before the
      // commit (map/primary.ts answerOnCommit).
      if (msg.a === c.attempt && REFUSED_UNRUN.has(status)) c.unanswered = false;
      if (status === "WRONG_TARGET" || status === "STALE_EPOCH") this.#partitions.requestTable();
      return this.#retry(c);
    }
    this.#finish(c);
    const code = status as ShoalErrorCode;
    const message = msg.msg ?? `Call to partition ${c.p} failed: ${code}`;
    if (code !== "INDETERMINATE") return c.reject(new ShoalError(code, message));
    // The primary refused a retry of a call it may have applied before (map/dedupe_records.ts).
    this.stats.indeterminate++;
    c.reject(new IndeterminateResultError(message));
  }
}
