/**
 * The `map` transform: applies one named pure function to each record's value.
 */
import type { ConnectorConfig } from "./job_definition.ts";
import type { JobRecord, TransformConnector } from "./connector.ts";

/** The named functions of the `map` transform. */
export const mapFunctions: Record<string, (v: unknown) => unknown> = {
  identity: (v) => v,
  double: (v) => (typeof v === "number" ? v * 2 : v),
  square: (v) => (typeof v === "number" ? v * v : v),
  negate: (v) => (typeof v === "number" ? -v : v),
  /** Uppercase hexadecimal text of a number. */
  hex: (v) => (typeof v === "number" ? Math.trunc(v).toString(16).toUpperCase() : v),
  /** Uppercase text of the value. */
  upper: (v) => String(v).toUpperCase(),
};

export const mapTransform: TransformConnector = {
  type: "map",
  configure(block: ConnectorConfig): ConnectorConfig {
    const fn = block.fn ?? "identity";
    if (typeof fn !== "string" || !Object.hasOwn(mapFunctions, fn)) {
      throw new RangeError(`map.fn must be one of ${Object.keys(mapFunctions).join(", ")}`);
    }
    return { type: "map", fn };
  },
  open(config) {
    const f = mapFunctions[config.fn as string];
    return (r: JobRecord) => ({ id: r.id, value: f(r.value) });
  },
};
