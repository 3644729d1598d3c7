/**
 * What receiving a datagram costs under Deno with `node:dgram`'s default read buffer and with
 * the one Shoal gives a connection's sockets (issue 16, src/transport/packet_path.ts,
 * `DENO_DATAGRAM_READ_BYTES`). Deno 2.9 reads each datagram into a new zeroed buffer of the
 * socket's "receive buffer size" (64 KiB unless set). This process sends `--datagrams` (100,000)
 * datagrams of 1,250 bytes over loopback to itself, 32 in flight, and prints the CPU (user +
 * system, this process's threads) per datagram sent and received, for each size, alternating
 * over `--rounds` (5) rounds, and the medians. Under Bun nothing is cut (Bun reads into a
 * buffer of its own): both rows are Bun's one path, a reference.
 *
 *   deno run -A bench/deno_udp.ts [--datagrams 100000] [--rounds 5]
 *   bun run bench/deno_udp.ts …
 *
 * Ends with one JSON line.
 */
import dgram from "node:dgram";
import nodeProcess from "node:process";
import { cutDenoReadBuffer, DENO_DATAGRAM_READ_BYTES } from "../src/transport/packet_path.ts";
import { args, runtimeVersion } from "../src/runtime/process.ts";
import { flag, quantile, runBench } from "./_cluster.ts";

const argv = args();
const DATAGRAMS = Number(flag(argv, "datagrams", "100000"));
const ROUNDS = Number(flag(argv, "rounds", "5"));
const IN_FLIGHT = 32;
const payload = new Uint8Array(1250).fill(7);

function bound(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
}

/** CPU µs per datagram sent and received, with the receiving socket's read buffer cut or not. */
async function round(cut: boolean): Promise<number> {
  const tx = dgram.createSocket("udp4"), rx = dgram.createSocket("udp4");
  await bound(tx);
  await bound(rx);
  if (cut && !cutDenoReadBuffer(rx) && "Deno" in globalThis) throw new Error("read buffer not cut");
  const port = rx.address().port;
  let received = 0, inFlight = 0;
  const before = nodeProcess.cpuUsage();
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (inFlight < IN_FLIGHT && received + inFlight < DATAGRAMS) {
        inFlight++;
        tx.send(payload, port, "127.0.0.1");
      }
    };
    rx.on("message", (msg) => {
      if (msg.length !== payload.length) throw new Error(`datagram of ${msg.length} bytes`);
      received++;
      inFlight--;
      if (received >= DATAGRAMS) resolve();
      else pump();
    });
    // a datagram lost on loopback (receive buffer full) is not waited for
    const refill = setInterval(() => {
      inFlight = 0;
      pump();
    }, 50);
    rx.once("close", () => clearInterval(refill));
    pump();
  });
  const used = nodeProcess.cpuUsage(before);
  tx.close();
  rx.close();
  return (used.user + used.system) / DATAGRAMS;
}

await runBench(async () => {
  const rows: Record<string, number[]> = { default: [], cut: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const cut of [false, true]) {
      const us = await round(cut);
      rows[cut ? "cut" : "default"].push(us);
      console.log(
        `round ${r + 1}: ${cut ? `${DENO_DATAGRAM_READ_BYTES} B` : "default"} read buffer: ${
          us.toFixed(1)
        } µs CPU per datagram`,
      );
    }
  }
  const med = (xs: number[]) => quantile(xs, 0.5);
  console.log(
    `median: default ${med(rows.default).toFixed(1)} µs, ${DENO_DATAGRAM_READ_BYTES} B ${
      med(rows.cut).toFixed(1)
    } µs per datagram`,
  );
  console.log(JSON.stringify({
    bench: "deno_udp",
    runtime: runtimeVersion(),
    datagrams: DATAGRAMS,
    cpuUsPerDatagram: { default: rows.default, cut: rows.cut },
    medians: { default: med(rows.default), cut: med(rows.cut) },
  }));
});
