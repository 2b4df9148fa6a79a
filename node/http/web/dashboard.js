// The coordinator's dashboard: backlog per site, priority and sub-specialty (GET
// /api/backlog), orphans and overdue items with one-click assign (POST /api/assign),
// reporters' load, nodes up/down and digest agreement, and turnaround charts drawn
// here as SVG from GET /api/tat (the same numbers as `pacsmesh tat --json`).
'use strict';
const Dashboard = (() => {
  const POLL_MS = 5000, SVG = 'http://www.w3.org/2000/svg';
  let timer = null, roster = [];

  function assignCell(w, label) {
    const sel = el('select', { 'aria-label': 'Reporter for ' + w.patient_name });
    sel.appendChild(el('option', { value: '' }, 'choose…'));
    for (const r of roster) sel.appendChild(el('option', { value: r.id }, r.name + ' (' + r.id + ')'));
    const b = el('button', { type: 'button', className: 'assign' }, label);
    b.addEventListener('click', async () => {
      if (!sel.value) { say('Choose a reporter to assign ' + w.patient_name + ' to.', true); return; }
      const r = await api('/api/assign', { study_uid: w.study_uid, reporter: sel.value });
      say(r.ok ? r.data.message || 'assigned' : refusal('Could not assign ' + w.patient_name, r), !r.ok);
      refresh();
    });
    return el('span', {}, sel, ' ', b);
  }

  function overdueBy(w) { return el('span', { className: 'late' }, duration(Date.now() - Date.parse(w.due))); }

  // The backlog as a table: a row per site and priority, a column per sub-specialty;
  // each cell the open items, with the overdue ones among them.
  async function backlog() {
    const r = await api('/api/backlog');
    if (!r.ok) { say(refusal('The backlog', r), true); return null; }
    const groups = r.data.groups;
    const subs = [...new Set(groups.map((g) => g.subspecialty))].sort();
    const rank = { immediate: 0, urgent: 1, routine: 2 };
    const rows = new Map();
    for (const g of groups) {
      const k = g.site + ' ' + g.priority;
      if (!rows.has(k)) rows.set(k, { site: g.site, priority: g.priority, cells: {} });
      rows.get(k).cells[g.subspecialty] = g;
    }
    const sorted = [...rows.values()].sort((a, b) => siteName(a.site).localeCompare(siteName(b.site)) ||
      rank[a.priority] - rank[b.priority]);
    const t = { open: 0, claimed: 0, overdue: 0, orphans: 0, at_risk: 0 };
    const cell = (g) => {
      if (!g) return el('td', {}, '');
      for (const k of Object.keys(t)) t[k] += g[k];
      const td = el('td', { className: 'cell', dataset: { site: g.site, priority: g.priority,
        subspecialty: g.subspecialty, open: g.open } }, String(g.open));
      td.title = g.claimed + ' claimed, ' + g.overdue + ' overdue, ' + g.orphans + ' orphans, ' + g.at_risk + ' at risk';
      if (g.overdue) td.appendChild(el('span', { className: 'late' }, ' (' + g.overdue + ' overdue)'));
      return td;
    };
    $('backlog-head').replaceChildren(el('th', { scope: 'col' }, 'Site'), el('th', { scope: 'col' }, 'Priority'),
      ...subs.map((x) => el('th', { scope: 'col' }, x || '(none)')), el('th', { scope: 'col' }, 'All'));
    $('backlog-rows').replaceChildren(...sorted.map((row_) => {
      const all = Object.values(row_.cells).reduce((a, g) => a + g.open, 0);
      return el('tr', {}, el('th', { scope: 'row' }, siteCell(row_.site)), el('td', {}, priorityBadge(row_.priority)),
        ...subs.map((x) => cell(row_.cells[x])), el('td', {}, String(all)));
    }));
    $('backlog-total').textContent = t.open + ' open items: ' + t.claimed + ' claimed, ' + t.overdue + ' overdue, ' +
      t.orphans + ' orphans (past due, unclaimed), ' + t.at_risk + ' at risk.';
    return r.data;
  }

  const LIST = 20;
  function listRows(data, cells, none) {
    const shown = data.slice(0, LIST).map((w) => {
      const tr = row(cells(w));
      tr.dataset.study = w.study_uid;
      return tr;
    });
    if (data.length > LIST) shown.push(row(['… and more: the first ' + LIST + ', soonest due, are shown (the worklist lists all).']));
    return shown.length ? shown : [row([none])];
  }

  async function lists() {
    const [o, c] = await Promise.all([api('/api/worklist?overdue=true&state=unreported&limit=' + (LIST + 1)),
      api('/api/worklist?overdue=true&state=claimed&limit=' + (LIST + 1))]);
    if (o.ok) $('orphan-rows').replaceChildren(...listRows(o.data, (w) => [w.patient_name, w.description,
      siteCell(w.site), priorityBadge(w.priority), overdueBy(w), assignCell(w, 'Assign')], 'No orphans.'));
    if (c.ok) $('overdue-rows').replaceChildren(...listRows(c.data, (w) => [w.patient_name, w.description,
      siteCell(w.site), priorityBadge(w.priority), overdueBy(w), w.claimed_by, assignCell(w, 'Reassign')],
      'Nothing overdue is claimed.'));
  }

  async function load(bl) {
    const r = await api('/api/reporters');
    if (r.ok) roster = r.data;
    const loads = (bl && bl.reporters) || {};
    // Busiest first; the roster's reporters before others at equal load.
    const ids = [...new Set([...roster.map((x) => x.id), ...Object.keys(loads)])];
    const busy = (id) => (loads[id] ? loads[id].claimed + loads[id].reported_today : 0);
    const listed = (id) => (roster.some((x) => x.id === id) ? 0 : 1);
    ids.sort((a, b) => busy(b) - busy(a) || listed(a) - listed(b) || a.localeCompare(b));
    const more = ids.length > 25 ? [row(['… ' + (ids.length - 25) + ' more reporters with less load'])] : [];
    $('load-rows').replaceChildren(...ids.slice(0, 25).map((id) => {
      const rep = roster.find((x) => x.id === id) || {};
      const l = loads[id] || { claimed: 0, reported_today: 0 };
      return row([id, rep.name || '(not on the roster)', (rep.subspecialties || []).join(', '),
        rep.capacity == null ? '' : rep.capacity, l.claimed, l.reported_today]);
    }), ...more);
  }

  async function nodes() {
    const [m, s] = await Promise.all([api('/api/members'), api('/api/status')]);
    if (s.ok) $('digest').textContent = 'This node (' + s.data.name + '): ' + s.data.events + ' events, digest ' + s.data.digest.slice(0, 16) + '…';
    if (!m.ok) return;
    $('node-rows').replaceChildren(...m.data.map((n) => {
      const agree = n.self ? 'this node' : n.agrees === true ? 'agrees' : n.agrees === false ? 'differs (catching up)' : n.up ? 'unknown' : '-';
      const tr = row([el('span', { title: n.id }, n.name), n.state, n.up ? 'up' : 'DOWN', agree, n.last_seen]);
      tr.className = n.up ? '' : 'late';
      return tr;
    }));
  }

  async function refresh() {
    const bl = await backlog();
    if (PM.page !== 'dashboard') return; // signed out meanwhile
    await Promise.all([lists(), load(bl), nodes()]);
    document.body.dataset.dashboardLoaded = String(Date.now());
  }

  // One chart per site and priority: x the days of the range, y hours.
  function chart(title, days, points) {
    const W = 420, H = 180, L = 44, B = 28, T = 10;
    // The scale is the data's; a due target far above it is named, not drawn.
    const target = points.reduce((a, p) => Math.max(a, p.target_ms), 0);
    const top = Math.max(1000, ...points.map((p) => p.p90_ms));
    const max = (target && target <= 3 * top ? Math.max(top, target) : top) * 1.1;
    const x = (day) => L + (days.length < 2 ? 0 : (days.indexOf(day) * (W - L - 10)) / (days.length - 1));
    const y = (ms) => H - B - (ms / max) * (H - B - T);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('width', W); svg.setAttribute('height', H);
    svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', 'Turnaround, ' + title);
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text != null) e.textContent = text;
      svg.appendChild(e);
      return e;
    };
    add('line', { class: 'axis', x1: L, y1: H - B, x2: W - 5, y2: H - B });
    add('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B });
    for (const f of [0, 0.5, 1]) add('text', { x: 2, y: y(f * max / 1.1) + 3 }, duration(f * max / 1.1));
    add('text', { x: L, y: H - 8 }, days[0]);
    add('text', { x: W - 70, y: H - 8 }, days[days.length - 1]);
    if (target && target <= max) add('line', { class: 'target', x1: L, x2: W - 5, y1: y(target), y2: y(target) });
    if (target) add('text', { x: W - 150, y: T + 10 }, 'due target ' + duration(target) + (target > max ? ' (above)' : ''));
    for (const [k, cls] of [['median_ms', 'median'], ['p90_ms', 'p90']])
      add('polyline', { class: cls, points: points.map((p) => x(p.day) + ',' + y(p[k])).join(' ') });
    for (const p of points) {
      const c = add('circle', { cx: x(p.day), cy: y(p.median_ms), r: 3, class: 'point',
        'data-day': p.day, 'data-median-s': p.median_s, 'data-p90-s': p.p90_s, 'data-count': p.count });
      const t = document.createElementNS(SVG, 'title');
      t.textContent = p.day + ': median ' + duration(p.median_ms) + ', p90 ' + duration(p.p90_ms) + ', ' + p.count + ' reports';
      c.appendChild(t);
    }
    return svg;
  }

  async function turnaround(e) {
    if (e) e.preventDefault();
    const from = $('tat-from').value, to = $('tat-to').value;
    const r = await api('/api/tat?' + new URLSearchParams({ from, to, by: 'site,priority,day' }));
    if (!r.ok) { say(refusal('Turnaround', r), true); return; }
    const days = [];
    for (let d = new Date(from + 'T00:00:00Z'); dayString(d) <= to && days.length < 400; d.setUTCDate(d.getUTCDate() + 1))
      days.push(dayString(d));
    const series = new Map();
    for (const g of r.data) {
      const k = g.site + ' ' + g.priority;
      if (!series.has(k)) series.set(k, { site: g.site, priority: g.priority, points: [] });
      series.get(k).points.push(g);
    }
    const rank = { immediate: 0, urgent: 1, routine: 2 };
    const ordered = [...series.values()].sort((a, b) => siteName(a.site).localeCompare(siteName(b.site)) ||
      rank[a.priority] - rank[b.priority]);
    const box = $('tat-charts');
    box.replaceChildren();
    if (!series.size) box.appendChild(el('p', {}, 'No final reports in this range.'));
    for (const s of ordered) {
      const title = siteName(s.site) + ', ' + s.priority;
      const table = el('table', { className: 'tat-table' },
        el('thead', {}, el('tr', {}, ...['Day', 'Reports', 'Median', '90th percentile', 'Within target'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, ...s.points.map((p) => {
          const tr = row([p.day, p.count, duration(p.median_ms), duration(p.p90_ms), Math.round(p.within_target_share * 100) + '%']);
          tr.className = 'tat-row';
          Object.assign(tr.dataset, { site: s.site, priority: s.priority, day: p.day, count: p.count,
            medianS: p.median_s, p90S: p.p90_s });
          return tr;
        })));
      box.appendChild(el('figure', { className: 'chart' }, el('figcaption', {}, title), chart(title, days, s.points),
        el('details', {}, el('summary', {}, 'The numbers'), table)));
    }
    document.body.dataset.tatLoaded = String(Date.now());
  }

  let wired = false;
  return {
    start() {
      if (!wired) {
        wired = true;
        const today = new Date();
        $('tat-to').value = dayString(today);
        $('tat-from').value = dayString(new Date(today.getTime() - 13 * 86400000));
        $('tat-form').addEventListener('submit', turnaround);
      }
      refresh();
      turnaround();
      timer = setInterval(refresh, POLL_MS);
    },
    stop() { clearInterval(timer); timer = null; },
  };
})();
