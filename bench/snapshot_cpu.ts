/**
 * CPU of snapshot transfers per entry, in one process: the sending side builds every chunk of
 * every partition's snapshot (SnapshotTransfers.create: records → packed, compressed chunks),
 * the receiving side unpacks, assembles and installs them (what backup.ts does per chunk).
 * N entries (100-byte string values, CBOR keys and values) over the 271 partitions, as in the
 * 100k formation of bench/formation.ts. Prints µs per entry for each side, the median and
 * the lowest of --runs runs (default 7; the lowest is the figure least moved by other work on
 * a shared machine), and checks every installed copy's digest. Options: --entries N (default
 * 100000), --runs N.
 */
import { encode } from "cbor-x";
import { silentLogger } from "../src/core/log.ts";
import { newMapCounters } from "../src/map/map_context.ts";
import type { MapContext } from "../src/map/map_context.ts";
import type { MapSnapshotPacked } from "../src/map/messages.ts";
import { PartitionData } from "../src/map/partition_data.ts";
import { SnapshotTransfers } from "../src/map/snapshot_transfer.ts";
import { args } from "../src/runtime/process.ts";
import { flag, loadAverage } from "./_cluster.ts";

const argv = args();
const ENTRIES = Number(flag(argv, "entries", "100000"));
const RUNS = Number(flag(argv, "runs", "7"));
const PARTITIONS = 271;
const VALUE = encode("x".repeat(100));

const ctx = {
  config: { snapshotChunkBytes: 32 * 1024 },
  counters: newMapCounters(),
  clock: { now: () => 0 },
  levels: { keep: () => undefined },
  transport: { send() {} },
  log: silentLogger,
} as unknown as MapContext;

const source: PartitionData[] = [];
for (let p = 0; p < PARTITIONS; p++) source.push(new PartitionData(p));
for (let i = 0; i < ENTRIES; i++) {
  source[i % PARTITIONS].applyEffect({ m: "formation", k: encode(`k${i}`), v: VALUE, at: 1_700_000_000_000 + i });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const send: number[] = [];
const recv: number[] = [];
for (let run = 0; run < RUNS + 1; run++) {
  const tx = new SnapshotTransfers(ctx), rx = new SnapshotTransfers(ctx);
  let t0 = performance.now();
  const outs = source.map((d) => tx.create(d.p, "b", 1, 1, d, false));
  const sendMs = performance.now() - t0;
  const copies = source.map((d) => new PartitionData(d.p));
  t0 = performance.now();
  for (const s of outs) {
    for (const m of s.chunks) {
      const c = rx.unpack("a", m as MapSnapshotPacked);
      if (!c) throw new Error("a chunk did not unpack");
      const snap = rx.assemble("a", c);
      if (snap) copies[s.p].install(snap, 1);
    }
  }
  const recvMs = performance.now() - t0;
  for (const d of source) {
    const c = copies[d.p];
    if (c.digest[0] !== d.digest[0] || c.digest[1] !== d.digest[1] || c.seq !== d.seq) {
      throw new Error(`partition ${d.p}: the installed copy differs`);
    }
  }
  if (run === 0) continue; // warm-up
  send.push((sendMs * 1000) / ENTRIES);
  recv.push((recvMs * 1000) / ENTRIES);
}
const runtime = "Bun" in globalThis ? "bun" : "deno";
console.log(
  `${runtime} ${ENTRIES} entries, median of ${RUNS} (load ${loadAverage()}): ` +
    `build+pack ${median(send).toFixed(2)} µs/entry (lowest ${Math.min(...send).toFixed(2)}), ` +
    `unpack+install ${median(recv).toFixed(2)} µs/entry (lowest ${Math.min(...recv).toFixed(2)})`,
);
