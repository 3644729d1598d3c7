/**
 * Connector types known to a member. Every member must register the same custom
 * connectors (a task may run on any of them). `normalizeDefinition` validates a submitted
 * definition against the registry and fills in defaults.
 */
import { ShoalError } from "../core/errors.ts";
import type { SinkConnector, SourceConnector, TransformConnector } from "./connector.ts";
import {
  defaultCheckpointIntervalMs,
  defaultMaxTaskRestarts,
  type JobDefinition,
  type JobDefinitionInput,
  JobDefinitionSchema,
} from "./job_definition.ts";
import { logSink } from "./sink_log.ts";
import { mapSink } from "./sink_map.ts";
import { sequenceSource } from "./source_sequence.ts";
import { mapTransform } from "./transform_map.ts";

/** Thrown for a definition that does not validate; `message` says what is wrong. */
export class InvalidJobError extends ShoalError {
  override name = "InvalidJobError";
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/**
 * The connector of `type` in `registered`.
 * @throws InvalidJobError naming the unknown type and the known ones
 */
function known<C>(registered: Map<string, C>, role: string, type: string): C {
  const c = registered.get(type);
  if (!c) throw new InvalidJobError(`Unknown ${role} type "${type}" (known: ${[...registered.keys()].join(", ")})`);
  return c;
}

export class ConnectorRegistry {
  readonly sources = new Map<string, SourceConnector>();
  readonly transforms = new Map<string, TransformConnector>();
  readonly sinks = new Map<string, SinkConnector>();

  /** A registry holding the built-in connectors. */
  static withBuiltins(): ConnectorRegistry {
    const r = new ConnectorRegistry();
    r.registerSource(sequenceSource);
    r.registerTransform(mapTransform);
    r.registerSink(mapSink);
    r.registerSink(logSink);
    return r;
  }

  registerSource(c: SourceConnector): this {
    this.sources.set(c.type, c);
    return this;
  }
  registerTransform(c: TransformConnector): this {
    this.transforms.set(c.type, c);
    return this;
  }
  registerSink(c: SinkConnector): this {
    this.sinks.set(c.type, c);
    return this;
  }

  source(type: string): SourceConnector {
    return known(this.sources, "source", type);
  }
  transform(type: string): TransformConnector {
    return known(this.transforms, "transform", type);
  }
  sink(type: string): SinkConnector {
    return known(this.sinks, "sink", type);
  }

  /**
   * Validates a definition and fills defaults.
   * @throws InvalidJobError with a message naming the bad field
   */
  normalizeDefinition(input: unknown): JobDefinition {
    const parsed = JobDefinitionSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidJobError(`Invalid job: ${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    const d = parsed.data;
    const configure = <
      C extends { configure(b: JobDefinitionInput["source"]): ReturnType<SourceConnector["configure"]> },
    >(
      c: C,
      block: JobDefinitionInput["source"],
      what: string,
    ) => {
      try {
        return c.configure(block);
      } catch (err) {
        throw new InvalidJobError(`Invalid job: ${what}: ${(err as Error).message}`);
      }
    };
    const src = this.source(d.source.type);
    const source = configure(src, d.source, "source");
    const transform = d.transform ? configure(this.transform(d.transform.type), d.transform, "transform") : undefined;
    const sink = configure(this.sink(d.sink.type), d.sink, "sink");
    const parallelism = d.parallelism ?? src.parallelism(source) ?? 1;
    const def: JobDefinition = {
      name: d.name,
      source,
      sink,
      parallelism,
      checkpointIntervalMs: d.checkpointIntervalMs ?? defaultCheckpointIntervalMs,
      maxTaskRestarts: d.maxTaskRestarts ?? defaultMaxTaskRestarts,
    };
    if (transform) def.transform = transform;
    return def;
  }
}
