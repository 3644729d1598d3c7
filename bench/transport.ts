/**
 * Transport benchmark: connect time, round-trip time and one-way throughput of 100-byte
 * messages between two peers in one process, for raw werift (one data-channel message per
 * payload, and payloads packed into 12 KB frames) and for the Shoal WebRTC transport
 * (CBOR-encoded, validated messages, coalesced per tick, chunking, back-pressure).
 *
 *   bun run bench/transport.ts          deno run -A bench/transport.ts
 *
 * Besides wall-clock messages/s, it reports messages per CPU-second of this process: on a
 * machine shared with other work, that figure moves much less than the wall-clock one.
 *
 * Options: --runs N (repeats of each throughput figure, median reported; default 3),
 * --messages N (one-way messages per run; default 200000 under Bun, 100000 under Deno),
 * --only raw|shoal (run one half, e.g. under a profiler).
 */
import { loadavg } from "node:os";
import process from "node:process";
import { args, exit, runtimeName } from "../src/runtime/process.ts";
import { SignalingClient } from "../src/signaling/client.ts";
import { createSignalingServer } from "../src/signaling/server.ts";
import { WebRtcTransport } from "../src/transport/webrtc.ts";
import { sackPolicyFigures, WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { Kind } from "../src/wire/kinds.ts";
import "../src/transport/messages.ts";
import { fmt, median, PAYLOAD, sendRawPayloads, sendTestMessages } from "./_transport.ts";

const argv = args();
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const runtime = runtimeName();
const RUNS = opt("runs", 3);
const N = opt("messages", runtime === "deno" ? 100_000 : 200_000);
const ONLY = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : "";
const RTT_ROUNDS = 2000;

// ---------------------------------------------------------------- raw werift

async function rawPair(): Promise<{ a: WebRtcPeer; b: WebRtcPeer; connectMs: number }> {
  const t0 = performance.now();
  const a = new WebRtcPeer({ iceServers: [] }), b = new WebRtcPeer({ iceServers: [] });
  const opened = Promise.all([
    new Promise<void>((r) => (a.events.open = r)),
    new Promise<void>((r) => (b.events.open = r)),
  ]);
  const offer = await a.createOffer();
  const answer = await b.acceptOffer(offer);
  await a.acceptAnswer(answer);
  await opened;
  return { a, b, connectMs: performance.now() - t0 };
}

async function rawRtt(a: WebRtcPeer, b: WebRtcPeer): Promise<number> {
  const msg = new Uint8Array(PAYLOAD);
  b.events.message = (bytes) => b.send(bytes);
  const times: number[] = [];
  for (let i = 0; i < RTT_ROUNDS; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      a.events.message = () => r();
      a.send(msg);
    });
    times.push(performance.now() - t0);
  }
  b.events.message = () => {};
  return median(times) * 1000;
}

/** One-way: `perFrame` payloads per data-channel message, ≤ 64 KiB buffered. */
async function rawOneWay(a: WebRtcPeer, b: WebRtcPeer, n: number, perFrame: number): Promise<number> {
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  b.events.message = (bytes) => {
    got += bytes.byteLength / PAYLOAD;
    if (got >= n) done();
  };
  const t0 = performance.now();
  await sendRawPayloads(a, n, perFrame);
  await finished;
  const s = (performance.now() - t0) / 1000;
  b.events.message = () => {};
  return n / s;
}

// ---------------------------------------------------------------- Shoal transport

async function shoalPair(serverUrl: string, tag: string) {
  const mk = async (id: string) => {
    const sc = new SignalingClient({ url: serverUrl, cluster: `bench-${tag}`, self: id });
    await sc.start();
    return {
      t: new WebRtcTransport({ self: id, cluster: `bench-${tag}`, secret: "bench", signaling: sc, iceServers: [] }),
      sc,
    };
  };
  const A = await mk("a"), B = await mk("b");
  const t0 = performance.now();
  await A.t.connect("b");
  const connectMs = performance.now() - t0;
  return {
    a: A.t,
    b: B.t,
    connectMs,
    close: async () => {
      await A.t.close();
      await B.t.close();
      A.sc.close();
      B.sc.close();
    },
  };
}

async function shoalRtt(a: WebRtcTransport, b: WebRtcTransport): Promise<number> {
  const data = new Uint8Array(PAYLOAD);
  let onReply: () => void = () => {};
  b.setHandlers({ message: (from, m) => b.send(from, m), linkUp() {}, linkDown() {} });
  a.setHandlers({ message: () => onReply(), linkUp() {}, linkDown() {} });
  const times: number[] = [];
  for (let i = 0; i < RTT_ROUNDS; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      onReply = r;
      a.send("b", { t: Kind.TestData, seq: i, data });
    });
    times.push(performance.now() - t0);
  }
  return median(times) * 1000;
}

async function shoalOneWay(a: WebRtcTransport, b: WebRtcTransport, n: number): Promise<number> {
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  b.setHandlers({
    message: () => {
      if (++got === n) done();
    },
    linkUp() {},
    linkDown() {},
  });
  const t0 = performance.now();
  await sendTestMessages(a, "b", n);
  await finished;
  return n / ((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------- main

const progress = (s: string) => console.error(`[bench] ${s}`);
const rows: Array<{ name: string; connectMs: number; rttUs: number; msgsPerS: number; msgsPerCpuS: number }> = [];
/** Runs `fn` (which returns msgs/s for `n` messages) and also returns messages per CPU-second. */
async function measured(n: number, fn: () => Promise<number>): Promise<[number, number]> {
  const c0 = process.cpuUsage();
  const rate = await fn();
  const c = process.cpuUsage(c0);
  return [rate, n / ((c.user + c.system) / 1e6)];
}

if (ONLY !== "shoal") {
  const connects: number[] = [];
  let pair = await rawPair();
  connects.push(pair.connectMs);
  for (let i = 0; i < 2; i++) {
    const p = await rawPair();
    connects.push(p.connectMs);
    await p.a.close();
    await p.b.close();
  }
  progress(`raw connect ${fmt(median(connects))} ms`);
  const rtt = await rawRtt(pair.a, pair.b);
  progress(`raw rtt ${fmt(rtt)} µs`);
  await rawOneWay(pair.a, pair.b, 2_000, 1); // warm-up
  const unbatched: Array<[number, number]> = [];
  for (let r = 0; r < RUNS; r++) unbatched.push(await measured(10_000, () => rawOneWay(pair.a, pair.b, 10_000, 1)));
  rows.push({
    name: "raw werift, one message per payload",
    connectMs: median(connects),
    rttUs: rtt,
    msgsPerS: median(unbatched.map((x) => x[0])),
    msgsPerCpuS: median(unbatched.map((x) => x[1])),
  });
  await pair.a.close();
  await pair.b.close();
  pair = await rawPair();
  await rawOneWay(pair.a, pair.b, 20_000, 120);
  const batched: Array<[number, number]> = [];
  for (let r = 0; r < RUNS; r++) batched.push(await measured(N, () => rawOneWay(pair.a, pair.b, N, 120)));
  rows.push({
    name: "raw werift, payloads packed in 12 KB frames",
    connectMs: median(connects),
    rttUs: rtt,
    msgsPerS: median(batched.map((x) => x[0])),
    msgsPerCpuS: median(batched.map((x) => x[1])),
  });
  await pair.a.close();
  await pair.b.close();
}

if (ONLY !== "raw") {
  const server = await createSignalingServer({ port: 0 });
  const connects: number[] = [];
  for (let i = 0; i < 2; i++) {
    const p = await shoalPair(server.url, `c${i}`);
    connects.push(p.connectMs);
    await p.close();
  }
  const p = await shoalPair(server.url, "main");
  connects.push(p.connectMs);
  const rtt = await shoalRtt(p.a, p.b);
  await shoalOneWay(p.a, p.b, 20_000); // warm-up
  const before = p.a.stats();
  const runs: Array<[number, number]> = [];
  for (let r = 0; r < RUNS; r++) runs.push(await measured(N, () => shoalOneWay(p.a, p.b, N)));
  rows.push({
    name: "Shoal transport (CBOR, validated, coalesced)",
    connectMs: median(connects),
    rttUs: rtt,
    msgsPerS: median(runs.map((x) => x[0])),
    msgsPerCpuS: median(runs.map((x) => x[1])),
  });
  const st = p.a.stats();
  await p.close();
  await server.close();
  const frames = st.framesSent - before.framesSent, msgs = st.messagesSent - before.messagesSent;
  const bytes = st.bytesSent - before.bytesSent;
  console.log(
    `Shoal sender, one-way runs: ${fmt(frames)} frames for ${fmt(msgs)} messages (${
      fmt(msgs / Math.max(1, frames), 1)
    } per frame, ${fmt(bytes / Math.max(1, msgs), 1)} bytes per message on the wire)`,
  );
}

const sack = sackPolicyFigures();
console.log(
  `SACK policy: ${sack.tuned} associations tuned, ${sack.untuned} untuned; ${fmt(sack.sacks)} SACKs for ${
    fmt(sack.dataPackets)
  } DATA packets received`,
);
console.log(
  `\ntransport bench — ${runtime}, ${PAYLOAD}-byte messages, one process, loopback (medians of ${RUNS} runs)`,
);
const [l1, l5] = loadAverage();
console.log(`load average at the end: ${l1} (1 min), ${l5} (5 min)`);
console.log("| transport | connect (ms) | RTT median (µs) | one-way msgs/s | one-way MB/s | msgs per CPU-s |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${fmt(r.connectMs)} | ${fmt(r.rttUs)} | ${fmt(r.msgsPerS)} | ${
      fmt((r.msgsPerS * PAYLOAD) / 1e6, 1)
    } | ${fmt(r.msgsPerCpuS)} |`,
  );
}

function loadAverage(): [string, string] {
  try {
    const l = loadavg();
    return [l[0].toFixed(2), l[1].toFixed(2)];
  } catch {
    return ["?", "?"];
  }
}
exit(0);
