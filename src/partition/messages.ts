/** Partition-layer message kinds (80–99): table publication and collection, migrations. */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";

const MAX_PARTITIONS = 10_000;
const MAX_MEMBERS = 1_024;

const table = {
  version: w.uint(),
  /** Reign of the publishing master; tables are ordered by (term, version). */
  term: w.uint(),
  members: w.list(w.id(), MAX_MEMBERS),
  rows: w.list(w.list(w.uint().max(MAX_MEMBERS), 7), MAX_PARTITIONS),
  epochs: w.list(w.uint(), MAX_PARTITIONS),
  /** [partition, member indices…] per in-flight migration */
  migrating: w.list(w.list(w.uint(), 8), MAX_PARTITIONS),
  /** [partition, member indices…] per partition with backups created in place and not yet in sync */
  filling: w.list(w.list(w.uint(), 8), MAX_PARTITIONS).optional(),
  /** Published by a master without its quorum (split-brain protection): a new master's collect passes it over. */
  nq: z.boolean().optional(),
};

/** Master → all: a new table version. Applied only if newer and from the believed master. */
export const PartitionTablePushMsg = defineMessage(Kind.PartitionTablePush, "PartitionTablePush", table);
/** Master → all, periodic: the current version, so a member that missed a push can fetch it. */
export const PartitionTableVersionMsg = defineMessage(Kind.PartitionTableVersion, "PartitionTableVersion", {
  version: w.uint(),
  term: w.uint(),
});
/** Asks for a table: member → master (answered with a push), or new master → members (answered with a report). */
export const PartitionTableFetchMsg = defineMessage(Kind.PartitionTableFetch, "PartitionTableFetch", {
  collect: z.boolean(),
});
/** Member → new master: the newest table this member holds. */
export const PartitionTableReportMsg = defineMessage(Kind.PartitionTableReport, "PartitionTableReport", table);
/**
 * Master → primary: bring the members of `row` up to date for partition `p`, then report
 * ready. `mid` names this migration (the same on every resend): a start with another `mid`
 * is a new migration, whose targets the primary checks again from scratch.
 */
export const PartitionMigrationStartMsg = defineMessage(Kind.PartitionMigrationStart, "PartitionMigrationStart", {
  p: w.uint().max(MAX_PARTITIONS),
  epoch: w.uint(),
  row: w.list(w.id(), 7),
  mid: w.uint().optional(),
});
/** Primary → master: every member of `row` holds partition `p` and has acked every write (for migration `mid`). */
export const PartitionMigrationReadyMsg = defineMessage(Kind.PartitionMigrationReady, "PartitionMigrationReady", {
  p: w.uint().max(MAX_PARTITIONS),
  epoch: w.uint(),
  row: w.list(w.id(), 7),
  mid: w.uint().optional(),
});
/** Member → master: graceful shutdown; move my partitions away. */
export const PartitionMemberLeavingMsg = defineMessage(Kind.PartitionMemberLeaving, "PartitionMemberLeaving", {});
/** Master → leaving member: every data member is leaving, so no one can take its replicas: leave now. */
export const PartitionLeaveNowhereMsg = defineMessage(Kind.PartitionLeaveNowhere, "PartitionLeaveNowhere", {});
/**
 * Primary → master: per item, the backups `members` of partition `p` (created in place, listed
 * as filling in the table) hold every entry and get every later write; the master drops them
 * from `filling`. One message carries the reports of a few milliseconds.
 */
export const PartitionBackupsSyncedMsg = defineMessage(Kind.PartitionBackupsSynced, "PartitionBackupsSynced", {
  items: w.list(
    z.object({ p: w.uint().max(MAX_PARTITIONS), epoch: w.uint(), members: w.list(w.id(), 7) }),
    MAX_PARTITIONS,
  ),
});

/** A partition table in its compact wire form: member ids once, rows as indices (see partition_table.ts). */
export type WireTable = Omit<z.infer<typeof PartitionTablePushMsg>, "t">;
export type PartitionTableFetch = z.infer<typeof PartitionTableFetchMsg>;
export type PartitionMigrationStart = z.infer<typeof PartitionMigrationStartMsg>;
export type PartitionMigrationReady = z.infer<typeof PartitionMigrationReadyMsg>;
export type PartitionBackupsSynced = z.infer<typeof PartitionBackupsSyncedMsg>;
