/**
 * One WebRTC transport in a lab namespace, for the figures of test/nat/nat_figures_test.ts
 * (`bun run` or `deno run -A`). It joins the lab's signaling server and obeys JSON-line
 * commands on stdin, answering on stdout:
 *
 *   {"cmd":"connect","peer":"p2"}             → {"event":"connected","peer","ok","ms"}  (offer → open)
 *   {"cmd":"route","peer":"p3","via":"pub"}   → {"event":"routed","peer"}
 *   {"cmd":"ping","peer":"p2","n":200}        → {"event":"pinged","peer","n","p50","p90"}  (ms, one at a time)
 *
 * Usage: link_probe.ts --id ID --signal URL --host-address ADDR [--ice URL]…
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { parseIceUrl } from "../../src/cli/ice_url.ts";
import { writeStdoutLine } from "../../src/runtime/process.ts";
import { SignalingClient } from "../../src/signaling/client.ts";
import { WebRtcTransport } from "../../src/transport/webrtc.ts";
import { Kind } from "../../src/wire/kinds.ts";
import "../../src/transport/messages.ts";

const argv = process.argv.slice(2);
const values = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]] : []));
const id = values("id")[0];
const out = (o: Record<string, unknown>) => writeStdoutLine(JSON.stringify(o));

const signaling = new SignalingClient({ url: values("signal")[0], cluster: "natlab", self: id });
await signaling.start();
const t = new WebRtcTransport({
  self: id,
  cluster: "natlab",
  secret: "natlab-probe",
  signaling,
  iceServers: values("ice").map((u) => {
    const s = parseIceUrl(u);
    if ("error" in s) throw new Error(s.error);
    return s;
  }),
  iceAdditionalHostAddresses: values("host-address"),
  connectTimeoutMs: 15_000,
});

const waiting = new Map<number, () => void>();
t.setHandlers({
  message(from, msg) {
    if (msg.t !== Kind.TestEcho) return;
    const seq = msg.seq as number;
    if (msg.reply) t.send(from, { t: Kind.TestEcho, seq, reply: false });
    else waiting.get(seq)?.();
  },
  linkUp() {},
  linkDown() {},
});

let nextSeq = 0;
function roundTrip(peer: string): Promise<number> {
  const seq = nextSeq++;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(seq);
      reject(new Error(`no echo ${seq} from ${peer}`));
    }, 5_000);
    waiting.set(seq, () => {
      clearTimeout(timer);
      waiting.delete(seq);
      resolve(performance.now() - t0);
    });
    t.send(peer, { t: Kind.TestEcho, seq, reply: true });
  });
}

const at = (xs: number[], p: number) =>
  Math.round(xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] * 1000) / 1000;

createInterface({ input: process.stdin }).on("line", async (line: string) => {
  let c: { cmd?: string; peer?: string; via?: string; n?: number };
  try {
    c = JSON.parse(line);
  } catch {
    return;
  }
  const peer = String(c.peer);
  if (c.cmd === "connect") {
    const t0 = performance.now();
    try {
      await t.connect(peer);
      out({ event: "connected", peer, ok: true, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      out({ event: "connected", peer, ok: false, error: String(e) });
    }
  } else if (c.cmd === "route") {
    t.setRoute(peer, String(c.via));
    out({ event: "routed", peer });
  } else if (c.cmd === "ping") {
    const rtts: number[] = [];
    try {
      for (let i = 0; i < (c.n ?? 100); i++) rtts.push(await roundTrip(peer));
    } catch (e) {
      out({ event: "pinged", peer, ok: false, error: String(e) });
      return;
    }
    rtts.sort((a, b) => a - b);
    out({ event: "pinged", peer, ok: true, n: rtts.length, p50: at(rtts, 0.5), p90: at(rtts, 0.9) });
  }
});
out({ event: "ready", id });
