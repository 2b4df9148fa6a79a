// workspace.js STEP BASE USER PASSWORD SHOTS [ARGS...]: one step of the workspace pages'
// browser test in headless Chromium (Debian's, driven by puppeteer-core). Each step
// signs USER in at BASE, does its part, keeps screenshots in the directory SHOTS and
// prints one JSON object of what it saw; exits 1 with the reason otherwise. A script
// the page runs that is not its own (an alert from an escaped name, say) fails the step.
//
//   reporter STUDY XSS_STUDY   filter to urgent neuro work, claim STUDY, open it in
//                              OHIF, report it; the XSS study's name shown as text
//   watcher STUDY HOLDER       wait until STUDY shows claimed by HOLDER; no claim
//                              button; a claim through the API is refused naming HOLDER
//   lostclaim STUDY HOLDER OTHER_BASE OTHER_USER OTHER_PASSWORD
//                              the list shows STUDY free; OTHER_USER (reporter id
//                              HOLDER) claims it at OTHER_BASE before the click lands:
//                              the page says so, naming HOLDER
//   verify STUDY               a double read reported by another: the second reader
//                              reads the report and verifies it
//   coordinator FROM TO        the dashboard: backlog rows, the turnaround chart's
//                              numbers (per site, priority, day) printed
//   auditor PATIENT_ID         the audit search by patient id; its CSV export
//   wrongrole PAGE             a page the user's role may not use explains so
//   timing                     the worklist page's load time (ms), first page
//   reporter-simple            the worklist page loads and refreshes (a peer may be down)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const T = 30000;

async function signIn(page, base, user, password) {
  await page.goto(base + '/', {waitUntil: 'load'});
  await page.waitForSelector('#user', {visible: true, timeout: T});
  await page.type('#user', user);
  await page.type('#password', password);
  await page.click('#go');
  await page.waitForSelector('#nav', {visible: true, timeout: T});
}

// Rows of the worklist table as objects (the cells' text, as a user reads them).
function rows(page) {
  return page.$$eval('#items tr[data-study]', (trs) => trs.map((tr) => ({
    study: tr.dataset.study, state: tr.dataset.state,
    cells: [...tr.children].map((td) => td.textContent),
    claim: !!tr.querySelector('button.claim'), report: !!tr.querySelector('button.report'),
  })));
}

async function waitRefresh(page) {
  const before = await page.evaluate(() => document.body.dataset.worklistLoaded || '0');
  await page.waitForFunction((b) => (document.body.dataset.worklistLoaded || '0') !== b,
    {timeout: T}, before);
}

async function reporter(page, base, shots, study, xss) {
  const out = {};
  await page.waitForSelector('#items tr', {timeout: T});
  out.landed = new URL(page.url()).pathname;
  // Filter to urgent neuro work: the filters go into the URL.
  await page.select('#f-priority', 'urgent');
  await page.type('#f-subspecialty', 'neuro');
  await page.click('#f-apply');
  await page.waitForFunction(() => location.search.includes('subspecialty=neuro') &&
    location.search.includes('priority=urgent'), {timeout: T});
  await waitRefresh(page);
  out.url = new URL(page.url()).search;
  const filtered = await rows(page);
  out.filtered = filtered.map((r) => r.study);
  out.filtered_cells = filtered.map((r) => r.cells);
  await page.screenshot({path: path.join(shots, 'worklist-filtered.png'), fullPage: true});
  // Claim the study.
  await page.click(`#items tr[data-study="${study}"] button.claim`);
  await page.waitForFunction((s) => {
    const tr = document.querySelector(`#items tr[data-study="${s}"]`);
    return tr && tr.dataset.state === 'claimed' && !document.getElementById('report-panel').hidden;
  }, {timeout: T}, study);
  out.claim_message = await page.$eval('#msg', (m) => m.textContent);
  // Open it in OHIF (a new tab) and wait until an image is drawn.
  const [viewer] = await Promise.all([
    new Promise((resolve) => page.browser().once('targetcreated', (t) => resolve(t.page()))),
    page.click(`#items tr[data-study="${study}"] a.open`),
  ]);
  await viewer.setViewport({width: 1280, height: 800});
  out.viewer_url = viewer.url();
  await viewer.waitForFunction(() => {
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
  await viewer.screenshot({path: path.join(shots, 'viewer.png')});
  out.viewer_text = await viewer.evaluate(() => document.body.innerText.slice(0, 2000));
  await viewer.close();
  // Report it, with markup in the text that must stay text.
  await page.bringToFront();
  const text = 'CT head: no acute abnormality. <b>bold?</b> <script>alert("report")</script>';
  await page.type('#rp-text', text);
  await page.screenshot({path: path.join(shots, 'worklist-report-form.png'), fullPage: true});
  await page.click('#rp-submit');
  await page.waitForFunction(() => document.getElementById('report-panel').hidden, {timeout: T});
  out.report_message = await page.$eval('#msg', (m) => m.textContent);
  // Back to everything open: the hostile study's name and description read literally.
  await page.goto(base + '/worklist?state=all', {waitUntil: 'load'});
  await page.waitForSelector(`#items tr[data-study="${xss}"]`, {timeout: T});
  const x = (await rows(page)).find((r) => r.study === xss);
  out.xss_cells = x.cells;
  out.xss_elements = await page.$$eval('#items img, #items script', (e) => e.length);
  const mine = (await rows(page)).find((r) => r.study === study);
  out.state_after = mine && mine.state;
  // The report as stored, shown by the form: the markup is text.
  await page.click(`#items tr[data-study="${study}"] button.report`);
  await page.waitForSelector('#rp-previous .prev-report', {timeout: T});
  out.report_shown = await page.$eval('#rp-previous .prev-report', (d) => d.textContent);
  out.report_elements = await page.$$eval('#rp-previous b, #rp-previous script', (e) => e.length);
  await page.screenshot({path: path.join(shots, 'worklist.png'), fullPage: true});
  return out;
}

async function watcher(page, base, shots, study, holder) {
  const out = {};
  await page.goto(base + '/worklist?state=all', {waitUntil: 'load'});
  const t0 = Date.now();
  await page.waitForFunction((s, h) => {
    const tr = document.querySelector(`#items tr[data-study="${s}"]`);
    return tr && tr.dataset.state === 'claimed' && tr.textContent.includes(h);
  }, {timeout: 60000, polling: 200}, study, holder);
  out.seen_after_ms = Date.now() - t0;
  const r = (await rows(page)).find((x) => x.study === study);
  out.claim_button = r.claim;
  out.cells = r.cells;
  // A claim through the API (as a stale page would send it) is refused, naming the holder.
  out.refusal = await page.evaluate(async (s) => {
    const res = await fetch('/api/claim', {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-Requested-With': 'pacsmesh'},
      body: JSON.stringify({study_uid: s})});
    return {status: res.status, body: await res.json()};
  }, study);
  await page.screenshot({path: path.join(shots, 'worklist-other-node.png'), fullPage: true});
  return out;
}

async function lostClaim(page, base, shots, study, holder, otherBase, otherUser, otherPassword) {
  await page.goto(base + '/worklist?state=all', {waitUntil: 'load'});
  await page.waitForSelector(`#items tr[data-study="${study}"] button.claim`, {timeout: T});
  // Freeze the list as it was (a click made just before the next refresh); the other
  // reporter claims at their own node; wait until this node knows it.
  await page.evaluate(() => Worklist.stop());
  const other = await fetch(otherBase + '/api/claim', {method: 'POST',
    headers: {'Content-Type': 'application/json',
      Authorization: 'Basic ' + Buffer.from(otherUser + ':' + otherPassword).toString('base64')},
    body: JSON.stringify({study_uid: study})});
  if (other.status !== 200) throw new Error('the other claim answered ' + other.status);
  await page.waitForFunction(async (s, h) => {
    const r = await fetch('/api/worklist?state=claimed', {credentials: 'same-origin'});
    return (await r.json()).some((w) => w.study_uid === s && w.claimed_by === h);
  }, {timeout: 60000, polling: 300}, study, holder);
  await page.click(`#items tr[data-study="${study}"] button.claim`);
  await page.waitForFunction((h) => {
    const m = document.getElementById('msg');
    return !m.hidden && m.textContent.includes(h);
  }, {timeout: T}, holder);
  const out = {message: await page.$eval('#msg', (m) => m.textContent),
    error_shown: await page.$eval('#msg', (m) => m.className === 'error')};
  await page.screenshot({path: path.join(shots, 'worklist-claim-lost.png'), fullPage: true});
  return out;
}

async function verifyStep(page, base, shots, study) {
  await page.goto(base + '/worklist?state=reported', {waitUntil: 'load'});
  await page.waitForSelector(`#items tr[data-study="${study}"] button.report`, {timeout: T});
  await page.click(`#items tr[data-study="${study}"] button.report`);
  await page.waitForSelector('#rp-verify:not([hidden])', {timeout: T});
  const out = {previous: await page.$eval('#rp-previous', (d) => d.textContent)};
  await page.screenshot({path: path.join(shots, 'worklist-second-read.png'), fullPage: true});
  await page.click('#rp-verify');
  await page.waitForFunction(() => document.getElementById('report-panel').hidden, {timeout: T});
  out.message = await page.$eval('#msg', (m) => m.textContent);
  return out;
}

async function coordinator(page, base, shots, from, to) {
  const out = {landed: new URL(page.url()).pathname};
  await page.waitForSelector('#backlog-rows td.cell', {timeout: T});
  await page.$eval('#tat-from', (e, v) => { e.value = v; }, from);
  await page.$eval('#tat-to', (e, v) => { e.value = v; }, to);
  const before = await page.evaluate(() => document.body.dataset.tatLoaded || '0');
  await page.$eval('#tat-form', (f) => f.requestSubmit()); // the lists above may reflow meanwhile
  await page.waitForFunction((b) => (document.body.dataset.tatLoaded || '0') !== b, {timeout: T}, before);
  await page.waitForSelector('#tat-charts svg circle.point', {timeout: T});
  out.backlog = await page.$$eval('#backlog-rows td.cell', (tds) => tds.map((tr) => ({
    site: tr.dataset.site, priority: tr.dataset.priority, subspecialty: tr.dataset.subspecialty,
    open: Number(tr.dataset.open)})));
  out.chart = await page.$$eval('#tat-charts svg circle.point', (cs) => cs.map((c) => ({
    day: c.dataset.day, median_s: Number(c.dataset.medianS), p90_s: Number(c.dataset.p90S),
    count: Number(c.dataset.count)})));
  out.table = await page.$$eval('#tat-charts tr.tat-row', (trs) => trs.map((tr) => ({
    site: tr.dataset.site, priority: tr.dataset.priority, day: tr.dataset.day,
    count: Number(tr.dataset.count), median_s: Number(tr.dataset.medianS),
    p90_s: Number(tr.dataset.p90S)})));
  await page.waitForSelector('#node-rows tr', {timeout: T});
  out.nodes = await page.$$eval('#node-rows tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  out.orphans = await page.$$eval('#orphan-rows tr[data-study]', (trs) => trs.map((tr) => tr.dataset.study));
  out.load = await page.$$eval('#load-rows tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  await page.screenshot({path: path.join(shots, 'dashboard.png'), fullPage: true});
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({path: path.join(shots, 'dashboard-top.png')});
  await page.$eval('#tat-h', (h) => h.scrollIntoView());
  await page.screenshot({path: path.join(shots, 'dashboard-turnaround.png')});
  return out;
}

// The coordinator assigns an orphan (past due, unclaimed) in one click: the reporter
// chosen in its row of the orphans list, then Assign. The lists are redrawn every 5 s,
// so the choice and the click happen on one drawing of the row.
async function assignOrphan(page, base, shots, study, reporter) {
  const out = {};
  const sel = `#orphan-rows tr[data-study="${study}"]`;
  // The row offers the reporter once the roster has loaded (the first drawing may not).
  await page.waitForSelector(`${sel} select option[value="${reporter}"]`, {timeout: T});
  await page.$eval(sel, (tr, who) => {
    tr.querySelector('select').value = who;
    tr.querySelector('button.assign').click();
  }, reporter);
  await page.waitForFunction(() => !document.getElementById('msg').hidden, {timeout: T});
  out.message = await page.$eval('#msg', (m) => m.textContent);
  out.error = await page.$eval('#msg', (m) => m.className === 'error');
  await page.waitForFunction((s) => !document.querySelector(`#orphan-rows tr[data-study="${s}"]`),
    {timeout: T}, study);
  out.left_orphans = true;
  await page.screenshot({path: path.join(shots, 'dashboard-assigned.png'), fullPage: true});
  return out;
}

// Sign out: the sign-in page again, the session ended on the server (the API answers
// 401), and a page opened afterwards sends the browser to sign in.
async function signOut(page, base, shots) {
  const out = {};
  await page.click('#signout');
  await page.waitForSelector('#user', {visible: true, timeout: T});
  await page.screenshot({path: path.join(shots, 'sign-in.png')});
  out.me_status = await page.evaluate(async () => (await fetch('/api/me')).status);
  await page.goto(base + '/worklist', {waitUntil: 'load'});
  const u = new URL(page.url());
  out.after_worklist = u.pathname + u.search;
  out.sign_in_shown = await page.$eval('#user', (e) => e.offsetParent !== null);
  return out;
}

async function auditor(page, base, shots, patient) {
  const out = {landed: new URL(page.url()).pathname};
  await page.waitForSelector('#a-patient', {visible: true, timeout: T});
  await page.type('#a-patient', patient);
  await page.click('#a-go');
  await page.waitForSelector('#event-rows tr.event', {timeout: T});
  out.events = await page.$$eval('#event-rows tr.event', (trs) => trs.map((tr) => ({
    type: tr.children[1].textContent, user: tr.children[2].textContent, study: tr.children[3].textContent})));
  out.csv = await page.evaluate(() => Audit.csv());
  await page.screenshot({path: path.join(shots, 'audit.png'), fullPage: true});
  return out;
}

async function wrongRole(page, base, shots, which) {
  await page.goto(base + '/' + which, {waitUntil: 'load'});
  await page.waitForSelector('#msg:not([hidden])', {timeout: T});
  const out = {message: await page.$eval('#msg', (m) => m.textContent),
    page_shown: await page.$eval('#page-' + which, (s) => !s.hidden)};
  await page.screenshot({path: path.join(shots, 'wrong-role-' + which + '.png')});
  return out;
}

async function timing(page, base, shots) {
  const out = {runs: []};
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await page.goto(base + '/worklist', {waitUntil: 'load'});
    await page.waitForSelector('#items tr[data-study]', {timeout: T});
    out.runs.push(Date.now() - t0);
  }
  out.rows = (await rows(page)).length;
  out.range = await page.$eval('#range', (e) => e.textContent);
  await page.click('#more');
  await page.waitForFunction(() => location.search.includes('offset=50'), {timeout: T});
  await waitRefresh(page);
  out.second_page = await page.$eval('#range', (e) => e.textContent);
  await page.screenshot({path: path.join(shots, 'worklist-100k.png')});
  return out;
}

async function simple(page, base, shots) {
  await page.goto(base + '/worklist?state=all', {waitUntil: 'load'});
  await page.waitForSelector('#items tr[data-study]', {timeout: T});
  await waitRefresh(page); // the live refresh carries on
  const out = {rows: (await rows(page)).length, msg: await page.$eval('#msg', (m) => m.hidden ? '' : m.textContent)};
  await page.screenshot({path: path.join(shots, 'worklist-peer-down.png'), fullPage: true});
  return out;
}

async function main() {
  const [step, base, user, password, shots, ...rest] = process.argv.slice(2);
  fs.mkdirSync(shots, {recursive: true});
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--enable-unsafe-swiftshader', `--user-data-dir=${profile}`],
  });
  const foreign = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1400, height: 900});
    // Any dialog (alert from an injected script) is a failure.
    page.on('dialog', async (d) => { foreign.push('dialog: ' + d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => foreign.push('page error: ' + e.message));
    await signIn(page, base, user, password);
    const steps = {reporter, watcher, lostclaim: lostClaim, verify: verifyStep, coordinator, auditor, wrongrole: wrongRole, timing, assign: assignOrphan, signout: signOut,
      'reporter-simple': simple};
    if (!steps[step]) throw new Error('no step ' + step);
    const out = await steps[step](page, base, shots, ...rest);
    if (foreign.length) throw new Error(foreign.join('; '));
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main().catch((e) => { console.error('workspace: ' + e.message); process.exit(1); });
