// ohif_open.js BASE USER PASSWORD STUDY_UID SCREENSHOT: signs in to a pacsmesh node's
// workspace in headless Chromium (Debian's, never a downloaded one), opens the study in
// the OHIF viewer the node serves, waits until an image is drawn (a viewport canvas
// whose pixels are not all one value) and keeps a screenshot. Prints the time to the
// first image in ms; exits 1 with the reason otherwise.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

async function main() {
  const [base, user, password, study, shot] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--enable-unsafe-swiftshader', `--user-data-dir=${profile}`],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 900});
    page.on('pageerror', (e) => console.error('# page error:', e.message));
    await page.goto(base + '/', {waitUntil: 'load'});
    await page.waitForSelector('#user', {visible: true, timeout: 20000});
    await page.type('#user', user);
    await page.type('#password', password);
    await page.click('#go');
    await page.waitForSelector('#nav', {visible: true, timeout: 20000});
    const t0 = Date.now();
    await page.goto(base + '/viewer/viewer?StudyInstanceUIDs=' + encodeURIComponent(study),
                    {waitUntil: 'load', timeout: 60000});
    // An image is drawn when a viewport's canvas holds more than one pixel value.
    await page.waitForFunction(() => {
      for (const c of document.querySelectorAll('canvas')) {
        if (c.width < 32 || c.height < 32) continue;
        let ctx;
        try { ctx = c.getContext('2d', {willReadFrequently: true}); } catch (e) { continue; }
        if (!ctx) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) {
          seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          if (seen.size > 16) return true;
        }
      }
      return false;
    }, {timeout: 120000, polling: 250});
    const ms = Date.now() - t0;
    await page.screenshot({path: shot});
    console.log(ms);
  } finally {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main().catch((e) => { console.error('ohif_open: ' + e.message); process.exit(1); });
