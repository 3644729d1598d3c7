/** Settings shared by the partition and map services (partition_service.ts, map_service.ts). */
export interface PartitionConfig {
  /** @default 271 */
  partitionCount: number;
  /** Synchronous backups per partition (0–6). @default 1 */
  backupCount: number;
  /** Asynchronous backups per partition. @default 0 */
  asyncBackupCount: number;
  /** Lite members own no partitions. */
  lite: boolean;
  /** Master planning tick. @default 100 */
  tickMs?: number;
  /** Master's table-version heartbeat. @default 1000 */
  heartbeatMs?: number;
  /** How long a new master waits for the tables of the other members. @default 2000 */
  collectTimeoutMs?: number;
  /** A migration not ready by then is abandoned and planned again. @default 15000 */
  migrationTimeoutMs?: number;
  /** Partitions migrating at once. @default 16 */
  maxParallelMigrations?: number;
}
