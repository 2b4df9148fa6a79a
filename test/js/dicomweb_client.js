// dicomweb_client.js BASE USER PASSWORD STUDY SERIES SOP STOW_FILE: the dicomweb-client
// package (the DICOMweb client OHIF itself uses) against a pacsmesh node, run where it
// is meant to run: in a browser page of the node's origin (headless Debian chromium),
// signed in with the session cookie. Searches, retrieves metadata, a frame and an
// instance, stores an instance; prints one JSON object with what it got.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

async function main() {
  const [base, user, password, study, series, sop, stowFile] = process.argv.slice(2);
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
    // The workspace page allows only its own scripts (Content-Security-Policy); the
    // client library is the test's, injected into the node's origin.
    await page.setBypassCSP(true);
    await page.goto(base + '/', {waitUntil: 'load'});
    const signed = await page.evaluate(async (u, p) => (await fetch('/api/login', {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({user: u, password: p})})).status, user, password);
    if (signed !== 200) throw new Error('sign-in answered ' + signed);
    await page.addScriptTag({path: require.resolve('dicomweb-client/build/dicomweb-client.js')});
    const stow = Array.from(fs.readFileSync(stowFile));
    const got = await page.evaluate(async (study, series, sop, stow) => {
      // A write signed in by the session cookie carries X-Requested-With (CSRF rule).
      const client = new DICOMwebClient.api.DICOMwebClient({url: location.origin + '/dicom-web',
        headers: {'X-Requested-With': 'dicomweb-client'}});
      const step = async (name, f) => {
        try { return await f(); } catch (e) {
          throw new Error(name + ': ' + (e.status || '') + ' ' + (e.message || e) + ' ' +
                          (e.response || ''));
        }
      };
      const studies = await step('searchForStudies', () => client.searchForStudies());
      const mine = await step('searchForStudies(uid)',
        () => client.searchForStudies({queryParams: {StudyInstanceUID: study}}));
      const seriesList = await step('searchForSeries',
        () => client.searchForSeries({studyInstanceUID: study}));
      const instances = await step('searchForInstances', () => client.searchForInstances({
        studyInstanceUID: study, seriesInstanceUID: series}));
      const meta = await step('retrieveSeriesMetadata', () => client.retrieveSeriesMetadata({
        studyInstanceUID: study, seriesInstanceUID: series}));
      const frames = await step('retrieveInstanceFrames', () => client.retrieveInstanceFrames({
        studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop,
        frameNumbers: [1]}));
      const inst = await step('retrieveInstance', () => client.retrieveInstance({
        studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop}));
      await step('storeInstances',
        () => client.storeInstances({datasets: [new Uint8Array(stow).buffer]}));
      return {
        studies: studies.length,
        study: mine.length ? mine[0]['0020000D'].Value[0] : null,
        series: seriesList.length,
        instances: instances.length,
        metadata: meta.length,
        rows: meta.length ? meta[0]['00280010'].Value[0] : null,
        frame_bytes: frames.length ? frames[0].byteLength : 0,
        instance_bytes: inst ? inst.byteLength : 0,
      };
    }, study, series, sop, stow);
    console.log(JSON.stringify(got));
  } finally {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main().catch((e) => { console.error('dicomweb_client: ' + e.message); process.exit(1); });
