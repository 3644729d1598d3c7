/**
 * Transport benchmark between two processes: one connection, sender in this process,
 * receiver in a child process of the same runtime (each side has its own core, as two
 * members on one machine would). One-way throughput of 100-byte messages for raw werift
 * (payloads packed into 12 KB frames, ≤ 64 KiB buffered) and for the Shoal WebRTC
 * transport (CBOR-encoded, validated messages, coalesced per tick, back-pressure).
 *
 *   bun run bench/transport_processes.ts        deno run -A bench/transport_processes.ts
 *
 * Options: --runs N (default 5; median reported), --messages N (per run; default 300000
 * under Bun, 150000 under Deno), --only raw|shoal.
 *
 * The sender times each run from its first send until the receiver reports the last
 * message over its stdout; CPU per message is reported for both sides.
 */
import process from "node:process";
import { loadavg } from "node:os";
import { args, env, runtimeName } from "../src/runtime/process.ts";
import { runtimeScriptCommand } from "../src/runtime/spawn.ts";
import { createSignalingServer } from "../src/signaling/server.ts";
import { WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import "../src/transport/messages.ts";
import {
  type BenchChild,
  benchTransport,
  fmt,
  median,
  PAYLOAD,
  sendRawPayloads,
  sendTestMessages,
  sleep,
  startBenchChild,
} from "./_transport.ts";

const argv = args();
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const runtime = runtimeName();
const PER_FRAME = 120;
const WARMUP = 30_000;

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

// ------------------------------------------------------------------ receiver (child)

/**
 * The child: receives `plan` batches of messages (warm-up first) and prints
 * `got <run> <cpuMicros>` after each. Raw mode answers the offer in SHOAL_BENCH_OFFER on
 * stdout; Shoal mode joins the signaling server in SHOAL_BENCH_SIGNAL as member "b".
 */
async function receiver(mode: string, plan: number[]): Promise<void> {
  let run = 0, got = 0, cpu0 = cpuUs();
  const count = (n: number) => {
    got += n;
    while (run < plan.length && got >= plan[run]) {
      got -= plan[run];
      const c = cpuUs();
      console.log(`got ${run} ${c - cpu0}`);
      cpu0 = c;
      run++;
    }
  };
  if (mode === "raw") {
    const peer = new WebRtcPeer({ iceServers: [] });
    peer.events.message = (bytes) => count(bytes.byteLength / PAYLOAD);
    const answer = await peer.acceptOffer(JSON.parse(env("SHOAL_BENCH_OFFER")!));
    console.log(`answer ${JSON.stringify(answer)}`);
  } else {
    const { transport: t } = await benchTransport(env("SHOAL_BENCH_SIGNAL")!, "bench-2p", "b");
    t.setHandlers({ message: () => count(1), linkUp() {}, linkDown() {} });
    console.log("ready");
  }
  while (run < plan.length) await sleep(50);
  await sleep(200);
  process.exit(0);
}

// ------------------------------------------------------------------ sender (parent)

function startReceiver(mode: string, plan: number[], extraEnv: Record<string, string>): BenchChild {
  const cmd = [...runtimeScriptCommand(new URL(import.meta.url).pathname), "--role", "receiver", "--mode", mode];
  return startBenchChild([...cmd, "--plan", plan.join(",")], extraEnv, "receiver");
}

interface Figures {
  msgsPerS: number;
  senderCpuUsPerMsg: number;
  receiverCpuUsPerMsg: number;
}

async function measureRuns(child: BenchChild, plan: number[], sendAll: (n: number) => Promise<void>): Promise<Figures> {
  const rates: number[] = [], sCpu: number[] = [], rCpu: number[] = [];
  for (let r = 0; r < plan.length; r++) {
    const t0 = performance.now();
    const c0 = cpuUs();
    await sendAll(plan[r]);
    const line = await child.waitLine(`got ${r} `);
    const s = (performance.now() - t0) / 1000;
    if (r === 0) continue; // warm-up
    rates.push(plan[r] / s);
    sCpu.push((cpuUs() - c0) / plan[r]);
    rCpu.push(Number(line.split(" ")[2]) / plan[r]);
  }
  return { msgsPerS: median(rates), senderCpuUsPerMsg: median(sCpu), receiverCpuUsPerMsg: median(rCpu) };
}

async function benchRaw(plan: number[]): Promise<Figures> {
  const a = new WebRtcPeer({ iceServers: [] });
  const opened = new Promise<void>((r) => (a.events.open = r));
  const offer = await a.createOffer();
  const child = startReceiver("raw", plan, { SHOAL_BENCH_OFFER: JSON.stringify(offer) });
  const answerLine = await child.waitLine("answer ");
  await a.acceptAnswer(JSON.parse(answerLine.slice("answer ".length)));
  await opened;
  const figures = await measureRuns(child, plan, (n) => sendRawPayloads(a, n, PER_FRAME));
  await a.close();
  child.handle.kill();
  return figures;
}

async function benchShoal(plan: number[]): Promise<Figures> {
  const server = await createSignalingServer({ port: 0 });
  const child = startReceiver("shoal", plan, { SHOAL_BENCH_SIGNAL: server.url });
  await child.waitLine("ready");
  const { transport: a, close } = await benchTransport(server.url, "bench-2p", "a");
  a.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
  await a.connect("b");
  const figures = await measureRuns(child, plan, (n) => sendTestMessages(a, "b", n));
  await close();
  child.handle.kill();
  await server.close();
  return figures;
}

if (opt("role") === "receiver") {
  await receiver(opt("mode")!, opt("plan")!.split(",").map(Number));
} else {
  const runs = Number(opt("runs") ?? 5);
  const n = Number(opt("messages") ?? (runtime === "deno" ? 150_000 : 300_000));
  const only = opt("only");
  const plan = [WARMUP, ...Array.from({ length: runs }, () => n)];
  const rows: Array<[string, Figures]> = [];
  if (only !== "shoal") rows.push(["raw werift, payloads packed in 12 KB frames", await benchRaw(plan)]);
  if (only !== "raw") rows.push(["Shoal transport (CBOR, validated, coalesced)", await benchShoal(plan)]);
  const l = loadavg();
  console.log(
    `\ntransport bench, two processes — ${runtime} → ${runtime}, ${PAYLOAD}-byte messages, loopback (medians of ${runs} runs of ${
      fmt(n)
    })`,
  );
  console.log(`load average at the end: ${l[0].toFixed(2)} (1 min), ${l[1].toFixed(2)} (5 min)`);
  console.log("| transport | one-way msgs/s | one-way MB/s | sender CPU µs/msg | receiver CPU µs/msg |");
  console.log("|---|---|---|---|---|");
  for (const [name, f] of rows) {
    console.log(
      `| ${name} | ${fmt(f.msgsPerS)} | ${fmt((f.msgsPerS * PAYLOAD) / 1e6, 1)} | ${fmt(f.senderCpuUsPerMsg, 2)} | ${
        fmt(f.receiverCpuUsPerMsg, 2)
      } |`,
    );
  }
  process.exit(0);
}
