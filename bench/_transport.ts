/**
 * Shared by the transport benches (one process and two processes): the sending loops they
 * time, and the median and number format of their tables.
 */
import { type ChildHandle, spawnChild } from "../src/runtime/spawn.ts";
import { SignalingClient } from "../src/signaling/client.ts";
import { WebRtcTransport } from "../src/transport/webrtc.ts";
import type { WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import type { NodeId } from "../src/transport/transport.ts";
import "../src/transport/messages.ts";

/** Bytes of one benchmark message. */
export const PAYLOAD = 100;
/** Most bytes a raw sender keeps buffered on its data channel. */
export const MAX_BUFFERED = 64 * 1024;
/** Most bytes the Shoal sender lets queue for the peer before it yields. */
const MAX_QUEUED = 256 * 1024;

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `n` with thousands separators and `d` decimals. */
export const fmt = (n: number, d = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

/**
 * Sends `n` payloads of {@link PAYLOAD} zero bytes over a raw werift channel, `perFrame` to a
 * data-channel message, keeping at most {@link MAX_BUFFERED} buffered (waiting for the
 * buffered-low event). One payload per message is one SCTP chunk each: werift collapses with
 * many of those queued, so that case keeps 16 KiB buffered and polls instead.
 */
export async function sendRawPayloads(peer: WebRtcPeer, n: number, perFrame: number): Promise<void> {
  const frame = new Uint8Array(PAYLOAD * perFrame);
  let low: (() => void) | undefined;
  peer.events.bufferedLow = () => low?.();
  const bound = perFrame === 1 ? 16 * 1024 : MAX_BUFFERED;
  let sent = 0;
  while (sent < n) {
    if (peer.bufferedAmount >= bound) {
      if (perFrame === 1) await sleep(0);
      else await new Promise<void>((r) => (low = r));
      continue;
    }
    const k = Math.min(perFrame, n - sent);
    peer.send(k === perFrame ? frame : frame.subarray(0, k * PAYLOAD));
    sent += k;
  }
}

/**
 * Sends `n` TestData messages of {@link PAYLOAD} bytes to `to` over the Shoal transport in
 * batches of 1,000, pacing on the transport's queue as a bulk sender would.
 * @throws Error when the transport refuses a message
 */
export async function sendTestMessages(transport: WebRtcTransport, to: NodeId, n: number): Promise<void> {
  const data = new Uint8Array(PAYLOAD);
  let sent = 0;
  while (sent < n) {
    if (transport.queuedBytes(to) > MAX_QUEUED) {
      await sleep(0);
      continue;
    }
    const k = Math.min(1000, n - sent);
    for (let i = 0; i < k; i++) {
      const m: Message = { t: Kind.TestData, seq: sent + i, data };
      if (!transport.send(to, m)) throw new Error("send refused");
    }
    sent += k;
    await Promise.resolve();
  }
}

/** A child process of a transport bench, whose stdout lines the parent waits for. */
export interface BenchChild {
  readonly handle: ChildHandle;
  /** Resolves with (and removes) the first stdout line starting with `prefix`. */
  waitLine(prefix: string): Promise<string>;
}

/**
 * Starts `cmd` with `env` added; its stderr lines are printed with `label`. Each stdout line
 * goes to `onLine` first, and is kept for {@link BenchChild.waitLine} unless `onLine` returns true.
 */
export function startBenchChild(
  cmd: string[],
  env: Record<string, string>,
  label: string,
  onLine?: (line: string) => boolean,
): BenchChild {
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const handle = spawnChild(cmd, {
    env,
    onStdoutLine: (l) => {
      if (!onLine?.(l)) lines.push(l);
      for (const w of waiters.splice(0)) w();
    },
    onStderrLine: (l) => console.error(`[${label}] ${l}`),
  });
  return {
    handle,
    async waitLine(prefix) {
      for (;;) {
        const i = lines.findIndex((l) => l.startsWith(prefix));
        if (i >= 0) return lines.splice(i, 1)[0];
        if (handle.done) throw new Error(`${label} exited before printing "${prefix}"`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(1000)]);
      }
    },
  };
}

/**
 * A Shoal WebRTC transport for member `self` of the bench cluster `cluster` (secret "bench",
 * no ICE servers), registered with the signaling server at `url`; `close` ends both.
 */
export async function benchTransport(
  url: string,
  cluster: string,
  self: string,
): Promise<{ transport: WebRtcTransport; close(): Promise<void> }> {
  const sc = new SignalingClient({ url, cluster, self });
  await sc.start();
  const transport = new WebRtcTransport({ self, cluster, secret: "bench", signaling: sc, iceServers: [] });
  return {
    transport,
    async close() {
      await transport.close();
      sc.close();
    },
  };
}
