/**
 * What every CLI command is. In a file of its own so that `main.ts` (which loads the
 * commands) and the commands (which declare themselves) import it without importing
 * each other.
 */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}
