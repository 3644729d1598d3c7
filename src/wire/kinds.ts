/**
 * Wire message kinds. Numbers are APPEND-ONLY: never renumber or reuse a kind, only add
 * new ones. Each layer owns a range so layers can grow without touching each other:
 *
 * | range     | layer                                  |
 * |-----------|----------------------------------------|
 * | 1–19      | transport (chunks, relay, link control) |
 * | 20–39     | signaling (over the server and relayed over the mesh) |
 * | 40–79     | cluster (join, SWIM, gossip, master, split brain) |
 * | 80–99     | partition (table publication, migration) |
 * | 100–139   | map (operations, backups, anti-entropy) |
 * | 140–159   | invoke (requests, responses) |
 * | 160–199   | jobs (coordinator ↔ worker) |
 * | 200–219   | bench and test-only kinds |
 *
 * PROTOCOL.md documents every kind; keep the two in step.
 */
export const Kind = {
  // transport 1–19
  Chunk: 1,
  Forward: 2,
  LinkPing: 3,
  LinkPong: 4,
  LinkClose: 5,
  // signaling 20–39
  SignalOffer: 20,
  SignalAnswer: 21,
  SignalReject: 22,
  SignalRelay: 23,
  SignalHello: 24,
  SignalChallenge: 25,
  // cluster 40–79
  ClusterJoinRequest: 40,
  ClusterJoinForward: 41,
  ClusterJoinAccepted: 42,
  ClusterJoinRefused: 43,
  ClusterPing: 44,
  ClusterAck: 45,
  ClusterPingReq: 46,
  ClusterNack: 47,
  ClusterGossip: 48,
  ClusterMemberList: 49,
  ClusterListRequest: 50,
  ClusterViewRequest: 51,
  ClusterViewReply: 52,
  ClusterPushPull: 53,
  ClusterRouteQuery: 54,
  ClusterRouteAnswer: 55,
  ClusterRouteHint: 56,
  ClusterSplitHello: 57,
  ClusterMergeRequest: 58,
  ClusterMergeAccepted: 59,
  ClusterMergeRefused: 60,
  ClusterMergeInto: 61,
  ClusterLeasePing: 62,
  ClusterLeaseAck: 63,
  ClusterMergeCheck: 64,
  ClusterMergeCheckReply: 65,
  // partition 80–99
  PartitionTablePush: 80,
  PartitionTableVersion: 81,
  PartitionTableFetch: 82,
  PartitionTableReport: 83,
  PartitionMigrationStart: 84,
  PartitionMigrationReady: 85,
  PartitionMemberLeaving: 86,
  PartitionBackupsSynced: 87,
  PartitionLeaveNowhere: 88,
  // map 100–139
  MapBackupOps: 100,
  MapBackupAck: 101,
  MapSyncCheck: 102,
  MapSyncPull: 103,
  MapSnapshotChunk: 104,
  MapSnapshotAck: 105,
  MapSnapshotPacked: 106,
  // invoke 140–159
  InvokeRequest: 140,
  InvokeResponse: 141,
  InvokeBackupAck: 142,
  InvokeBackupAnswer: 143,
  // jobs 160–199
  JobWorkerHello: 160,
  JobWorkerHelloAck: 161,
  JobDeployTask: 162,
  JobDeployAck: 163,
  JobCancelTask: 164,
  JobTaskDone: 165,
  JobTaskDoneAck: 166,
  JobTaskQuery: 167,
  JobTaskReport: 168,
  JobNotify: 169,
  // bench/test 200–219
  TestEcho: 200,
  TestData: 201,
} as const;

export type KindNumber = number;

/** Inclusive ranges per layer; a kind outside every range is invalid on the wire. */
export const KindRanges = {
  transport: [1, 19],
  signaling: [20, 39],
  cluster: [40, 79],
  partition: [80, 99],
  map: [100, 139],
  invoke: [140, 159],
  jobs: [160, 199],
  test: [200, 219],
} as const;
