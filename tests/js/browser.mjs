// Headless Chromium for the browser tests: Debian's /usr/bin/chromium (scripts/test-chromium
// installs it), driven by puppeteer-core, which never downloads a browser. Each launch gets
// a fresh profile in a temporary directory, removed when the browser closes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Launches headless Chromium; `browser.close()` also removes its profile. */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'sb-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  return browser;
}
