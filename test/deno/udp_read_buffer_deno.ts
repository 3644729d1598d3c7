/**
 * Deno's cut UDP read buffer (CI: `deno run -A test/deno/udp_read_buffer_deno.ts`;
 * src/transport/packet_path.ts, `cutDenoReadBuffer`): a socket so cut reads each datagram into
 * `DENO_DATAGRAM_READ_BYTES`, every datagram up to that size arrives whole, byte for byte, and
 * a longer one (what a hostile sender might try) arrives cut short, never as more than the buffer,
 * and the socket goes on receiving. Exits non-zero on any failure.
 */
import dgram from "node:dgram";
import { cutDenoReadBuffer, DENO_DATAGRAM_READ_BYTES, packetPathFigures } from "../../src/transport/packet_path.ts";
import { until } from "../support/until.ts";

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const bound = (s: dgram.Socket) => new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
const tx = dgram.createSocket("udp4"), rx = dgram.createSocket("udp4");
try {
  check(!cutDenoReadBuffer(rx), "an unbound socket is left alone");
  await bound(tx);
  await bound(rx);
  check(rx.getRecvBufferSize() === 64 * 1024, `Deno's default read buffer (${rx.getRecvBufferSize()})`);
  const before = packetPathFigures().denoReadBufferCut;
  check(cutDenoReadBuffer(rx), "cut");
  check(rx.getRecvBufferSize() === DENO_DATAGRAM_READ_BYTES, `read buffer ${rx.getRecvBufferSize()}`);
  check(packetPathFigures().denoReadBufferCut === before + 1, "counted");

  const got: Uint8Array[] = [];
  rx.on("message", (m: Uint8Array) => got.push(new Uint8Array(m)));
  const port = rx.address().port;
  // The datagram read before the cut was already waiting with the old size: one to flush it.
  tx.send(new Uint8Array([0]), port, "127.0.0.1");
  await until(() => got.length === 1 || undefined, 10_000, "first datagram", 5);
  got.length = 0;

  const sizes = [1, 100, 1228, 1300, 2048, 4096, DENO_DATAGRAM_READ_BYTES - 1, DENO_DATAGRAM_READ_BYTES];
  const sent = sizes.map((n, i) => new Uint8Array(n).map((_, j) => (i * 31 + j) % 251));
  for (const d of sent) {
    tx.send(d, port, "127.0.0.1");
    await until(() => got.length === sent.indexOf(d) + 1 || undefined, 10_000, `datagram of ${d.length} B`, 5);
  }
  sent.forEach((d, i) => {
    check(got[i].length === d.length && got[i].every((v, j) => v === d[j]), `datagram ${i} (${d.length} B) intact`);
  });

  // Longer than the buffer: cut short, and the socket keeps receiving.
  got.length = 0;
  tx.send(new Uint8Array(DENO_DATAGRAM_READ_BYTES * 2).fill(9), port, "127.0.0.1");
  tx.send(new Uint8Array([1, 2, 3]), port, "127.0.0.1");
  await until(() => got.length === 2 || undefined, 10_000, "an oversized datagram and the next", 5);
  check(got[0].length <= DENO_DATAGRAM_READ_BYTES, `oversized datagram read as ${got[0].length} B`);
  check(got[1].length === 3 && got[1][2] === 3, "the next datagram whole");
  console.log(`udp read buffer under Deno: ok (oversized datagram read as ${got[0].length} B)`);
} catch (e) {
  console.error(e);
  Deno.exit(1);
} finally {
  tx.close();
  rx.close();
}
Deno.exit(0);
