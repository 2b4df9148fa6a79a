// The reporter's worklist: the network's items soonest due first, one page of 50 at a
// time from the server (limit/offset; open items are read straight off the due index,
// so a page costs the same at a million items), filters kept in the URL, claim,
// release, "Open" in OHIF, the report form, and a refresh every few seconds so that
// other trusts' claims show up.
'use strict';
const Worklist = (() => {
  const PAGE = 50, POLL_MS = 3000;
  let timer = null, busy = false, shown = [], current = null;

  function filters() {
    const q = new URLSearchParams(location.search);
    return {
      state: q.has('state') ? q.get('state') : 'open',
      site: q.get('site') || '', subspecialty: q.get('subspecialty') || '',
      priority: q.get('priority') || '', overdue: q.get('overdue') === 'true',
      mine: q.get('mine') === 'true', offset: Math.max(0, parseInt(q.get('offset') || '0', 10) || 0),
    };
  }

  function fillForm(f) {
    $('f-state').value = f.state === 'all' ? '' : f.state; $('f-subspecialty').value = f.subspecialty;
    $('f-priority').value = f.priority; $('f-overdue').checked = f.overdue; $('f-mine').checked = f.mine;
    const site = $('f-site');
    site.replaceChildren(el('option', { value: '' }, 'any'));
    for (const m of PM.members || []) site.appendChild(el('option', { value: m.id }, m.name || m.id.slice(0, 8)));
    site.value = f.site;
    $('f-mine-l').hidden = !PM.me.reporter;
  }

  // The filters into the URL (so a reload or a shared link shows the same list).
  function keep(f) {
    const q = new URLSearchParams();
    if (f.state !== 'open') q.set('state', f.state || 'all');
    for (const k of ['site', 'subspecialty', 'priority']) if (f[k]) q.set(k, f[k]);
    if (f.overdue) q.set('overdue', 'true');
    if (f.mine) q.set('mine', 'true');
    if (f.offset) q.set('offset', String(f.offset));
    history.replaceState(null, '', '/worklist' + (q.toString() ? '?' + q : ''));
  }

  function query(f) {
    const q = new URLSearchParams();
    if (f.state && f.state !== 'all') q.set('state', f.state);
    for (const k of ['site', 'subspecialty', 'priority']) if (f[k]) q.set(k, f[k]);
    if (f.overdue) q.set('overdue', 'true');
    if (f.mine) q.set('mine', 'true');
    q.set('limit', String(PAGE + 1));
    if (f.offset) q.set('offset', String(f.offset));
    return '/api/worklist?' + q;
  }

  function flagsCell(w) {
    const span = el('span', {});
    const add = (cls, text, title) => span.appendChild(el('span', { className: 'flag flag-' + cls, title: title || '' }, text));
    if (w.overdue) add('overdue', 'overdue');
    if (w.conflict) add('conflict', 'conflict', 'reports by more than one author: reconcile');
    if (w.at_risk) add('at-risk', 'at risk', 'unclaimed with under a quarter of its time left');
    for (const fl of w.flags || []) add('raised', 'raised by ' + fl.by, fl.reason + ' (' + fl.priority + ', ' + fl.time + ')');
    if (w.double_read) add('double', 'second read');
    return span;
  }

  const mine = (w) => !!(PM.me && PM.me.reporter) && w.claimed_by === PM.me.reporter;

  function actions(w) {
    const td = el('span', {});
    const open = el('a', { className: 'open', href: '/viewer/viewer?StudyInstanceUIDs=' + encodeURIComponent(w.study_uid),
      target: '_blank', rel: 'noopener' }, 'Open');
    open.setAttribute('aria-label', 'Open ' + w.patient_name + ' ' + w.description + ' in the viewer');
    td.appendChild(open);
    if (!PM.me.reporter) return td;
    const button = (cls, text, fn) => {
      const b = el('button', { type: 'button', className: cls }, text);
      b.addEventListener('click', fn);
      td.appendChild(document.createTextNode(' '));
      td.appendChild(b);
    };
    if (w.state === 'unreported') button('claim', 'Claim', () => act('claim', w));
    if (w.state === 'claimed' && mine(w)) {
      button('report', 'Report', () => openReport(w));
      button('release', 'Release', () => act('release', w));
    }
    if (w.state === 'reported' || w.state === 'verified')
      button('report', w.state === 'reported' && w.double_read ? 'Read / verify' : 'Reports', () => openReport(w));
    return td;
  }

  function itemRow(w) {
    const left = el('span', { className: w.overdue ? 'late' : '' }, timeLeft(w.due));
    left.title = 'due ' + w.due;
    const tr = el('tr', { className: mine(w) ? 'mine' : '', dataset: { study: w.study_uid, state: w.state } },
      ...[w.patient_name, w.accession, w.description, w.modality, siteCell(w.site), priorityBadge(w.priority),
        left, w.claimed_by || (w.state === 'claimed' ? '' : '-'), w.viewable ? 'yes' : 'no',
        flagsCell(w), actions(w)].map((c) => el('td', {}, c)));
    return tr;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const f = filters();
      const t0 = performance.now();
      const r = await api(query(f));
      if (PM.page !== 'worklist') return;
      if (!r.ok) { say(refusal('The worklist', r), true); return; }
      shown = r.data.slice(0, PAGE);
      $('items').replaceChildren(...shown.map(itemRow));
      if (!shown.length) $('items').appendChild(row(['Nothing matches these filters.']));
      $('range').textContent = shown.length ? 'items ' + (f.offset + 1) + '–' + (f.offset + shown.length) : 'no items';
      $('prev').disabled = f.offset === 0;
      $('more').disabled = r.data.length <= PAGE;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' (' + Math.round(performance.now() - t0) + ' ms)';
      document.body.dataset.worklistLoaded = String(Date.now());
    } finally {
      busy = false;
    }
  }

  async function act(what, w) {
    const r = await api('/api/' + what, { study_uid: w.study_uid });
    if (r.ok) say(r.data.message || what + ' done');
    else say(refusal('Could not ' + what + ' ' + w.patient_name + ' ' + w.description, r), true);
    await refresh();
    if (what === 'claim' && r.ok) openReport(Object.assign({}, w, { state: 'claimed', claimed_by: PM.me.reporter }));
  }

  async function openReport(w) {
    current = w;
    $('report-panel').hidden = false;
    $('rp-study').textContent = w.patient_name + ' · ' + w.accession + ' · ' + w.description + ' · ' + w.study_uid;
    $('rp-text').value = '';
    const r = await api('/api/reports?study=' + encodeURIComponent(w.study_uid));
    const reports = r.ok ? r.data : [];
    const prev = $('rp-previous');
    prev.replaceChildren(...reports.map((rep) => el('div', {},
      el('p', { className: 'muted' }, 'by ' + rep.reporter + ' at ' + rep.time + (rep.amends ? ' (addendum)' : '')),
      el('div', { className: 'prev-report' }, rep.text))));
    // Who may write what: the holder reports; the author adds an addendum; for a
    // double read another reporter verifies. Everyone else only reads.
    const mineReported = reports.some((rep) => rep.reporter === PM.me.reporter);
    const holder = w.state === 'claimed' && mine(w);
    const canWrite = holder || (mineReported && (w.state === 'reported' || w.state === 'verified'));
    for (const id of ['rp-text', 'rp-submit']) $(id).hidden = !canWrite;
    $('rp-text').labels.forEach((l) => { l.hidden = !canWrite; });
    $('rp-addendum').parentElement.hidden = !canWrite || holder;
    $('rp-addendum').checked = canWrite && !holder;
    $('rp-submit').textContent = holder ? 'Submit report' : 'Submit addendum';
    $('rp-verify').hidden = !(w.state === 'reported' && w.double_read && !mineReported);
    if (!reports.length) prev.appendChild(el('p', { className: 'muted' }, 'No report yet.'));
    (canWrite ? $('rp-text') : $('rp-close')).focus();
  }

  async function submitReport(e) {
    e.preventDefault();
    if (!current) return;
    const body = { study_uid: current.study_uid, text: $('rp-text').value };
    if ($('rp-addendum').checked) body.addendum = true;
    const r = await api('/api/report', body);
    if (!r.ok) { say(refusal('The report was not accepted', r), true); return; }
    say(r.data.message || 'report submitted');
    $('report-panel').hidden = true;
    current = null;
    refresh();
  }

  async function verify() {
    if (!current) return;
    const r = await api('/api/verify', { study_uid: current.study_uid });
    say(r.ok ? r.data.message || 'verified' : refusal('Could not verify', r), !r.ok);
    if (r.ok) { $('report-panel').hidden = true; current = null; }
    refresh();
  }

  async function nextForMe() {
    const box = $('next-box');
    box.hidden = false;
    const r = await api('/api/next');
    if (r.status === 404) { box.replaceChildren('Nothing for you to take now.'); return; }
    if (!r.ok) { box.replaceChildren(refusal('Next for me', r)); return; }
    const w = r.data;
    const claim = el('button', { type: 'button', className: 'claim' }, 'Claim it');
    claim.addEventListener('click', () => { box.hidden = true; act('claim', w); });
    box.replaceChildren('Next for you: ', priorityBadge(w.priority), ' ', w.patient_name + ' · ' + w.description +
      ' · ' + siteName(w.site) + ' · due in ' + timeLeft(w.due) + ' ', claim);
  }

  function page(delta) {
    const f = filters();
    f.offset = Math.max(0, f.offset + delta * PAGE);
    keep(f);
    refresh();
  }

  let wired = false;
  function wire() {
    if (wired) return;
    wired = true;
    $('filters').addEventListener('submit', (e) => {
      e.preventDefault();
      keep({ state: $('f-state').value || 'all', site: $('f-site').value, subspecialty: $('f-subspecialty').value.trim(),
        priority: $('f-priority').value, overdue: $('f-overdue').checked, mine: $('f-mine').checked, offset: 0 });
      refresh();
    });
    for (const id of ['f-state', 'f-site', 'f-priority', 'f-overdue', 'f-mine'])
      $(id).addEventListener('change', () => $('f-apply').click());
    $('prev').addEventListener('click', () => page(-1));
    $('more').addEventListener('click', () => page(1));
    $('next-for-me').addEventListener('click', nextForMe);
    $('next-for-me').hidden = !PM.me.reporter;
    $('report-form').addEventListener('submit', submitReport);
    $('rp-verify').addEventListener('click', verify);
    $('rp-close').addEventListener('click', () => { $('report-panel').hidden = true; current = null; });
  }

  return {
    start() {
      wire();
      fillForm(filters());
      refresh();
      timer = setInterval(refresh, POLL_MS);
    },
    stop() { clearInterval(timer); timer = null; },
  };
})();
