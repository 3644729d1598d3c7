/**
 * The Prometheus text exposition format (version 0.0.4): metric families with HELP and
 * TYPE lines, escaped label values, cumulative histogram buckets ending in `+Inf`.
 */

export type Labels = Record<string, string>;

/** A counter or gauge family. */
export interface ScalarFamily {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: { labels?: Labels; value: number }[];
}

/** A histogram family; `buckets` are cumulative counts per upper bound `le` (seconds etc.). */
export interface HistogramFamily {
  name: string;
  help: string;
  type: "histogram";
  samples: { labels?: Labels; buckets: { le: number; count: number }[]; sum: number; count: number }[];
}

export type MetricFamily = ScalarFamily | HistogramFamily;

/** Content type of the text format. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

const namePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelPattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Formats a sample value: integers plainly, special floats as Prometheus spells them. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const entries = Object.entries(labels ?? {});
  if (extra) entries.push(extra);
  if (entries.length === 0) return "";
  for (const [k] of entries) {
    if (!labelPattern.test(k)) throw new RangeError(`Cannot expose label "${k}": not a valid label name`);
  }
  return "{" + entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",") + "}";
}

/**
 * Renders metric families as exposition text. Families with no samples are left out.
 * @param families the families, each name unique
 * @returns the text, ending in a newline
 * @example
 * ```ts
 * renderPrometheus([{ name: "shoal_members", help: "Live members", type: "gauge", samples: [{ value: 3 }] }]);
 * // "# HELP shoal_members Live members\n# TYPE shoal_members gauge\nshoal_members 3\n"
 * ```
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!namePattern.test(f.name)) throw new RangeError(`Cannot expose metric "${f.name}": not a valid metric name`);
    if (seen.has(f.name)) throw new RangeError(`Cannot expose metric "${f.name}" twice`);
    seen.add(f.name);
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === "histogram") {
      for (const s of f.samples) {
        for (const b of s.buckets) {
          out.push(`${f.name}_bucket${labelText(s.labels, ["le", formatValue(b.le)])} ${b.count}`);
        }
        if (!s.buckets.some((b) => b.le === Infinity)) {
          out.push(`${f.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}`);
        }
        out.push(
          `${f.name}_sum${labelText(s.labels)} ${formatValue(s.sum)}`,
          `${f.name}_count${labelText(s.labels)} ${s.count}`,
        );
      }
    } else {
      for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.length ? out.join("\n") + "\n" : "";
}
