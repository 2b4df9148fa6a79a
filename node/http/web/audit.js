// The auditor's search: who accessed, claimed and reported what, by patient id, study,
// user and date range (GET /api/audit), and the selection exported as CSV.
'use strict';
const Audit = (() => {
  let selection = [];
  const COLUMNS = ['time', 'type', 'reporter', 'study_uid', 'detail', 'origin', 'seq', 'lamport'];

  // RFC 4180: every field quoted, quotes doubled; a field a spreadsheet would read as a
  // formula (=, +, -, @, tab, CR first) gets a leading apostrophe.
  function csvField(v) {
    let s = v == null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }
  function csv(events) {
    return [COLUMNS, ...events.map((e) => COLUMNS.map((c) => e[c]))].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
  }

  async function search(e) {
    if (e) e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, id] of [['patient', 'a-patient'], ['study', 'a-study'], ['user', 'a-user']])
      if ($(id).value.trim()) q.set(k, $(id).value.trim());
    const from = $('a-from').value, to = $('a-to').value;
    if (!q.toString() && !from && !to) { say('Give a patient id, a study, a user or a date range.', true); return; }
    history.replaceState(null, '', '/audit?' + new URLSearchParams([...q, ...(from ? [['from', from]] : []), ...(to ? [['to', to]] : [])]));
    const r = await api('/api/audit?' + q);
    if (!r.ok) { say(refusal('The audit search', r), true); return; }
    say('');
    // The range is of days, UTC, both ends included.
    selection = r.data.filter((ev) => (!from || ev.time.slice(0, 10) >= from) && (!to || ev.time.slice(0, 10) <= to));
    $('a-count').textContent = selection.length + ' event' + (selection.length === 1 ? '' : 's');
    $('event-rows').replaceChildren(...selection.map((ev) => {
      const tr = row([ev.time, ev.type, ev.reporter || '', ev.study_uid || '', ev.detail || '',
        el('span', { title: ev.origin }, siteName(ev.origin)), ev.seq]);
      tr.className = 'event';
      return tr;
    }));
    $('a-csv').disabled = !selection.length;
    document.body.dataset.auditLoaded = String(Date.now());
  }

  function exportCsv() {
    const blob = new Blob([csv(selection)], { type: 'text/csv;charset=utf-8' });
    const a = el('a', { href: URL.createObjectURL(blob), download: 'pacsmesh-audit.csv' });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  let wired = false;
  return {
    start() {
      if (!wired) {
        wired = true;
        $('audit-form').addEventListener('submit', search);
        $('a-csv').addEventListener('click', exportCsv);
      }
      const q = new URLSearchParams(location.search);
      for (const [k, id] of [['patient', 'a-patient'], ['study', 'a-study'], ['user', 'a-user'], ['from', 'a-from'], ['to', 'a-to']])
        if (q.get(k)) $(id).value = q.get(k);
      if ([...q.keys()].length) search();
    },
    stop() {},
    csv: () => csv(selection),
  };
})();
