/** JSON-lines logging on stderr: level, member, event, fields. Never log secrets. */
import { writeStderrLine } from "../runtime/process.ts";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

const stderrSink: LogSink = writeStderrLine;

/**
 * @param vt a virtual clock (the simulator's): each line then also carries `vt`, its time in
 *   ms, so a replayed seed's log reads in simulated time
 */
export function createLogger(
  level: LogLevel = "info",
  base: Record<string, unknown> = {},
  sink: LogSink = stderrSink,
  vt?: () => number,
): Logger {
  const min = order[level];
  const emit = (lvl: LogLevel, event: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    const at = vt ? { vt: vt() } : {};
    sink(JSON.stringify({ ts: new Date().toISOString(), ...at, level: lvl, ...base, event, ...fields }));
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (f) => createLogger(level, { ...base, ...f }, sink, vt),
  };
}

export const silentLogger: Logger = createLogger("silent");
