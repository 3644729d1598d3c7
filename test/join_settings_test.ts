import { describe, expect, test } from "bun:test";
import {
  joinSettings,
  JoinSettingsSchema,
  MAX_JOIN_SETTINGS,
  refusalMessage,
  settingsMismatch,
} from "../src/cluster/join_settings.ts";
import { mapConfigJoinSetting } from "../src/map/map_config.ts";

const base = {
  protocolVersion: 1,
  partitionCount: 271,
  backupCount: 1,
  asyncBackupCount: 0,
  mergePolicy: "latestUpdate",
};
const cluster = joinSettings(base);

describe("join settings", () => {
  const cases: Array<[string, Partial<typeof base>, string | null]> = [
    ["same settings", {}, null],
    [
      "partition count",
      { partitionCount: 100 },
      "partition count 100 differs from the cluster's 271 (--partition-count)",
    ],
    [
      "merge policy",
      { mergePolicy: "discard" },
      `merge policy "discard" differs from the cluster's "latestUpdate" (--merge-policy)`,
    ],
    ["backup count", { backupCount: 2 }, "backup count 2 differs from the cluster's 1 (--backup-count)"],
    [
      "async backup count",
      { asyncBackupCount: 1 },
      "async backup count 1 differs from the cluster's 0 (--async-backup-count)",
    ],
    [
      "protocol version",
      { protocolVersion: 2 },
      "protocol version 2 differs from the cluster's 1 (run the same Shoal version on every member)",
    ],
    // The first difference in field order is named.
    [
      "two differences",
      { mergePolicy: "discard", partitionCount: 7 },
      "partition count 7 differs from the cluster's 271 (--partition-count)",
    ],
  ];
  for (const [name, change, want] of cases) {
    test(name, () => {
      expect(settingsMismatch(cluster, joinSettings({ ...base, ...change }).values)).toBe(want);
    });
  }

  test("a setting only one side has differs, whichever side has it", () => {
    const quorum = { field: { key: "mcs", label: "minimum cluster size", flag: "--min-cluster-size" }, value: 3 };
    const withQuorum = joinSettings(base, [quorum]);
    expect(settingsMismatch(withQuorum, cluster.values)).toBe(
      "minimum cluster size (not set) differs from the cluster's 3 (--min-cluster-size)",
    );
    expect(settingsMismatch(cluster, withQuorum.values)).toBe(
      "setting mcs 3 differs from the cluster's (not set) (not known to the cluster)",
    );
    expect(settingsMismatch(withQuorum, joinSettings(base, [quorum]).values)).toBeNull();
  });

  test("structured settings compare as canonical JSON", () => {
    const maps = (cfg: unknown) => ({
      field: { key: "maps", label: "map configurations", flag: "--map" },
      value: JSON.stringify(cfg),
    });
    const a = joinSettings(base, [maps({ orders: { ttlMs: 1000 } })]);
    const b = joinSettings(base, [maps({ orders: { ttlMs: 2000 } })]);
    expect(settingsMismatch(a, b.values)).toBe(
      `map configurations "{\\"orders\\":{\\"ttlMs\\":2000}}" differs from the cluster's "{\\"orders\\":{\\"ttlMs\\":1000}}" (--map)`,
    );
  });

  test("a member with another map configuration is refused, naming the map and the field", () => {
    const mine = joinSettings(base, [mapConfigJoinSetting({ "sessions*": { ttlMs: 60_000 } })]);
    const theirs = joinSettings(base, [mapConfigJoinSetting({ "sessions*": { ttlMs: 30_000 } })]);
    const why = settingsMismatch(mine, theirs.values);
    expect(why).toContain('map config "sessions*": ttlMs is 30000 on this member but 60000 on the cluster');
    expect(why).toContain("sessions*");
    expect(why).toContain("ttlMs");
    expect(why).toContain("--map-config");
    expect(
      settingsMismatch(mine, joinSettings(base, [mapConfigJoinSetting({ "sessions*": { ttlMs: 60_000 } })]).values),
    )
      .toBeNull();
  });

  test("a field key cannot be defined twice", () => {
    expect(() => joinSettings(base, [{ field: { key: "pc", label: "x", flag: "y" }, value: 1 }])).toThrow(RangeError);
  });

  test("the wire form is validated: bounded keys, values and count", () => {
    expect(JoinSettingsSchema.safeParse(cluster.values).success).toBe(true);
    expect(JoinSettingsSchema.safeParse({ pc: { nested: 1 } }).success).toBe(false);
    expect(JoinSettingsSchema.safeParse({ ["k".repeat(33)]: 1 }).success).toBe(false);
    expect(JoinSettingsSchema.safeParse({ pc: Infinity }).success).toBe(false);
    const many: Record<string, number> = {};
    for (let i = 0; i <= MAX_JOIN_SETTINGS; i++) many[`k${i}`] = i;
    expect(JoinSettingsSchema.safeParse(many).success).toBe(false);
  });

  test("the refusal message names the cluster", () => {
    expect(refusalMessage("shoal", "partition count 100 differs from the cluster's 271 (--partition-count)")).toBe(
      `Cannot join cluster "shoal": partition count 100 differs from the cluster's 271 (--partition-count)`,
    );
  });
});
