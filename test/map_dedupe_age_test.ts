/**
 * Dedupe records age out: a caller retries a call only until its deadline, so a partition
 * copy drops records older than `dedupeMaxAgeMs` on its own stamps (memory stays flat under a
 * steady load instead of growing to the count and byte limits). A record whose write carried
 * no stamp (it changed nothing) or that came from another copy is never dropped early.
 */
import { describe, expect, test } from "bun:test";
import { type Effect, PartitionData } from "../src/map/partition_data.ts";
import { encodeValue } from "../src/wire/codec.ts";

const limits = { dedupe: 2048, log: 256, dedupeMaxAgeMs: 60_000 };
const put = (k: string, at: number): Effect[] => [{ m: "m", k: encodeValue(k), v: encodeValue(1), at }];

function write(d: PartitionData, c: string, e: Effect[]): void {
  d.applyEntry({ seq: d.seq + 1, c, r: null, e });
}

describe("dedupe records by age", () => {
  test("records older than dedupeMaxAgeMs go when a later write arrives; younger ones stay", () => {
    const d = new PartitionData(0, limits);
    write(d, "a", put("a", 1_000));
    write(d, "b", put("b", 30_000));
    write(d, "c", put("c", 61_500));
    expect([...d.dedupe.keys()]).toEqual(["b", "c"]);
    write(d, "d", put("d", 200_000));
    expect([...d.dedupe.keys()]).toEqual(["d"]);
  });

  test("a write that changed nothing takes the next stamped write's stamp, so it does not go early", () => {
    const d = new PartitionData(0, limits);
    write(d, "a", put("a", 1_000));
    // Made long after the partition's last stamp (it changed nothing, so it carries none).
    write(d, "noop", []);
    write(d, "b", put("b", 100_000));
    write(d, "c", put("c", 150_000));
    expect([...d.dedupe.keys()]).toEqual(["noop", "b", "c"]);
    write(d, "e", put("e", 160_001));
    expect([...d.dedupe.keys()]).toEqual(["c", "e"]);
  });

  test("records installed from a snapshot stay until a later write stamps them, then age from there", () => {
    const src = new PartitionData(0, limits);
    write(src, "old", put("x", 1_000));
    const d = new PartitionData(0, limits);
    d.install(src.snapshot(), 1);
    write(d, "b", put("b", 500_000));
    expect([...d.dedupe.keys()]).toEqual(["old", "b"]);
    write(d, "c", put("c", 560_001));
    expect([...d.dedupe.keys()]).toEqual(["c"]);
  });

  test("without dedupeMaxAgeMs only the count and byte limits apply", () => {
    const d = new PartitionData(0, { dedupe: 3, log: 256 });
    for (let i = 0; i < 5; i++) write(d, `c${i}`, put(`k${i}`, i * 1_000_000));
    expect([...d.dedupe.keys()]).toEqual(["c2", "c3", "c4"]);
  });
});
