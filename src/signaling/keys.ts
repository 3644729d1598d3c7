/** Who signs and checks: the local member and its cluster's key. */
export interface DescriptionKeys {
  /** Room id of the cluster (roomId(cluster)). */
  room: string;
  /** The "signal" key: deriveKey(cluster, secret, "signal"). Signs, and verifies. */
  key: Uint8Array;
  /** During a secret rotation, the previous secret's "signal" key: verifies only. */
  previousKey?: Uint8Array;
  /** The local member id. */
  self: string;
}
