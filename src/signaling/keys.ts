import type { RotatingKey } from "../wire/envelope.ts";

/** Who signs and checks: the local member and its cluster's "signal" key (and the previous secret's). */
export interface DescriptionKeys extends RotatingKey {
  /** Room id of the cluster (roomId(cluster)). */
  room: string;
  /** The local member id. */
  self: string;
}
