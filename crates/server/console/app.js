// The shell: sign-in, the sidebar (shaped by the caller's role) and the hash router.
import { api, get, h, whenSignedOut, ApiError } from './api.js';
import { PAGES } from './pages.js';

const root = document.getElementById('app');

// What each role may do; the server enforces the same table (crates/server/src/permissions.rs).
const WRITES = {
  admin: ['cas', 'certificates', 'ras', 'devices', 'subscriptions', 'users'],
  operator: ['cas', 'certificates', 'ras', 'devices', 'subscriptions'],
  auditor: [],
};
const READS_AUDIT = ['admin', 'auditor'];

export const session = {
  me: null,
  can(what) { return (WRITES[this.me?.role] || []).includes(what); },
  readsAudit() { return READS_AUDIT.includes(this.me?.role); },
};

// The sidebar, in groups; a page the role cannot read is not offered (the server refuses it anyway).
function nav() {
  const staff = ['admin', 'operator'].includes(session.me?.role);
  const groups = [
    ['PKI', [['dashboard', 'Dashboard'], ['cas', 'Certificate authorities'], ['certificates', 'Certificates'],
      ['ras', 'Registration authorities'], ['devices', 'Devices']]],
    ['Events', [['events', 'Live events'], ['alerts', 'Alerts']]],
    ['Platform', [['connectors', 'Connectors'], ['rotation', 'Assets and rotation'],
      staff ? ['kmip', 'KMIP objects'] : null, ['secrets', 'Secrets']].filter(Boolean)],
  ];
  if (session.readsAudit()) groups.push(['Compliance', [['audit', 'Audit log']]]);
  const current = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'dashboard';
  return h('nav', { class: 'sidebar', 'aria-label': 'Main' },
    h('div', { class: 'brand' }, h('img', { src: '/ui/assets/icon.svg', alt: '' }), 'shedu'),
    h('ul', {}, groups.map(([group, items]) => h('li', { class: 'group' }, h('span', { class: 'group-label' }, group),
      h('ul', {}, items.map(([id, label]) => h('li', {},
        h('a', { href: `#/${id}`, class: id === current ? 'active' : null, 'aria-current': id === current ? 'page' : null }, label))))))),
    h('div', { class: 'whoami' },
      h('span', { class: 'who' }, session.me.name),
      h('span', { class: `role role-${session.me.role}` }, session.me.role),
      h('button', { class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out')));
}

async function signOut() {
  try { await api('DELETE', '/ui/session'); } catch (_) { /* the cookies are cleared either way */ }
  session.me = null;
  showLogin();
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
}

// Why a sign-in through an identity provider came back to this page (`?oidc-error=` from the server).
const OIDC_ERRORS = {
  state: 'The sign-in through the identity provider expired or did not start here; try again.',
  denied: 'The identity provider did not sign you in.',
  refused: 'The identity provider\'s answer was not accepted (no shedu role, or an invalid token).',
  unavailable: 'The identity provider cannot be reached right now; try again later.',
};

function oidcError() {
  const reason = new URLSearchParams(location.search).get('oidc-error');
  if (!reason) return '';
  history.replaceState(null, '', location.pathname + location.hash);
  return OIDC_ERRORS[reason] || OIDC_ERRORS.refused;
}

async function showLogin(message) {
  const error = h('p', { class: 'error', role: 'alert' }, message || oidcError());
  const providers = h('div', { class: 'providers', id: 'oidc-providers' });
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const token = h('input', { name: 'token', type: 'password', autocomplete: 'off', required: true });
  const signIn = async (body, ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      await api('POST', '/ui/session', body());
      await start();
    } catch (e) {
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
  };
  root.replaceChildren(h('main', { class: 'login' },
    h('div', { class: 'card login-card' },
      h('div', { class: 'brand big' }, h('img', { src: '/ui/assets/icon.svg', alt: '' }), 'shedu'),
      h('h1', {}, 'Sign in'),
      error,
      h('form', { id: 'login-form', onsubmit: (ev) => signIn(() => ({ username: user.value, password: pass.value }), ev) },
        field('User name', user), field('Password', pass),
        h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
      providers,
      h('details', { class: 'bootstrap' },
        h('summary', {}, 'First use: sign in with the bootstrap admin token'),
        h('form', { id: 'token-form', onsubmit: (ev) => signIn(() => ({ token: token.value }), ev) },
          field('Bootstrap token', token, 'printed by shedu serve, or --admin-token'),
          h('button', { type: 'submit' }, 'Sign in with the token'))))));
  user.focus();
  try {
    const { providers: list } = await get('/ui/oidc');
    // A plain link: the server starts the authorization code flow (PKCE) and sends the browser on.
    providers.replaceChildren(...(list.length ? [h('p', { class: 'or' }, 'or')] : []),
      ...list.map((p) => h('a', { class: 'button', href: `/ui/oidc/${p.id}/start`, 'data-provider': p.id }, p.label)));
  } catch (_) { /* no provider list: the password form still works */ }
}

let stopPage = null;
let generation = 0;

async function render() {
  if (stopPage) { stopPage(); stopPage = null; }
  const mine = ++generation;
  if (!session.me) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const page = PAGES[name || 'dashboard'] || PAGES.dashboard;
  const main = h('main', { class: 'content', id: 'content' });
  root.replaceChildren(h('div', { class: 'shell' }, nav(), main));
  try {
    const stop = await page(main, session, rest.map(decodeURIComponent));
    // A page left before it finished loading stops at once (its live stream, for one).
    if (typeof stop === 'function') {
      if (mine === generation) stopPage = stop; else stop();
    }
  } catch (e) {
    main.append(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
  }
}

async function start() {
  try {
    session.me = await get('/api/v1/auth/whoami');
  } catch (e) {
    session.me = null;
    showLogin();
    return;
  }
  await render();
}

whenSignedOut(() => { session.me = null; showLogin('Your session ended; sign in again.'); });
window.addEventListener('hashchange', render);
start();
