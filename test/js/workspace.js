// workspace.js BASE USER PASSWORD STUDY_UID: the workspace pages in headless Chromium:
// signs in, and as an auditor searches the log for the study; prints the event types
// shown, one JSON array. Exits 1 with the reason otherwise.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

async function main() {
  const [base, user, password, study] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           `--user-data-dir=${profile}`],
  });
  try {
    const page = await browser.newPage();
    await page.goto(base + '/', {waitUntil: 'load'});
    await page.waitForSelector('#user', {visible: true, timeout: 20000});
    await page.type('#user', user);
    await page.type('#password', password);
    await page.click('#go');
    await page.waitForSelector('#audit', {visible: true, timeout: 20000});
    await page.type('#astudy', study);
    await page.click('#ago');
    await page.waitForSelector('#events tr.event', {timeout: 20000});
    const types = await page.$$eval('#events tr.event', (rows) =>
      rows.map((r) => r.children[1].textContent));
    console.log(JSON.stringify(types));
  } finally {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main().catch((e) => { console.error('workspace: ' + e.message); process.exit(1); });
