import { expect, test } from "bun:test";
import { appendSegment, type LogList } from "../src/jobs/sink_log.ts";
import type { JobRecord } from "../src/jobs/connector.ts";

const recs = (from: number, to: number): JobRecord[] =>
  Array.from({ length: to - from }, (_, i) => ({ id: from + i, value: from + i }));

test("a segment is appended once: applying it again changes nothing", () => {
  const l1 = appendSegment(undefined, 1, recs(0, 10))!;
  expect(l1.applied).toBe(1);
  expect(l1.entries).toHaveLength(10);
  expect(appendSegment(l1, 1, recs(0, 10))).toBeUndefined();
  const l2 = appendSegment(l1, 2, recs(10, 15))!;
  expect(l2.entries.map((r) => r.id)).toEqual([...Array(15).keys()]);
  expect(appendSegment(l2, 1, recs(0, 10))).toBeUndefined();
  expect(appendSegment(l2, 2, recs(10, 15))).toBeUndefined();
});

// The protocol of one task across attempts, at the level of the pure rules: each attempt
// stages records [offset, next) for checkpoint c+1, stores the marker, then applies. A crash
// may hit between any two steps; the next attempt rolls the stored marker forward and
// replays from the stored offset. The list must end with every id exactly once.
test("crashes between stage, marker and apply neither duplicate nor leave gaps", () => {
  const total = 200;
  for (let seed = 1; seed <= 300; seed++) {
    let rnd = seed;
    const next = () => (rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648;
    let list: LogList | undefined;
    const stages = new Map<string, JobRecord[]>();
    let marker: { checkpointId: number; offset: number; stage: string | null; attempt: number } = {
      checkpointId: 0,
      offset: 0,
      stage: null,
      attempt: 1,
    };
    let attempt = 1;
    for (let guard = 0; guard < 10_000; guard++) {
      // restore: roll forward the stored marker
      if (marker.stage) {
        const l = appendSegment(list, marker.checkpointId, stages.get(marker.stage)!);
        if (l) list = l;
      }
      let offset = marker.offset;
      let crashed = false;
      while (offset < total && !crashed) {
        const n = 1 + Math.floor(next() * 30);
        const batch = recs(offset, Math.min(total, offset + n));
        const c = marker.checkpointId + 1;
        const key = `a${attempt}/c${c}`;
        stages.set(key, batch); // prepare
        if (next() < 0.15) {
          crashed = true;
          break;
        }
        marker = { checkpointId: c, offset: offset + batch.length, stage: key, attempt }; // marker CAS
        if (next() < 0.15) {
          crashed = true;
          break;
        }
        const l = appendSegment(list, c, batch); // commit
        if (l) list = l;
        offset = marker.offset;
        if (next() < 0.1) {
          crashed = true;
          break;
        }
      }
      if (!crashed) break;
      attempt++;
    }
    if (marker.stage) {
      const l = appendSegment(list, marker.checkpointId, stages.get(marker.stage)!);
      if (l) list = l;
    }
    const ids = list!.entries.map((r) => r.id);
    expect(ids).toEqual([...Array(total).keys()]);
  }
});
