/**
 * Turns Deno's "permission missing" error into one line that names the flags to add, so a
 * command started without them prints advice instead of a stack trace.
 */
import { deno } from "./globals.ts";

/**
 * Whether `err` is Deno refusing an operation for lack of a permission (`NotCapable`,
 * or `PermissionDenied` on older Deno versions).
 */
export function isMissingPermission(err: unknown): boolean {
  if (!deno || !(err instanceof Error)) return false;
  const NotCapable = deno.errors.NotCapable;
  if (NotCapable && err instanceof NotCapable) return true;
  return (err.name === "NotCapable" || err.name === "PermissionDenied") && /Requires \w+ access/.test(err.message);
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
  if (!isMissingPermission(err)) return undefined;
  const message = (err as Error).message;
  const what = /Requires (\w+) access(?: to ("[^"]*"|\S+?))?(?:,|$)/.exec(message);
  const flag = /(--allow-[a-z-]+)/.exec(message)?.[1];
  const need = what ? `${what[1]} access${what[2] ? ` (to ${what[2]})` : ""}` : "a permission";
  const set = command === "node" ? "" : `=${command}`;
  return `Deno needs ${need}: run \`deno task ${command}\`, or \`deno run -P${set} mod.ts ${command}\` ` +
    `(the permission set in deno.json)${flag ? `, or add ${flag}` : ""}.`;
}
