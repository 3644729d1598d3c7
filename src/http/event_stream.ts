/**
 * `GET /events`: a Server-Sent Events stream of dashboard snapshots, one `snapshot` event
 * when a client connects, then whenever the state changes (checked every `intervalMs`
 * and right after any cluster event) and at least every `keepaliveMs`. One timer serves
 * all clients; the number of clients is bounded, and a client that does not read has
 * snapshots skipped rather than queued.
 */
import type { ClusterEvent } from "../cluster/view.ts";

export interface EventStreamOptions {
  /** @default 1000 */
  intervalMs?: number;
  /** Resend an unchanged snapshot after this long so proxies keep the stream open. @default 5000 */
  keepaliveMs?: number;
  /** @default 16 */
  maxClients?: number;
  /** Snapshots buffered per client before further ones are skipped. @default 4 */
  maxQueuedPerClient?: number;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  close(): void;
}

/** See the file comment. */
export class SnapshotEventStream {
  readonly #clients = new Set<Client>();
  readonly #intervalMs: number;
  readonly #keepaliveMs: number;
  readonly #maxClients: number;
  readonly #maxQueued: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #pending: ReturnType<typeof setTimeout> | undefined;
  #unsubscribe: (() => void) | undefined;
  #last = "";
  #lastSentAt = 0;
  #seq = 0;
  #closed = false;
  /** Snapshots skipped because a client was not reading. */
  skipped = 0;

  /**
   * @param build returns the snapshot as a JSON string
   * @param subscribe subscribes to cluster events; returns an unsubscribe function
   * @param refresh called before each periodic build and when a client connects (e.g. to
   *   refresh cached figures); the build waits for it
   */
  constructor(
    private readonly build: () => string,
    private readonly subscribe: (fn: (e: ClusterEvent) => void) => () => void,
    private readonly refresh: () => Promise<void> | void = () => {},
    opts: EventStreamOptions = {},
  ) {
    this.#intervalMs = opts.intervalMs ?? 1000;
    this.#keepaliveMs = opts.keepaliveMs ?? 5000;
    this.#maxClients = opts.maxClients ?? 16;
    this.#maxQueued = opts.maxQueuedPerClient ?? 4;
  }

  /** Open streams. */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * Opens a stream for one client.
   * @param signal aborts when the client goes away
   * @returns the SSE response, or undefined when the client limit is reached or the stream is closed
   */
  open(signal?: AbortSignal): Response | undefined {
    if (this.#closed || this.#clients.size >= this.#maxClients) return undefined;
    const enc = new TextEncoder();
    let client!: Client;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = {
          controller,
          close: () => {
            if (!this.#clients.delete(client)) return;
            try {
              controller.close();
            } catch {
              // Already closed or errored by the consumer.
            }
            this.#maybeStop();
          },
        };
        this.#clients.add(client);
        controller.enqueue(enc.encode(`retry: 1000\n\n`));
        const data = this.#safeBuild();
        this.#sendTo(client, data);
        if (this.#timer === undefined) {
          this.#start();
          this.#last = data ?? "";
          this.#lastSentAt = performance.now();
        }
        this.#refreshThenBroadcast();
      },
      cancel: () => client.close(),
    }, new CountQueuingStrategy({ highWaterMark: this.#maxQueued }));
    signal?.addEventListener("abort", () => client?.close(), { once: true });
    return new Response(body, {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
      },
    });
  }

  /** Ends every stream and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#clients]) c.close();
    this.#maybeStop();
  }

  #safeBuild(): string | undefined {
    try {
      return this.build();
    } catch {
      return undefined;
    }
  }

  #sendTo(client: Client, data: string | undefined): void {
    if (data === undefined) return;
    if ((client.controller.desiredSize ?? 0) <= 0) {
      this.skipped++;
      return;
    }
    const msg = `event: snapshot\nid: ${++this.#seq}\ndata: ${data}\n\n`;
    try {
      client.controller.enqueue(new TextEncoder().encode(msg));
    } catch {
      client.close();
    }
  }

  #broadcast(force: boolean): void {
    if (this.#clients.size === 0) return;
    const data = this.#safeBuild();
    if (data === undefined) return;
    const now = performance.now();
    if (!force && data === this.#last && now - this.#lastSentAt < this.#keepaliveMs) return;
    this.#last = data;
    this.#lastSentAt = now;
    for (const c of [...this.#clients]) this.#sendTo(c, data);
  }

  #refreshThenBroadcast(): void {
    let p: Promise<void> | void;
    try {
      p = this.refresh();
    } catch {
      p = undefined;
    }
    Promise.resolve(p).catch(() => {}).finally(() => this.#broadcast(false));
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#refreshThenBroadcast(), this.#intervalMs);
    this.#unsubscribe = this.subscribe(() => {
      // Coalesce bursts of events (a death brings several) into one snapshot.
      if (this.#pending !== undefined) return;
      this.#pending = setTimeout(() => {
        this.#pending = undefined;
        this.#broadcast(false);
      }, 20);
    });
  }

  #maybeStop(): void {
    if (this.#clients.size > 0) return;
    clearInterval(this.#timer);
    clearTimeout(this.#pending);
    this.#timer = undefined;
    this.#pending = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
