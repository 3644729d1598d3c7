/** Headless Debian Chromium for the browser tests (playwright-core drives it). */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Where Debian's chromium package puts the browser. */
export const chromiumPath = "/usr/bin/chromium";
/** Whether it is installed (the browser tests are skipped, with a warning, when not). */
export const hasChromium: boolean = existsSync(chromiumPath);

/** Launches headless Chromium with the tests' flags (no sandbox, GPU or background traffic) and `extraArgs`. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}
