/**
 * Checks of a parsed JSON value before it is stored: its nesting depth (deeper values could
 * exhaust the stack when encoded) and whether it would be stored as it was sent. Used by the
 * HTTP layer and the job routes; pure, so any layer may use them.
 */

/** A lone UTF-16 surrogate: a string that cannot be encoded as UTF-8 as it is. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why a parsed JSON value would not be stored as it was sent, or undefined when it would: a
 * string (or key) with a lone surrogate (`"\ud800"`, stored as U+FFFD), a `__proto__` key (its
 * name changed by the encoding), or a number beyond float64 (`1e400` parses as Infinity and is
 * stored as null). Such bodies are refused, never stored changed. Call after {@link depthOf}
 * has bounded the nesting.
 */
export function unstorable(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (LONE_SURROGATE.test(v)) return "holds a string with a lone UTF-16 surrogate";
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) return "holds a number beyond the range of a float64";
    } else if (Array.isArray(v)) stack.push(...v);
    else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        if (k === "__proto__") return "holds a __proto__ key";
        if (LONE_SURROGATE.test(k)) return "holds a key with a lone UTF-16 surrogate";
        stack.push(child);
      }
    }
  }
  return undefined;
}

/** Deepest nesting accepted in a body; deeper values could exhaust the stack when encoded. */
export const maxJsonDepth = 64;

/** Nesting depth of a parsed JSON value (scalars are 0), computed without recursion. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d + 1 > max) max = d + 1;
    if (max > maxJsonDepth) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}
