/**
 * Where the CPU of a put goes between real processes (issue 16): 3 data member processes
 * of this runtime (backup 1) and this process as a lite client over WebRTC, 100-byte values, `--in-flight`
 * (64) callers for `--seconds` (10) s after 2,000 warm-up puts. It prints the puts' latency
 * (p10 / p50 / p99) and, per put, the CPU of
 * each process, and what crossed the network: transport messages and frames (from the
 * members' `/metrics` and the client's counters), UDP datagrams (machine-wide, from
 * /proc/net/snmp, so other work on the machine adds to them), and the client's SCTP
 * packets carrying DATA and SACKs.
 *
 *   bun run bench/put_processes.ts [--seconds 10] [--in-flight 64] [--runs 1]
 *   deno run -A bench/put_processes.ts …
 *   bun run bench/put_processes.ts --member-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"
 *   deno run -A bench/put_processes.ts --inspect-profile /tmp/prof
 *
 * `--member-flags` are given to the members' runtime (space-separated); the members are
 * stopped with two SIGTERMs at the end, so a profile covers their whole life (formation included:
 * use a long `--seconds` for a profile of the put phase). Deno has no `--cpu-prof`: with
 * `--inspect-profile DIR` the members run with `--inspect` and the first run's puts are sampled
 * through the inspector (bench/_inspector.ts), written to DIR as `.cpuprofile` files and
 * summarised (top functions by own time). Ends with one JSON line.
 */
import {
  contextSwitches as switches,
  flag,
  loadAverage,
  minorFaults,
  processCpu,
  quantile,
  runBench,
  sampleOf,
  samplesOf,
  scrapeMetrics,
  startBenchCluster,
  stopForProfiles,
  udpCounter,
} from "./_cluster.ts";
import dgram from "node:dgram";
import { tuneRuntime } from "../src/runtime/tune.ts";
import nodeProcess from "node:process";
import { args, runtimeVersion, writeStderrLine } from "../src/runtime/process.ts";
import { InspectorSession, inspectorUrl, profileTable } from "./_inspector.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { retransmissionFigures, sackPolicyFigures } from "../src/transport/webrtc_peer.ts";
import { sackBundlingFigures } from "../src/transport/sack_bundling.ts";
import type { Member } from "../test/support/cluster.ts";

// The client here is a Shoal lite member: under Bun it runs with the members' engine settings (src/runtime/tune.ts).
tuneRuntime(writeStderrLine);
const argv = args();
const SECONDS = Number(flag(argv, "seconds", "10"));
const IN_FLIGHT = Number(flag(argv, "in-flight", "64"));
const RUNS = Number(flag(argv, "runs", "1"));
const INSPECT_DIR = flag(argv, "inspect-profile", "");
const MEMBER_FLAGS = [
  ...flag(argv, "member-flags", "").split(" ").filter((s) => s !== ""),
  ...(INSPECT_DIR ? ["--inspect=127.0.0.1:0"] : []),
];
const VALUE = "v".repeat(100);
const cpuMs = (pid: number | "self") => processCpu(pid).cpuMs;

/** UDP datagrams this process sent and received (werift's sockets), counted on dgram's Socket prototype. */
const udp = { sent: 0, received: 0 };
{
  // deno-lint-ignore no-explicit-any
  const proto = (dgram as any).Socket.prototype;
  const send = proto.send, emit = proto.emit;
  proto.send = function (...a: unknown[]) {
    udp.sent++;
    return send.apply(this, a);
  };
  proto.emit = function (event: string, ...a: unknown[]) {
    if (event === "message") udp.received++;
    return emit.call(this, event, ...a);
  };
}

/** Counters summed over the members (from /metrics) plus the client's own. */
interface Counts {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  udpOut: number;
  clientDataPackets: number;
  clientSacks: number;
  clientUdpSent: number;
  clientUdpReceived: number;
  clientProbeChunks: number;
  clientBundledSacks: number;
  /** Encoded message bytes sent, by kind (members and client). */
  bytesByKind: Map<string, number>;
}

async function counts(members: Member[], client: { transportStats(): { framesSent: number } }): Promise<Counts> {
  const texts = await Promise.all(members.map(scrapeMetrics));
  const sum = (name: string) => texts.reduce((s, t) => s + sampleOf(t, name, 'direction="sent"'), 0);
  // deno-lint-ignore no-explicit-any
  const own = client.transportStats() as any;
  const sack = sackPolicyFigures();
  const bytesByKind = new Map<string, number>(Object.entries(own.bytesSentByKind ?? {}) as [string, number][]);
  for (const t of texts) {
    for (const [k, v] of samplesOf(t, "shoal_transport_message_bytes_total", "kind")) {
      bytesByKind.set(k, (bytesByKind.get(k) ?? 0) + v);
    }
  }
  return {
    framesSent: sum("shoal_transport_frames_total") + own.framesSent,
    messagesSent: sum("shoal_transport_messages_total") + own.messagesSent,
    bytesSent: sum("shoal_transport_bytes_total") + own.bytesSent,
    udpOut: udpCounter("OutDatagrams"),
    clientDataPackets: sack.dataPackets,
    clientSacks: sack.sacks,
    clientUdpSent: udp.sent,
    clientUdpReceived: udp.received,
    clientProbeChunks: retransmissionFigures().probeChunks,
    clientBundledSacks: sackBundlingFigures().bundled,
    bytesByKind,
  };
}

/** An inspector session on member `m` (started with `--inspect`). */
async function inspect(m: Member): Promise<InspectorSession> {
  const url = inspectorUrl(m.stderr());
  if (!url) throw new Error(`member ${m.name} printed no inspector address (is it Deno, started with --inspect?)`);
  return await InspectorSession.connect(url);
}

/** Stops the profilers, writes one `.cpuprofile` per member into INSPECT_DIR and prints their top functions. */
async function saveProfiles(members: Member[], sessions: InspectorSession[]): Promise<void> {
  mkdirSync(INSPECT_DIR, { recursive: true });
  for (let i = 0; i < sessions.length; i++) {
    const profile = await sessions[i].stop();
    sessions[i].close();
    const file = `${INSPECT_DIR}/member-${members[i].name}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.log(`member ${members[i].name}: ${file}; busy samples, self and total:\n${profileTable(profile, 25)}`);
  }
}

await runBench(async () => {
  const { members, client } = await startBenchCluster(`put-processes-${Date.now()}`, 100, {
    runtimeFlags: MEMBER_FLAGS,
  });
  try {
    const map = client.getMap<string, string>("put-processes");
    for (let i = 0; i < 2000; i++) await map.set(`k${i % 1000}`, VALUE);
    const pids = members.map((m) => m.child.pid);
    console.log(
      `member pids: ${pids.join(" ")}; this process: ${nodeProcess.pid}; urls: ${members.map((m) => m.url).join(" ")}`,
    );
    // Idle: what the processes use per second with no puts (ticks, heartbeats, timers), for as long as one run.
    const idle0 = pids.map(cpuMs), idleSelf0 = cpuMs("self"), idleStart = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const idleS = (performance.now() - idleStart) / 1000;
    const idleMsPerS = pids.map((p, i) => (cpuMs(p) - idle0[i]) / idleS);
    const idleSelfMsPerS = (cpuMs("self") - idleSelf0) / idleS;
    console.log(
      `idle: CPU ms/s: members ${idleMsPerS.map((x) => x.toFixed(1)).join(" + ")}, client ${
        idleSelfMsPerS.toFixed(1)
      }; load ${loadAverage()}`,
    );
    const results = [];
    for (let run = 0; run < RUNS; run++) {
      const sessions = run === 0 && INSPECT_DIR ? await Promise.all(members.map(inspect)) : [];
      await Promise.all(sessions.map((s) => s.start()));
      const load = loadAverage();
      const c0 = await counts(members, client);
      const cpu0 = pids.map(cpuMs), self0 = cpuMs("self");
      const sw0 = [...pids, "self" as const].map(switches);
      const pf0 = [...pids, "self" as const].map(minorFaults);
      let puts = 0, next = 0;
      /** Each put's latency, µs (kept in order; at most 1,000,000). */
      const lat: number[] = [];
      const start = performance.now(), stopAt = start + SECONDS * 1000;
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < stopAt) {
          const t0 = performance.now();
          await map.set(`k${next++ % 1000}`, VALUE);
          if (lat.length < 1_000_000) lat.push((performance.now() - t0) * 1000);
          puts++;
        }
      }));
      const elapsed = performance.now() - start;
      if (sessions.length > 0) await saveProfiles(members, sessions);
      const cpu = pids.map((p, i) => cpuMs(p) - cpu0[i]), self = cpuMs("self") - self0;
      const sw = [...pids, "self" as const].map(switches).map((x, i) => ({
        main: (x.main - sw0[i].main) / puts,
        all: (x.all - sw0[i].all) / puts,
      }));
      const faults = [...pids, "self" as const].map((p, i) => (minorFaults(p) - pf0[i]) / puts);
      const c1 = await counts(members, client);
      const per = (k: Exclude<keyof Counts, "bytesByKind">) => (c1[k] - c0[k]) / puts;
      /** Encoded message bytes per put by kind, largest first (kinds under 1 B per put left out). */
      const bytesPerPutByKind = Object.fromEntries(
        [...c1.bytesByKind].map(([k, v]) => [k, (v - (c0.bytesByKind.get(k) ?? 0)) / puts] as const)
          .filter(([, v]) => v >= 1).sort((a, b) => b[1] - a[1]),
      );
      const r = {
        load,
        putsPerS: puts / (elapsed / 1000),
        /** Put latency p10 / p50 / p99, µs (p10 moves least with the machine's load). */
        latencyUs: [0.1, 0.5, 0.99].map((q) => quantile(lat, q)),
        memberCpuUsPerPut: cpu.map((ms) => ms * 1000 / puts),
        membersCpuUsPerPut: cpu.reduce((a, b) => a + b, 0) * 1000 / puts,
        clientCpuUsPerPut: self * 1000 / puts,
        messagesPerPut: per("messagesSent"),
        framesPerPut: per("framesSent"),
        bytesPerFrame: (c1.bytesSent - c0.bytesSent) / (c1.framesSent - c0.framesSent),
        udpDatagramsPerPut: per("udpOut"),
        clientDataPacketsPerPut: per("clientDataPackets"),
        clientSacksPerPut: per("clientSacks"),
        clientUdpSentPerPut: per("clientUdpSent"),
        clientUdpReceivedPerPut: per("clientUdpReceived"),
        clientProbeChunksPerPut: per("clientProbeChunks"),
        clientBundledSacksPerPut: per("clientBundledSacks"),
        bytesPerPutByKind,
        /** Context switches per put of each member and the client (last): main thread, all threads. */
        switchesPerPut: sw,
        /** Minor page faults per put of each member and the client (last). */
        faultsPerPut: faults,
      };
      results.push(r);
      const f = (x: number, d = 1) => x.toFixed(d);
      console.log(
        `run ${run + 1}: ${f(r.putsPerS, 0)} puts/s, latency p10 / p50 / p99 ${
          r.latencyUs.map((x) => f(x, 0)).join(" / ")
        } µs; CPU µs/put: members ${f(r.membersCpuUsPerPut, 0)} (${
          r.memberCpuUsPerPut.map((x) => f(x, 0)).join(" + ")
        }), client ${f(r.clientCpuUsPerPut, 0)}; per put: ${f(r.messagesPerPut, 2)} messages, ${
          f(r.framesPerPut, 2)
        } frames (${f(r.bytesPerFrame, 0)} B each), ${f(r.udpDatagramsPerPut, 2)} UDP datagrams (machine-wide); ` +
          `client: ${f(r.clientDataPacketsPerPut, 2)} DATA packets and ${
            f(r.clientSacksPerPut, 2)
          } SACKs received/sent, ` +
          `UDP datagrams ${f(r.clientUdpSentPerPut, 2)} sent, ${f(r.clientUdpReceivedPerPut, 2)} received, ${
            f(r.clientProbeChunksPerPut, 3)
          } chunks sent again by probes, ${f(r.clientBundledSacksPerPut, 2)} SACKs bundled with DATA per put; ` +
          `message bytes per put: ${
            Object.entries(r.bytesPerPutByKind).map(([k, v]) => `${k} ${f(v, 0)}`).join(", ")
          }; ` +
          `context switches per put (main thread / all threads): ${
            r.switchesPerPut.map((x) => `${f(x.main, 2)}/${f(x.all, 2)}`).join(" ")
          }; page faults per put: ${r.faultsPerPut.map((x) => f(x, 2)).join(" ")}; load ${load} → ${loadAverage()}`,
      );
    }
    console.log(JSON.stringify({
      bench: "put_processes",
      runtime: runtimeVersion(),
      inFlight: IN_FLIGHT,
      idle: { memberCpuMsPerS: idleMsPerS, clientCpuMsPerS: idleSelfMsPerS },
      results,
    }));
  } finally {
    await client.shutdown().catch(() => {});
    const codes = await stopForProfiles(members);
    if (MEMBER_FLAGS.length > 0) console.log(`members stopped: ${codes.join(", ")}`);
  }
});
