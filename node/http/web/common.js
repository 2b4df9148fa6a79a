// What every workspace page shares: the REST API, building elements (text is always
// set as text, never parsed as HTML: names, descriptions and reports come from the
// mesh), messages, site names and times.
'use strict';
const PM = { me: null, sites: {}, page: null };
const $ = (id) => document.getElementById(id);

// One call to the node's REST API: {ok, status, data}. Writes carry X-Requested-With
// (the server refuses cookie-signed writes without it).
async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: { 'X-Requested-With': 'pacsmesh' } };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opts);
  } catch (e) {
    return { ok: false, status: 0, data: { error: 'the node cannot be reached: ' + e.message } };
  }
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: 'HTTP ' + r.status }; }
  if (r.status === 401 && PM.me && !path.startsWith('/api/login')) {
    PM.me = null;
    showSignIn('Your session has ended; sign in again.');
  }
  return { ok: r.ok, status: r.status, data };
}

// el('td', {className: 'x'}, 'text', otherNode): an element; strings become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'scope') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c == null) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function row(cells) { return el('tr', {}, ...cells.map((c) => el('td', {}, c == null ? '' : c))); }

function say(text, isError) {
  const m = $('msg');
  m.textContent = text || '';
  m.className = isError ? 'error' : '';
  m.hidden = !text;
}

// The API's refusal as a sentence (it names the holder for a lost claim).
function refusal(what, r) {
  return what + ': ' + ((r.data && (r.data.error || r.data.message)) || 'HTTP ' + r.status);
}

// Members have names: a site is shown by its name, its id in the tooltip.
async function loadSites() {
  const r = await api('/api/members');
  if (!r.ok) return;
  PM.members = r.data;
  for (const m of r.data) PM.sites[m.id] = m.name || m.id.slice(0, 8);
}
function siteName(hex) { return PM.sites[hex] || (hex || '').slice(0, 8); }
function siteCell(hex) { return el('span', { title: hex || '' }, siteName(hex)); }

function priorityBadge(p) { return el('span', { className: 'prio prio-' + p }, p); }

// "2h 05m", "-13m" for the time left until an ISO due time.
function duration(ms) {
  const neg = ms < 0, s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const t = d ? d + 'd ' + h + 'h' : h ? h + 'h ' + String(m).padStart(2, '0') + 'm' : m + 'm ' + (s % 60) + 's';
  return (neg ? '-' : '') + t;
}
function timeLeft(due) { return due ? duration(Date.parse(due) - Date.now()) : ''; }

function dayString(d) { return d.toISOString().slice(0, 10); }

function mayUse(page) {
  const role = PM.me && PM.me.role;
  return {
    worklist: ['reporter', 'coordinator', 'admin', 'auditor'],
    dashboard: ['coordinator', 'admin'],
    audit: ['auditor', 'admin'],
  }[page].includes(role);
}
