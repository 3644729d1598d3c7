/**
 * A member process for multi-process transport tests, runnable with `bun run` and
 * `deno run -A`. It opens a WebRtcTransport (with a signaling client when --signal is
 * given), reports events as JSON lines on stdout, and obeys JSON-line commands on stdin:
 *
 *   {"cmd":"connect","peer":"b","via":"a"?,"id":1}   → {"event":"connected","id":1,"ok":…}
 *   {"cmd":"send","to":"b","n":100}                  → sends n TestEcho messages
 *   {"cmd":"counts"}                                  → {"event":"counts","received":{peer:n}}
 *   {"cmd":"stats"}                                   → {"event":"stats",…}
 *   {"cmd":"exit"}                                    → closes and exits 0
 *
 * Usage: node_proc.ts --id ID [--signal URL] [--cluster NAME] [--secret S] [--tamper fp|sig]
 *
 * --tamper makes this member a malicious relay: in every offer it forwards for others it
 * replaces the DTLS fingerprint in the SDP (fp) or the signature (sig).
 */
import { createInterface } from "node:readline";
import process from "node:process";
import { runtimeName, writeStdoutLine } from "../../src/runtime/process.ts";
import { SignalingClient } from "../../src/signaling/client.ts";
import type { SignalRelay } from "../../src/signaling/messages.ts";
import { WebRtcTransport } from "../../src/transport/webrtc.ts";
import { Kind } from "../../src/wire/kinds.ts";
import "../../src/transport/messages.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt?: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const id = flag("id")!;
const signalUrl = flag("signal");
const cluster = flag("cluster", "mp")!;
const secret = flag("secret", "mp-secret")!;
const tamper = flag("tamper");
const out = (o: Record<string, unknown>) => writeStdoutLine(JSON.stringify(o));
const FAKE_FP = "sha-256 " +
  Array.from({ length: 32 }, (_, i) => (i * 7 % 256).toString(16).padStart(2, "0").toUpperCase()).join(":");
const relayHook = !tamper ? undefined : (m: SignalRelay): SignalRelay => {
  const d = m.d as { t: number; sdp: string; sig: string };
  if (d.t !== Kind.SignalOffer) return m;
  if (tamper === "fp") {
    return { ...m, d: { ...d, sdp: d.sdp.replace(/a=fingerprint:\S+ \S+/, `a=fingerprint:${FAKE_FP}`) } };
  }
  return { ...m, d: { ...d, sig: "f".repeat(64) } };
};

const signaling = signalUrl
  ? new SignalingClient({ url: signalUrl, cluster, self: id, backoffMinMs: 100, backoffMaxMs: 500 })
  : undefined;
if (signaling) await signaling.start();
const t = new WebRtcTransport({
  self: id,
  cluster,
  secret,
  signaling,
  iceServers: [],
  connectTimeoutMs: 10_000,
  relayHook,
});
const received: Record<string, number> = {};
const order: Record<string, number> = {};
let outOfOrder = 0;
t.setHandlers({
  message(from, msg) {
    if (msg.t !== Kind.TestEcho) return;
    received[from] = (received[from] ?? 0) + 1;
    const seq = msg.seq as number;
    if (seq !== (order[from] ?? 0)) outOfOrder++;
    order[from] = seq + 1;
  },
  linkUp: (peer) => out({ event: "linkUp", peer }),
  linkDown: (peer, reason) => out({ event: "linkDown", peer, reason }),
});
const sent: Record<string, number> = {};

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line: string) => {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(line);
  } catch {
    return;
  }
  switch (c.cmd) {
    case "connect": {
      const peer = String(c.peer);
      const started = performance.now();
      try {
        await t.connect(peer, c.via ? { via: String(c.via) } : {});
        out({ event: "connected", id: c.id, peer, ok: true, ms: Math.round(performance.now() - started) });
      } catch (err) {
        out({
          event: "connected",
          id: c.id,
          peer,
          ok: false,
          code: (err as { code?: string }).code,
          error: String((err as Error).message),
        });
      }
      break;
    }
    case "send": {
      const to = String(c.to);
      for (let i = 0; i < Number(c.n); i++) {
        const seq = sent[to] ?? 0;
        if (t.send(to, { t: Kind.TestEcho, seq, reply: false })) sent[to] = seq + 1;
      }
      break;
    }
    case "counts":
      out({ event: "counts", received, outOfOrder });
      break;
    case "stats":
      out({
        event: "stats",
        runtime: runtimeName(),
        links: t.links(),
        transport: t.stats(),
        signaling: t.signalingCounters(),
        signalingConnected: signaling?.connected ?? false,
      });
      break;
    case "exit":
      await t.close();
      signaling?.close();
      out({ event: "bye" });
      process.exit(0);
  }
});
out({ event: "ready", id, runtime: runtimeName() });
