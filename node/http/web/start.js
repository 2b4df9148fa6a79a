// Sign-in and the page switch: / sends a signed-in user to their role's page; each
// page checks the role first and explains when it may not be used (nothing is asked
// of the API then).
'use strict';
const PAGES = { worklist: Worklist, dashboard: Dashboard, audit: Audit };
const HOME = { reporter: 'worklist', coordinator: 'dashboard', admin: 'dashboard', auditor: 'audit' };

function showSignIn(why) {
  for (const p of Object.keys(PAGES)) { $('page-' + p).hidden = true; PAGES[p].stop(); }
  $('nav').hidden = true; $('whoami').hidden = true;
  $('signin').hidden = false;
  $('why').textContent = why || '';
  $('user').focus();
}

async function start() {
  const r = await api('/api/me');
  if (!r.ok) return showSignIn();
  PM.me = r.data;
  const next = new URLSearchParams(location.search).get('next');
  if (next && next.startsWith('/') && !next.startsWith('//')) { location.href = next; return; }
  await loadSites();
  $('signin').hidden = true;
  $('nav').hidden = false; $('whoami').hidden = false;
  $('who').textContent = PM.me.user + ' (' + PM.me.role + (PM.me.reporter ? ', ' + PM.me.reporter : '') + ')';
  let page = location.pathname.replace(/^\//, '');
  if (!PAGES[page]) {
    page = HOME[PM.me.role] || 'worklist';
    history.replaceState(null, '', '/' + page + location.search);
  }
  for (const p of Object.keys(PAGES)) {
    $('nav-' + p).hidden = !mayUse(p);
    if (p === page) $('nav-' + p).setAttribute('aria-current', 'page');
    else $('nav-' + p).removeAttribute('aria-current');
  }
  PM.page = page;
  $('page-' + page).hidden = false;
  document.title = 'pacsmesh: ' + page;
  if (!mayUse(page)) {
    say('The ' + page + ' page is not for your role (' + PM.me.role + '); nothing was changed. ' +
        'Your pages are listed above.', true);
    $('page-' + page).hidden = true;
    return;
  }
  PAGES[page].start();
}

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('/api/login', { user: $('user').value, password: $('password').value });
  $('password').value = '';
  if (!r.ok) { $('why').textContent = r.data.error || 'sign-in failed'; return; }
  start();
});
$('signout').addEventListener('click', async () => {
  // Stop the page first: a refresh still under way then draws nothing (it checks PM.page).
  for (const p of Object.keys(PAGES)) PAGES[p].stop();
  PM.page = null;
  await api('/api/logout', {});
  PM.me = null;
  history.replaceState(null, '', '/');
  say('');
  showSignIn('Signed out.');
});
start();
