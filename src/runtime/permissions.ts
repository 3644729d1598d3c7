/**
 * Turns Deno's "permission missing" error into one line that names the flags to add, so a
 * command started without them prints advice instead of a stack trace.
 */
import { deno } from "./globals.ts";

/**
 * Deno's refusal of an operation for lack of a permission (`NotCapable`, or
 * `PermissionDenied` on older Deno versions), found in `err` or its chain of causes.
 * @returns that error, or undefined when there is none (and always under Bun and Node)
 */
export function missingPermission(err: unknown): Error | undefined {
  if (!deno) return undefined;
  const NotCapable = deno.errors.NotCapable;
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (NotCapable && e instanceof NotCapable) return e;
    if ((e.name === "NotCapable" || e.name === "PermissionDenied") && /Requires \w+ access/.test(e.message)) return e;
  }
  return undefined;
}

/**
 * One line for stderr when `err` is a missing Deno permission; undefined otherwise.
 * @param err what the command threw
 * @param command the CLI command that was run (`node`, `signal`, `demo`), for the advice
 * @example
 * ```ts
 * permissionHint(new Deno.errors.NotCapable('Requires env access to "X", run again with the --allow-env flag'), "node");
 * // 'Deno needs env access (to "X"): run `deno task node`, or `deno run -P mod.ts node` …'
 * ```
 */
export function permissionHint(err: unknown, command: string): string | undefined {
  const message = missingPermission(err)?.message;
  if (message === undefined) return undefined;
  const what = /Requires (\w+) access(?: to ("[^"]*"|\S+?))?(?:,|$)/.exec(message);
  const flag = /(--allow-[a-z-]+)/.exec(message)?.[1];
  const need = what ? `${what[1]} access${what[2] ? ` (to ${what[2]})` : ""}` : "a permission";
  const set = command === "node" ? "" : `=${command}`;
  return `Deno needs ${need}: run \`deno task ${command}\`, or \`deno run -P${set} mod.ts ${command}\` ` +
    `(the permission set in deno.json)${flag ? `, or add ${flag}` : ""}.`;
}
