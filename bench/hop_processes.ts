/**
 * One message hop between two real processes (issue 16): sequential round trips of a ~150-byte
 * message between this process and a child process, for
 *
 * - `udp`: a plain `node:dgram` ping-pong on loopback (the floor of the machine: two wake-ups
 *   and two datagrams per round trip, nothing else);
 * - `raw`: a werift data channel (with Shoal's per-connection patches, as members use it), the
 *   child echoing each message back;
 * - `shoal`: the Shoal transport (`WebRtcTransport`: CBOR-encoded, validated TestData
 *   messages, frames cut per event-loop turn), the child's handler answering each one.
 *
 * Per mode it prints the round-trip time p10 / p50 / p99 (p10 moves least with the machine's
 * load) and, for each side, the CPU (all threads and
 * the main thread, from the scheduler's accounting) and the main thread's context switches
 * (each a sleep and wake-up of the event loop, or a preemption) per round trip, and the UDP
 * datagrams each side sent per round trip.
 *
 *   bun run bench/hop_processes.ts [--peer bun|deno] [--rounds 3000] [--only udp,raw,shoal]
 *   deno run -A bench/hop_processes.ts [--peer bun|deno] …
 *
 * The child runs under `--peer` (default: this runtime), so "one of each" is
 * `bun run bench/hop_processes.ts --peer deno`. `--child-flags "--cpu-prof --cpu-prof-dir=DIR"` are
 * given to the child's runtime (it exits normally on SIGTERM, so a profile is written). Ends
 * with one JSON line.
 */
import dgram from "node:dgram";
import nodeProcess from "node:process";
import { args, env, exit, onSignal, runtimeName, runtimeVersion } from "../src/runtime/process.ts";
import { createSignalingServer } from "../src/signaling/server.ts";
import { WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { packetPathFigures } from "../src/transport/packet_path.ts";
import { Kind } from "../src/wire/kinds.ts";
import "../src/transport/messages.ts";
import { launcher, type RuntimeKind } from "../test/support/cluster.ts";
import { contextSwitches, flag, loadAverage, quantile, schedCpuNs, sleep } from "./_cluster.ts";
import { benchTransport, startBenchChild } from "./_transport.ts";

const argv = args();
const ROUNDS = Number(flag(argv, "rounds", "3000"));
const WARMUP = Number(flag(argv, "warmup", "1000"));
const BYTES = 150;
const PEER = flag(argv, "peer", runtimeName()) as RuntimeKind;
const MODES = flag(argv, "only", "udp,raw,shoal").split(",");
const CHILD_FLAGS = flag(argv, "child-flags", "").split(" ").filter((x) => x !== "");

/**
 * UDP datagrams this process sent: counted on dgram's Socket prototype, plus those werift's
 * sockets sent straight to Bun's native socket (packet_path.ts fastUdpSend).
 */
let dgramSends = 0;
const sentDatagrams = () => dgramSends + packetPathFigures().udpFast;
{
  // deno-lint-ignore no-explicit-any
  const proto = (dgram as any).Socket.prototype;
  const send = proto.send;
  proto.send = function (...a: unknown[]) {
    dgramSends++;
    return send.apply(this, a);
  };
}

// ------------------------------------------------------------------ child

/** Echoes what arrives; prints `ready …` once it listens and `sent N` (its datagrams) on "count" from stdin. */
async function child(mode: string): Promise<void> {
  // SIGTERM ends the child normally (a --cpu-prof profile is written at exit).
  onSignal("SIGTERM", () => exit(0));
  if (mode === "udp") {
    const s = dgram.createSocket("udp4");
    s.on("message", (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
    console.log(`ready ${s.address().port}`);
  } else if (mode === "raw") {
    const peer = new WebRtcPeer({ iceServers: [] });
    peer.events.message = (bytes) => peer.send(bytes);
    const answer = await peer.acceptOffer(JSON.parse(env("SHOAL_BENCH_OFFER")!));
    console.log(`ready ${JSON.stringify(answer)}`);
  } else {
    const { transport: t } = await benchTransport(env("SHOAL_BENCH_SIGNAL")!, "bench-hop", "b");
    t.setHandlers({
      message: (from, m) => {
        if (m.t === Kind.TestData) t.send(from, m);
      },
      linkUp() {},
      linkDown() {},
    });
    console.log("ready");
  }
  // Stays until killed; reports its datagram count every 200 ms.
  for (;;) {
    console.log(`sent ${sentDatagrams()}`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------ parent

interface Side {
  cpuUs: number;
  mainCpuUs: number;
  switches: number;
  datagrams: number;
}

interface Row {
  mode: string;
  p10Us: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  parent: Side;
  child: Side;
}

interface Peer {
  pid: number;
  line(prefix: string): Promise<string>;
  lastSent(): number;
  kill(): Promise<void>;
}

function startChild(mode: string, extraEnv: Record<string, string>): Peer {
  let sent = 0;
  const script = new URL(import.meta.url).pathname;
  const cmd = [...launcher(PEER, CHILD_FLAGS), script, "--role", "child", "--mode", mode];
  const c = startBenchChild(cmd, extraEnv, "child", (l) => {
    if (!l.startsWith("sent ")) return false;
    sent = Number(l.slice(5));
    return true;
  });
  return {
    pid: c.handle.pid,
    line: (prefix) => c.waitLine(prefix),
    lastSent: () => sent,
    async kill() {
      c.handle.kill("SIGTERM");
      await Promise.race([c.handle.exited, sleep(5_000)]);
      c.handle.kill();
    },
  };
}

/** A sequential ping-pong: `send` one message, `arm` is called with the resolver of its reply. */
async function measure(
  mode: string,
  peer: Peer,
  send: () => void,
  replies: { resolve: () => void },
): Promise<Row> {
  const once = () => new Promise<void>((r) => (replies.resolve = r));
  for (let i = 0; i < WARMUP; i++) {
    const p = once();
    send();
    await p;
  }
  await sleep(300); // the child's datagram report catches up
  const cpu0 = [schedCpuNs("self"), schedCpuNs(peer.pid)], sw0 = [contextSwitches("self"), contextSwitches(peer.pid)];
  const dg0 = [sentDatagrams(), peer.lastSent()];
  const rtts: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const p = once();
    const t0 = performance.now();
    send();
    await p;
    rtts.push(performance.now() - t0);
  }
  const cpu1 = [schedCpuNs("self"), schedCpuNs(peer.pid)], sw1 = [contextSwitches("self"), contextSwitches(peer.pid)];
  const dg1p = sentDatagrams();
  await sleep(450);
  const dg1 = [dg1p, peer.lastSent()];
  const side = (i: number): Side => ({
    cpuUs: (cpu1[i].all - cpu0[i].all) / 1000 / ROUNDS,
    mainCpuUs: (cpu1[i].main - cpu0[i].main) / 1000 / ROUNDS,
    switches: (sw1[i].main - sw0[i].main) / ROUNDS,
    datagrams: (dg1[i] - dg0[i]) / ROUNDS,
  });
  const us = (ms: number) => ms * 1000;
  return {
    mode,
    p10Us: us(quantile(rtts, 0.1)),
    p50Us: us(quantile(rtts, 0.5)),
    p99Us: us(quantile(rtts, 0.99)),
    meanUs: us(rtts.reduce((a, b) => a + b, 0) / rtts.length),
    parent: side(0),
    child: side(1),
  };
}

async function benchUdp(): Promise<Row> {
  const peer = startChild("udp", {});
  const port = Number((await peer.line("ready ")).slice(6));
  const s = dgram.createSocket("udp4");
  const replies = { resolve: () => {} };
  s.on("message", () => replies.resolve());
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const msg = new Uint8Array(BYTES);
  try {
    return await measure("udp", peer, () => s.send(msg, port, "127.0.0.1"), replies);
  } finally {
    s.close();
    await peer.kill();
  }
}

async function benchRaw(): Promise<Row> {
  const a = new WebRtcPeer({ iceServers: [] });
  const opened = new Promise<void>((r) => (a.events.open = r));
  const offer = await a.createOffer();
  const peer = startChild("raw", { SHOAL_BENCH_OFFER: JSON.stringify(offer) });
  await a.acceptAnswer(JSON.parse((await peer.line("ready ")).slice(6)));
  await opened;
  const replies = { resolve: () => {} };
  a.events.message = () => replies.resolve();
  const msg = new Uint8Array(BYTES);
  try {
    return await measure("raw", peer, () => a.send(msg), replies);
  } finally {
    await a.close();
    await peer.kill();
  }
}

async function benchShoal(): Promise<Row> {
  const server = await createSignalingServer({ port: 0 });
  const peer = startChild("shoal", { SHOAL_BENCH_SIGNAL: server.url });
  await peer.line("ready");
  const { transport: a, close } = await benchTransport(server.url, "bench-hop", "a");
  const replies = { resolve: () => {} };
  a.setHandlers({ message: () => replies.resolve(), linkUp() {}, linkDown() {} });
  await a.connect("b");
  // TestData of this many bytes encodes to about BYTES bytes.
  const data = new Uint8Array(BYTES - 12);
  let seq = 0;
  try {
    return await measure("shoal", peer, () => {
      a.send("b", { t: Kind.TestData, seq: seq++, data });
    }, replies);
  } finally {
    await close();
    await peer.kill();
    await server.close();
  }
}

if (flag(argv, "role", "") === "child") {
  await child(flag(argv, "mode", ""));
} else {
  const rows: Row[] = [];
  const loadBefore = loadAverage();
  for (const mode of MODES) {
    if (mode === "udp") rows.push(await benchUdp());
    else if (mode === "raw") rows.push(await benchRaw());
    else if (mode === "shoal") rows.push(await benchShoal());
  }
  const f = (x: number, d = 0) => x.toFixed(d);
  console.log(
    `\nhop bench: ${runtimeName()} ↔ ${PEER}, ${BYTES}-byte messages, ${ROUNDS} sequential round trips after ${WARMUP}`,
  );
  console.log(`load average: ${loadBefore} → ${loadAverage()}`);
  console.log(
    "| mode | RTT p10 / p50 / p99 µs | CPU µs per round trip: this side (main) / child (main) | wake-ups per round trip: this / child | datagrams sent per round trip: this / child |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.mode} | ${f(r.p10Us)} / ${f(r.p50Us)} / ${f(r.p99Us)} | ${f(r.parent.cpuUs)} (${
        f(r.parent.mainCpuUs)
      }) / ${f(r.child.cpuUs)} (${f(r.child.mainCpuUs)}) | ${f(r.parent.switches, 2)} / ${f(r.child.switches, 2)} | ${
        f(r.parent.datagrams, 2)
      } / ${f(r.child.datagrams, 2)} |`,
    );
  }
  console.log(
    JSON.stringify({ bench: "hop_processes", runtime: runtimeVersion(), peer: PEER, load: loadAverage(), rows }),
  );
  nodeProcess.exit(0);
}
