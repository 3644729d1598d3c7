/**
 * `startNode` refuses, with `ShoalError` `INVALID_ARGUMENT` and before anything starts, the
 * options the CLI refuses: `partitionCount` outside 1–65536, `slots` outside 0–1024,
 * `jobHistoryMinutes` outside 0–5,256,000, `minClusterSize` outside 0–4096, backup counts
 * outside 0–6 or totalling more than 6, fractions, NaN, and a `logLevel` other than debug,
 * info, warn, error or silent; the CLI's flags take their ranges from the same table. Found by
 * an internal review: `partitionCount: 0` started a member on which every map call failed with
 * an untyped `Error("Cannot hash into 0 partitions")`, -1 or 1.5 failed deep inside with the
 * engine's RangeError, and `slots: -1`, `jobHistoryMinutes: -5` and `logLevel: "bogus"` were
 * taken silently.
 */
import { describe, expect, test } from "bun:test";
import { nodeFlags, parseNodeArgs } from "../src/cli/node_args.ts";
import { type NodeOptions, nodeOptionsProblem, OptionBounds } from "../src/config.ts";
import { ShoalError, startNode } from "../mod.ts";

describe("nodeOptionsProblem", () => {
  test("accepts every option at the ends of its range, and none given", () => {
    expect(nodeOptionsProblem({})).toBeNull();
    for (const [name, { min, max }] of Object.entries(OptionBounds)) {
      // The backups may be 6 each alone; their total is checked apart.
      const other = name === "backupCount"
        ? { asyncBackupCount: 0 }
        : name === "asyncBackupCount"
        ? { backupCount: 0 }
        : {};
      expect(nodeOptionsProblem({ ...other, [name]: min })).toBeNull();
      expect(nodeOptionsProblem({ ...other, [name]: max })).toBeNull();
    }
    for (const logLevel of ["debug", "info", "warn", "error", "silent"] as const) {
      expect(nodeOptionsProblem({ logLevel })).toBeNull();
    }
  });

  test("names the option, its range and the value for anything else", () => {
    const cases: Array<[NodeOptions, string]> = [
      [{ partitionCount: 0 }, "partitionCount must be a whole number from 1 to 65536, got 0"],
      [{ partitionCount: -1 }, "partitionCount must be a whole number from 1 to 65536, got -1"],
      [{ partitionCount: 1.5 }, "partitionCount must be a whole number from 1 to 65536, got 1.5"],
      [{ partitionCount: NaN }, "partitionCount must be a whole number from 1 to 65536, got NaN"],
      [{ partitionCount: 65537 }, "partitionCount must be a whole number from 1 to 65536, got 65537"],
      [{ partitionCount: "7" as unknown as number }, 'partitionCount must be a whole number from 1 to 65536, got "7"'],
      [{ slots: -1 }, "slots must be a whole number from 0 to 1024, got -1"],
      [{ slots: 1025 }, "slots must be a whole number from 0 to 1024, got 1025"],
      [{ jobHistoryMinutes: -5 }, "jobHistoryMinutes must be a whole number from 0 to 5256000, got -5"],
      [{ jobHistoryMinutes: Infinity }, "jobHistoryMinutes must be a whole number from 0 to 5256000, got Infinity"],
      [{ minClusterSize: 4097 }, "minClusterSize must be a whole number from 0 to 4096, got 4097"],
      [{ backupCount: 7 }, "backupCount must be a whole number from 0 to 6, got 7"],
      [{ asyncBackupCount: -1 }, "asyncBackupCount must be a whole number from 0 to 6, got -1"],
      [{ backupCount: 4, asyncBackupCount: 3 }, "backupCount plus asyncBackupCount must be at most 6, got 7"],
      [{ asyncBackupCount: 6 }, "backupCount plus asyncBackupCount must be at most 6, got 7"], // with the default 1
      [
        { logLevel: "bogus" as NodeOptions["logLevel"] },
        'logLevel must be one of debug, info, warn, error, silent, got "bogus"',
      ],
    ];
    for (const [options, message] of cases) expect(nodeOptionsProblem(options)).toBe(message);
  });

  test("the CLI's number flags have the same ranges as startNode", () => {
    const flagOf: Record<string, string> = {
      backupCount: "backup-count",
      asyncBackupCount: "async-backup-count",
      partitionCount: "partition-count",
      slots: "slots",
      jobHistoryMinutes: "job-history-minutes",
      minClusterSize: "min-cluster-size",
    };
    for (const [name, { min, max }] of Object.entries(OptionBounds)) {
      const spec = nodeFlags.find((f) => f.name === flagOf[name]);
      expect({ name, min: spec?.min, max: spec?.max }).toEqual({ name, min, max });
    }
    expect(parseNodeArgs(["--partition-count", "0"], {})).toEqual({
      error: "Invalid value 0 for --partition-count: must be at least 1",
    });
  });
});

/** "started", the ShoalError's code and message, or what else was thrown. */
async function startOutcome(options: NodeOptions): Promise<string | [string, string]> {
  try {
    const node = await startNode({ secret: "s", http: false, logLevel: "silent", ...options });
    await node.shutdown();
    return "started";
  } catch (e) {
    return e instanceof ShoalError ? [e.code, e.message] : `untyped ${(e as Error)?.constructor?.name}: ${e}`;
  }
}

test("startNode refuses options outside the CLI's ranges with INVALID_ARGUMENT", async () => {
  const refused = (problem: string): [string, string] => ["INVALID_ARGUMENT", `Cannot start a node: ${problem}`];
  expect(await startOutcome({ partitionCount: 0 })).toEqual(
    refused("partitionCount must be a whole number from 1 to 65536, got 0"),
  );
  expect(await startOutcome({ partitionCount: -1 })).toEqual(
    refused("partitionCount must be a whole number from 1 to 65536, got -1"),
  );
  expect(await startOutcome({ partitionCount: 1.5 })).toEqual(
    refused("partitionCount must be a whole number from 1 to 65536, got 1.5"),
  );
  expect(await startOutcome({ slots: -1 })).toEqual(refused("slots must be a whole number from 0 to 1024, got -1"));
  expect(await startOutcome({ jobHistoryMinutes: -5 })).toEqual(
    refused("jobHistoryMinutes must be a whole number from 0 to 5256000, got -5"),
  );
  expect(await startOutcome({ backupCount: 7 })).toEqual(
    refused("backupCount must be a whole number from 0 to 6, got 7"),
  );
  expect(await startOutcome({ logLevel: "bogus" as NodeOptions["logLevel"] })).toEqual(
    refused('logLevel must be one of debug, info, warn, error, silent, got "bogus"'),
  );
}, 30_000);

test("startNode starts with each option at the edge of its range", async () => {
  expect(await startOutcome({ partitionCount: 1, slots: 0, jobHistoryMinutes: 0, backupCount: 0 })).toBe("started");
}, 30_000);
