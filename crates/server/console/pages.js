// The pages. Each is `async (main, session, args) => optional stop function`, and builds its DOM with h().
// Forms send what the API takes and show its problem documents next to the field they name.
import { get, post, patch, del, h, qs, download, ApiError } from './api.js';

const fmtDate = (s) => (s ? new Date(s).toLocaleString() : '—');
const shortDate = (s) => (s ? new Date(s).toISOString().slice(0, 10) : '—');
const badge = (status) => h('span', { class: `badge badge-${status}` }, status.replaceAll('_', ' '));

function header(title, ...actions) {
  return h('header', { class: 'page-header' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, body);
}

function table(columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(r))))))));
}

// A form whose submit sends `body()` through `action` and reports the API's problem next to the field it
// names (or at the top of the form).
function form(id, fields, submitLabel, body, action, done) {
  const general = h('p', { class: 'error', role: 'alert' });
  const el = h('form', { id, class: 'form', novalidate: true }, general, fields,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, submitLabel)));
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    el.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
    general.textContent = '';
    const button = el.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const result = await action(body(el));
      await done(result);
    } catch (e) {
      const message = e instanceof ApiError ? e.message : String(e);
      const target = [...el.querySelectorAll('[data-field]')].find((f) => message.includes(f.dataset.field));
      (target ? target.querySelector('.field-error') : general).textContent = message;
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

// A labelled input; `field` is the API's name for it (problem details that name it land here).
function input(label, name, attrs = {}, fieldName = name) {
  const control = attrs.options
    ? h('select', { name, id: `f-${name}` }, attrs.options.map(([v, l]) => h('option', { value: v }, l)))
    : attrs.multiline
      ? h('textarea', { name, id: `f-${name}`, rows: 8, spellcheck: 'false', placeholder: attrs.placeholder })
      : h('input', { name, id: `f-${name}`, type: attrs.type || 'text', placeholder: attrs.placeholder, value: attrs.value });
  return h('div', { class: 'field', 'data-field': fieldName },
    h('label', { for: `f-${name}` }, label), control, h('small', { class: 'field-error', role: 'alert' }));
}

const val = (form, name) => form.elements[name].value.trim();
const num = (form, name) => (val(form, name) ? Number(val(form, name)) : undefined);

function modal(title, content) {
  const dialog = h('dialog', { class: 'modal' },
    h('header', {}, h('h2', {}, title), h('button', { class: 'link close', 'aria-label': 'Close', onclick: () => dialog.close() }, '×')),
    content);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

const KEY_TYPES = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048', 'rsa-3072', 'rsa-4096'].map((k) => [k, k]);

// ---- Dashboard ----------------------------------------------------------------------------------------

function counts(title, map, id) {
  const entries = Object.entries(map || {});
  const total = entries.reduce((n, [, c]) => n + c, 0);
  return card(title, h('div', { class: 'stat', id }, h('strong', {}, String(total)), h('span', {}, 'total')),
    h('ul', { class: 'bars' }, entries.map(([status, c]) => h('li', {},
      badge(status), h('meter', { min: 0, max: total || 1, value: c }), h('span', { class: 'count' }, String(c))))));
}

// ---- Charts: inline SVG built with DOM calls (no markup parsing, no style attributes: colours come from
// classes in style.css, which the Content-Security-Policy allows) ---------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
const CERT_STATUSES = ['active', 'about_to_expire', 'expired', 'revoked'];
const label = (st) => st.replaceAll('_', ' ');

// Stacked horizontal bars: one row per [name, {status: count}], scaled to the largest row.
function stackedBars(id, rows, statuses, title) {
  const rowH = 26; const labelW = 150; const width = 640; const barW = width - labelW - 60;
  const max = Math.max(1, ...rows.map(([, c]) => statuses.reduce((n, st) => n + (c[st] || 0), 0)));
  // Legend entries side by side, each as wide as its label (about 6.5 px a character at 12 px), wrapping.
  let lx = 0; let ly = 12;
  const legend = s('g', { class: 'legend' }, statuses.map((st) => {
    const w = 24 + label(st).length * 6.5;
    if (lx + w > width) { lx = 0; ly += 18; }
    const entry = s('g', { transform: `translate(${lx}, ${ly})` },
      s('rect', { class: `seg-${st}`, width: 10, height: 10, y: -9, rx: 2 }), s('text', { x: 14 }, label(st)));
    lx += w;
    return entry;
  }));
  const top = ly + 12;
  const height = top + rows.length * rowH + 4;
  // Drawn at its own pixel size (never scaled up; scaled down on a narrow screen by the style sheet).
  return s('svg', { id, class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title },
    s('title', {}, title), legend,
    rows.map(([name, counts], i) => {
      let x = labelW;
      const total = statuses.reduce((n, st) => n + (counts[st] || 0), 0);
      return s('g', { class: 'row', 'data-name': name, transform: `translate(0, ${top + i * rowH})` },
        s('text', { x: labelW - 8, y: 15, 'text-anchor': 'end', class: 'row-label' }, name.length > 22 ? `${name.slice(0, 21)}…` : name),
        s('rect', { class: 'track', x: labelW, y: 4, width: barW, height: 14, rx: 3 }),
        statuses.filter((st) => counts[st]).map((st) => {
          const w = Math.max(2, (counts[st] / max) * barW);
          const seg = s('rect', { class: `seg-${st}`, 'data-status': st, 'data-count': counts[st], x, y: 4, width: w, height: 14, rx: 3 },
            s('title', {}, `${name}: ${counts[st]} ${label(st)}`));
          x += w;
          return seg;
        }),
        s('text', { x: labelW + barW + 8, y: 15, class: 'total' }, String(total)));
    }));
}

// The expiry timeline: unexpired certificates due within 7, 30 and 90 days, as columns along a time axis.
function expiryTimeline(id, expiring) {
  const windows = Object.entries(expiring).map(([d, n]) => [Number(d), n]).sort(([a], [b]) => a - b);
  const width = 420; const height = 170; const left = 30; const bottom = 140; const top = 20;
  const lastDay = Math.max(...windows.map(([d]) => d), 1);
  const max = Math.max(1, ...windows.map(([, n]) => n));
  const xOf = (d) => left + (d / lastDay) * (width - left - 20);
  let prev = 0;
  return s('svg', { id, class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Certificates expiring in the next 7, 30 and 90 days' },
    s('title', {}, 'Certificates expiring in the next 7, 30 and 90 days'),
    s('line', { class: 'axis', x1: left, y1: bottom, x2: width - 10, y2: bottom }),
    s('text', { x: left, y: bottom + 18, class: 'tick', 'text-anchor': 'middle' }, 'today'),
    windows.map(([days, n]) => {
      const x0 = xOf(prev); const x1 = xOf(days); prev = days;
      const h = (n / max) * (bottom - top - 14);
      return s('g', { class: 'window', 'data-days': days, 'data-count': n },
        s('rect', { class: `due due-${days}`, x: x0 + 3, y: bottom - h, width: Math.max(2, x1 - x0 - 6), height: h, rx: 3 },
          s('title', {}, `${n} due within ${days} days`)),
        s('text', { x: (x0 + x1) / 2, y: bottom - h - 4, 'text-anchor': 'middle', class: 'value' }, String(n)),
        s('line', { class: 'tick-line', x1: x1, y1: bottom, x2: x1, y2: bottom + 5 }),
        s('text', { x: x1, y: bottom + 18, 'text-anchor': 'middle', class: 'tick' }, `${days} d`));
    }));
}

async function dashboard(main) {
  main.append(header('Dashboard'));
  const [status, { items: cas }] = await Promise.all([get('/api/v1/status'), get('/api/v1/cas')]);
  const soon = Object.entries(status.expiring).sort(([a], [b]) => a - b);
  const statuses = ['active', 'about_to_expire', 'expired', 'revoked'];
  const perCa = Object.entries(status.certificates_by_ca || {});
  const caName = (id) => cas.find((c) => c.id === id)?.name || id;
  main.append(h('div', { class: 'grid' },
    counts('Certificates', status.certificates, 'stat-certificates'),
    counts('Devices', status.devices, 'stat-devices'),
    counts('Certificate authorities', status.cas, 'stat-cas'),
    card('Expiring', expiryTimeline('chart-expiring', status.expiring),
      h('ul', { class: 'timeline', id: 'expiring' }, soon.map(([days, n]) => h('li', {},
        h('strong', {}, String(n)), ` in the next ${days} days`)))),
    card('Event delivery', h('p', {}, `Outbox head: ${status.events.head}`),
      table([['Sink', (s) => s.name], ['Lag', (s) => String(s.lag)], ['Updated', (s) => fmtDate(s.updated_at)]],
        status.events.sinks, 'No sink has delivered yet.')),
    card('Server', h('p', {}, `Version ${status.version}, ${status.database.kind} (status read in ${status.database.read_ms.toFixed(1)} ms)`))));
  const deviceStatuses = ['pending_provisioning', 'fully_provisioned', 'requires_action', 'with_warnings', 'decommissioned'];
  main.append(card('Certificates by status per CA',
    perCa.length ? stackedBars('chart-per-ca', perCa.map(([id, c]) => [caName(id), c]), CERT_STATUSES, 'Certificates by status per CA') : null,
    h('div', { id: 'per-ca' }, table([
    ['CA', ([id]) => h('a', { href: `#/certificates/${encodeURIComponent(id)}` }, caName(id))],
    ...statuses.map((st) => [st.replaceAll('_', ' '), ([, counts]) => String(counts[st] || 0)]),
    ['', ([, counts]) => h('span', { class: 'stack', 'aria-hidden': 'true' }, statuses.map((st) => h('meter', {
      class: `seg seg-${st}`, min: 0, max: Object.values(counts).reduce((a, b) => a + b, 0), value: counts[st] || 0,
    })))],
  ], perCa, 'No certificate issued yet.'))));
  main.append(card('Devices by status', Object.keys(status.devices || {}).length
    ? stackedBars('chart-devices', [['all devices', status.devices]], deviceStatuses, 'Devices by status')
    : h('p', { class: 'empty' }, 'No device yet.')));
}

// ---- CAs ----------------------------------------------------------------------------------------------

async function cas(main, session) {
  const { items } = await get('/api/v1/cas');
  const byParent = new Map();
  for (const ca of items) {
    const key = ca.parent_id && items.some((p) => p.id === ca.parent_id) ? ca.parent_id : '';
    byParent.set(key, [...(byParent.get(key) || []), ca]);
  }
  const tree = (parent, depth) => (byParent.get(parent) || []).flatMap((ca) => [[ca, depth], ...tree(ca.id, depth + 1)]);
  const rows = tree('', 0);
  const canWrite = session.can('cas');
  main.append(header('Certificate authorities',
    canWrite ? h('button', { class: 'primary', id: 'new-root', onclick: () => createCa(null, items) }, 'New root CA') : null,
    canWrite ? h('button', { id: 'new-intermediate', onclick: () => createCa('intermediate', items) }, 'New intermediate CA') : null));
  main.append(card(null, table([
    ['Name', ([ca, depth]) => h('span', { class: `tree depth-${Math.min(depth, 4)}` }, h('strong', {}, ca.name), h('small', {}, ca.subject))],
    ['Kind', ([ca]) => ca.kind],
    ['Key', ([ca]) => ca.key_type],
    ['Status', ([ca]) => badge(ca.status)],
    ['Expires', ([ca]) => shortDate(ca.not_after)],
    ['', ([ca]) => h('div', { class: 'row-actions' },
      h('a', { href: `#/certificates/${encodeURIComponent(ca.id)}` }, 'Certificates'),
      h('button', { class: 'link', onclick: () => download(`${ca.name}.pem`, ca.certificate_pem) }, 'Download'),
      canWrite && ca.can_issue ? h('button', { class: 'link', 'data-edit-profile': ca.name, onclick: () => editProfile(ca) }, 'Profile') : null,
      h('a', { href: `/crl/${encodeURIComponent(ca.id)}`, class: 'muted' }, 'CRL'))],
  ], rows, 'No CA yet. Create a root CA to start.')));
}

function createCa(kind, cas) {
  const issuers = cas.filter((c) => c.can_issue);
  const fields = [
    input('Name', 'name', { placeholder: 'plant-root' }),
    input('Common name', 'cn', { placeholder: 'Plant Root CA' }, 'common_name'),
    input('Organization', 'org', {}, 'organization'),
    input('Key type', 'key_type', { options: KEY_TYPES }),
    input('Validity (days)', 'validity_days', { type: 'number', placeholder: kind ? '1825' : '3650' }),
  ];
  if (kind) fields.push(input('Parent CA', 'parent_id', { options: issuers.map((c) => [c.id, c.name]) }));
  const dialog = modal(kind ? 'New intermediate CA' : 'New root CA', form('ca-form', fields, 'Create', (f) => ({
    name: val(f, 'name'),
    key_type: val(f, 'key_type'),
    subject: { common_name: val(f, 'cn'), organization: val(f, 'org') || undefined },
    validity_days: num(f, 'validity_days'),
    parent_id: kind ? val(f, 'parent_id') : undefined,
  }), (b) => post('/api/v1/cas', b), () => { dialog.close(); location.hash = '#/cas'; window.dispatchEvent(new HashChangeEvent('hashchange')); }));
}

// The issuance profile of a CA, through PATCH /api/v1/cas/{id} {"profile": {...}}: only the settings
// changed here are sent; the server checks them as at creation and names the field it refuses.
function editProfile(ca) {
  const p = ca.profile;
  const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const fields = [
    input('Default validity (days)', 'default_validity_days', { type: 'number', value: String(p.default_validity_days) }),
    input('About to expire (days before)', 'expiry_warning_days', { type: 'number', value: String(p.expiry_warning_days) }),
    // Before key_usages: a message naming ext_key_usages also contains "key_usages".
    input('Extended key usages', 'ext_key_usages', { value: p.ext_key_usages.join(', ') }),
    input('Key usages', 'key_usages', { value: p.key_usages.join(', ') }),
    input('Allowed key types', 'allowed_key_types', { value: p.allowed_key_types.join(', ') }),
    input('Most SANs per certificate', 'max_sans', { type: 'number', value: String(p.max_sans) }),
  ];
  const changed = (f) => {
    const out = {};
    for (const name of ['default_validity_days', 'expiry_warning_days', 'max_sans']) {
      // A number the browser cannot read goes as text, so that the server's message names the field.
      const raw = val(f, name);
      const value = Number.isFinite(Number(raw)) ? Number(raw) : raw;
      if (raw !== '' && value !== p[name]) out[name] = value;
    }
    for (const name of ['key_usages', 'ext_key_usages', 'allowed_key_types']) {
      const value = list(val(f, name));
      if (value.join(',') !== p[name].join(',')) out[name] = value;
    }
    return { profile: out };
  };
  const dialog = modal(`Profile of ${ca.name}`, form('profile-form', fields, 'Save profile', changed,
    (b) => patch(`/api/v1/cas/${encodeURIComponent(ca.id)}`, b),
    () => { dialog.close(); window.dispatchEvent(new HashChangeEvent('hashchange')); }));
}

// ---- Certificates -------------------------------------------------------------------------------------

async function certificates(main, session, [caFilter]) {
  const { items: cas } = await get('/api/v1/cas');
  const canWrite = session.can('certificates');
  main.append(header('Certificates',
    canWrite ? h('button', { class: 'primary', id: 'issue', onclick: () => issue(cas) }, 'Issue from CSR') : null));
  const filters = h('form', { class: 'filters', id: 'cert-filters' },
    input('CA', 'ca_id', { options: [['', 'All CAs'], ...cas.map((c) => [c.id, c.name])] }),
    input('Status', 'status', { options: [['', 'Any'], ['active', 'active'], ['about_to_expire', 'about to expire'], ['expired', 'expired'], ['revoked', 'revoked']] }),
    input('Subject contains', 'subject', { placeholder: 'CN=…' }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Filter')));
  if (caFilter) filters.elements.ca_id.value = caFilter;
  const results = h('div', { id: 'cert-results' });
  const more = h('button', { id: 'more', class: 'hidden' }, 'Next page');
  let cursor = null;
  const load = async (reset) => {
    if (reset) { cursor = null; results.replaceChildren(); }
    const page = await get(`/api/v1/certificates${qs({
      ca_id: val(filters, 'ca_id'), status: val(filters, 'status'), subject: val(filters, 'subject'), cursor, limit: 50,
    })}`);
    const caName = (id) => cas.find((c) => c.id === id)?.name || id;
    results.append(table([
      ['Subject', (c) => h('a', { href: `#/certificate/${encodeURIComponent(c.ca_id)}/${c.serial}` }, c.subject)],
      ['CA', (c) => caName(c.ca_id)],
      ['Serial', (c) => h('code', {}, c.serial)],
      ['Status', (c) => badge(c.status)],
      ['Expires', (c) => shortDate(c.not_after)],
    ], page.items, 'No certificate matches.'));
    cursor = page.next_cursor;
    more.classList.toggle('hidden', !cursor);
  };
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  main.append(card(null, filters), card(null, results, more));
  await load(true);
}

function issue(cas) {
  const issuing = cas.filter((c) => c.can_issue);
  const dialog = modal('Issue from a CSR', form('issue-form', [
    input('Issuing CA', 'ca', { options: issuing.map((c) => [c.id, c.name]) }),
    input('CSR (PEM)', 'csr_pem', { multiline: true, placeholder: '-----BEGIN CERTIFICATE REQUEST-----' }),
    input('Validity (days)', 'validity_days', { type: 'number' }),
  ], 'Issue', (f) => ({ ca: val(f, 'ca'), body: { csr_pem: val(f, 'csr_pem'), validity_days: num(f, 'validity_days') } }),
  ({ ca, body }) => post(`/api/v1/cas/${encodeURIComponent(ca)}/certificates`, body),
  (issued) => { dialog.close(); location.hash = `#/certificate/${encodeURIComponent(issued.ca_id)}/${issued.serial}`; }));
}

const REASONS = ['unspecified', 'key_compromise', 'ca_compromise', 'affiliation_changed', 'superseded',
  'cessation_of_operation', 'certificate_hold', 'privilege_withdrawn'].map((r) => [r, r.replaceAll('_', ' ')]);

async function certificate(main, session, [caId, serial]) {
  const [c, { items: cas }] = await Promise.all([
    get(`/api/v1/cas/${encodeURIComponent(caId)}/certificates/${encodeURIComponent(serial)}`), get('/api/v1/cas')]);
  // The chain: this certificate, then its CA and the CA's parents up to the root.
  const chain = [c.certificate_pem];
  for (let ca = cas.find((x) => x.id === c.ca_id); ca; ca = cas.find((x) => x.id === ca.parent_id)) {
    chain.push(ca.certificate_pem);
    if (chain.length > 16) break;
  }
  const canRevoke = session.can('certificates') && c.status !== 'revoked';
  main.append(header(c.subject,
    h('button', { id: 'download', onclick: () => download(`${serial}.pem`, c.certificate_pem) }, 'Download PEM'),
    h('button', { id: 'download-chain', onclick: () => download(`${serial}-chain.pem`, chain.map((p) => p.trim()).join('\n') + '\n') }, 'Download chain'),
    canRevoke ? h('button', { class: 'danger', id: 'revoke', onclick: () => revoke(c) }, 'Revoke') : null));
  main.append(h('div', { class: 'grid' },
    card('Details', h('dl', { class: 'details' }, [
      ['Status', badge(c.status)], ['Serial', h('code', {}, c.serial)],
      ['CA', h('a', { href: `#/certificates/${encodeURIComponent(c.ca_id)}` }, cas.find((x) => x.id === c.ca_id)?.name || c.ca_id)],
      ['Key', c.key_type],
      ['Names', c.sans.join(', ') || '—'], ['Not before', fmtDate(c.not_before)], ['Not after', fmtDate(c.not_after)],
      ['Revoked', c.revoked_at ? `${fmtDate(c.revoked_at)} (${c.revocation_reason})` : '—'],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-key': k.toLowerCase() }, v)]))),
    card('PEM', h('pre', { class: 'pem' }, c.certificate_pem))));
}

function revoke(c) {
  const dialog = modal('Revoke certificate', form('revoke-form', [
    h('p', {}, `Revoke ${c.subject} (serial ${c.serial})? Relying parties see it in the next CRL and at once over OCSP.`),
    input('Reason', 'reason', { options: REASONS }),
  ], 'Revoke', (f) => ({ reason: val(f, 'reason') }),
  (b) => post(`/api/v1/cas/${encodeURIComponent(c.ca_id)}/certificates/${c.serial}/revoke`, b),
  () => { dialog.close(); window.dispatchEvent(new HashChangeEvent('hashchange')); }));
}

// ---- RAs and devices ----------------------------------------------------------------------------------

async function ras(main, session) {
  const [{ items }, { items: cas }] = await Promise.all([get('/api/v1/ras'), get('/api/v1/cas')]);
  main.append(header('Registration authorities',
    session.can('ras') ? h('button', { class: 'primary', id: 'new-ra', onclick: () => createRa(cas) }, 'New RA') : null));
  const caName = (id) => cas.find((c) => c.id === id)?.name || id;
  main.append(card(null, table([
    ['Name', (r) => h('strong', {}, r.name)],
    ['CAs', (r) => r.ca_ids.map(caName).join(', ')],
    ['Authentication', (r) => r.enrollment.auth_modes.join(', ')],
    ['Auto-register', (r) => (r.enrollment.auto_register ? 'yes' : 'no')],
    ['Server keygen', (r) => (r.enrollment.server_keygen ? 'yes' : 'no')],
    ['ACME', (r) => (r.acme?.enabled ? 'on' : 'off')],
  ], items, 'No RA yet.')));
}

function createRa(cas) {
  const issuing = cas.filter((c) => c.can_issue);
  const dialog = modal('New registration authority', form('ra-form', [
    input('Name', 'name'),
    input('CA', 'ca', { options: issuing.map((c) => [c.id, c.name]) }, 'ca_ids'),
    input('Authentication', 'auth_mode', { options: [['one_time_secret', 'one-time secret'], ['client_certificate', 'client certificate']] }, 'auth_modes'),
    input('Re-enrolment window (days)', 'reenroll_window_days', { type: 'number', placeholder: '30' }),
  ], 'Create', (f) => ({
    name: val(f, 'name'),
    ca_ids: [val(f, 'ca')],
    enrollment: { auth_modes: [val(f, 'auth_mode')], reenroll_window_days: num(f, 'reenroll_window_days') },
  }), (b) => post('/api/v1/ras', b), () => { dialog.close(); window.dispatchEvent(new HashChangeEvent('hashchange')); }));
}

async function devices(main) {
  main.append(header('Devices'));
  const filters = h('form', { class: 'filters', id: 'device-filters' },
    input('Status', 'status', { options: [['', 'Any'], ...['pending_provisioning', 'fully_provisioned', 'requires_action', 'with_warnings', 'decommissioned'].map((v) => [v, v.replaceAll('_', ' ')])] }),
    input('Tag', 'tag'),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Filter')));
  const results = h('div', {});
  const load = async () => {
    const page = await get(`/api/v1/devices${qs({ status: val(filters, 'status'), tag: val(filters, 'tag'), limit: 100 })}`);
    results.replaceChildren(table([
      ['Device', (d) => h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, h('strong', {}, d.alias || d.id))],
      ['Status', (d) => badge(d.status)],
      ['Tags', (d) => d.tags.join(', ')],
      ['Updated', (d) => fmtDate(d.updated_at)],
    ], page.items, 'No device matches.'));
  };
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  main.append(card(null, filters), card(null, results));
  await load();
}

async function device(main, session, [id]) {
  const [d, { items: cas }] = await Promise.all([get(`/api/v1/devices/${encodeURIComponent(id)}`), get('/api/v1/cas')]);
  const caName = (caId) => cas.find((c) => c.id === caId)?.name || caId;
  const canRetire = session.can('devices') && d.status !== 'decommissioned';
  main.append(header(d.alias || d.id,
    canRetire ? h('button', { class: 'danger', id: 'decommission', onclick: () => decommission(d) }, 'Decommission') : null));
  const slot = (c, caId) => h('tr', {},
    h('td', {}, h('a', { href: `#/certificate/${encodeURIComponent(caId)}/${c.serial}` }, h('code', {}, c.serial))),
    h('td', {}, badge(c.status)), h('td', {}, c.kind), h('td', {}, fmtDate(c.issued_at)), h('td', {}, shortDate(c.not_after)));
  main.append(
    card('Device', h('dl', { class: 'details' }, [
      ['Status', badge(d.status)], ['Id', h('code', {}, d.id)], ['RA', d.ra_id], ['Tags', d.tags.join(', ') || '—'],
      ['Registered', fmtDate(d.created_at)], ['Updated', fmtDate(d.updated_at)],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-key': k.toLowerCase() }, v)]))));
  const log = card('Log', table([['Time', (e) => fmtDate(e.time)], ['Event', (e) => h('code', {}, e.kind)], ['', (e) => e.message]],
      d.events.slice(0, 50), 'Nothing logged yet.'));
  main.append(card('Certificates by CA', h('div', { id: 'slots' }, d.slots.length ? d.slots.map((sl) => h('div', { class: 'table-wrap' },
    h('h3', {}, caName(sl.ca_id)),
    h('table', {}, h('thead', {}, h('tr', {}, ['Serial', 'Status', 'Kind', 'Issued', 'Expires'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, [sl.active, ...sl.history.filter((c) => c.serial !== sl.active?.serial)].filter(Boolean)
        .map((c) => slot(c, sl.ca_id))))))
    : h('p', { class: 'empty' }, 'No certificate yet.'))), log);
}

function decommission(d) {
  const dialog = modal('Decommission device', form('decommission-form', [
    h('p', {}, `Retire ${d.alias || d.id} for good? Every certificate it holds is revoked (cessation of operation).`),
  ], 'Decommission', () => ({}), () => post(`/api/v1/devices/${encodeURIComponent(d.id)}/decommission`),
  () => { dialog.close(); window.dispatchEvent(new HashChangeEvent('hashchange')); }));
}

// ---- Events and audit ---------------------------------------------------------------------------------

async function events(main) {
  main.append(header('Events', h('span', { class: 'live', id: 'live' }, 'connecting…')));
  const list = h('ul', { class: 'events', id: 'event-list' });
  main.append(card('Live stream', list));
  const show = (e) => list.prepend(h('li', {}, h('code', {}, e.type), ' ', h('span', {}, e.subject || ''), h('time', {}, fmtDate(e.time))));
  // The newest 50 (a walk back from the outbox's end), then the stream from the last of them on.
  const recent = await get(`/api/v1/events${qs({ newest: true, limit: 50 })}`);
  recent.items.forEach(show);
  const live = main.querySelector('#live');
  const stop = new AbortController();
  // Server-Sent Events over fetch, so that every event type arrives (EventSource needs one listener per
  // type); the session cookie goes along as with every API call. Resumes after the last id on reconnect.
  let last = recent.items.length ? recent.items[recent.items.length - 1].seq : 0;
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch('/api/v1/events/stream', {
          credentials: 'same-origin', signal: stop.signal, headers: { 'Last-Event-ID': String(last) },
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        live.textContent = 'live';
        live.classList.add('on');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            const id = block.split('\n').find((l) => l.startsWith('id:'));
            if (id) last = Number(id.slice(3).trim());
            if (data) show(JSON.parse(data));
          }
        }
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      live.textContent = 'reconnecting…';
      live.classList.remove('on');
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return () => stop.abort();
}

// ---- Alerts: subscriptions, their deliveries, dead letters ---------------------------------------------

const channelText = (c) => (c.type === 'webhook' ? `webhook ${c.url}${c.format && c.format !== 'cloudevents' ? ` (${c.format})` : ''}` : `e-mail ${c.address}`);

async function alerts(main, session, [only]) {
  const canWrite = session.can('subscriptions');
  const [{ items: subs }, { items: cas }] = await Promise.all([get('/api/v1/subscriptions'), get('/api/v1/cas')]);
  main.append(header('Alerts',
    canWrite ? h('button', { class: 'primary', id: 'new-subscription', onclick: () => createSubscription(cas) }, 'New subscription') : null));
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const caName = (id) => cas.find((c) => c.id === id)?.name || id;
  const condition = (c) => [c?.ca_id ? `CA ${caName(c.ca_id)}` : null, c?.subject_contains ? `subject contains ${c.subject_contains}` : null].filter(Boolean).join(', ') || '—';
  main.append(card('Subscriptions', h('div', { id: 'subscriptions' }, table([
    ['Events', (s) => h('a', { href: `#/alerts/${encodeURIComponent(s.id)}`, title: 'Its deliveries' }, s.event_types.join(', '))],
    ['Channel', (s) => channelText(s.channel)],
    ['Condition', (s) => condition(s.condition)],
    ['Created', (s) => fmtDate(s.created_at)],
    ['', (s) => (canWrite ? h('button', { class: 'link delete-subscription', 'data-id': s.id, onclick: async () => {
      if (!window.confirm('Delete this subscription? Its pending deliveries are not sent.')) return;
      await del(`/api/v1/subscriptions/${encodeURIComponent(s.id)}`);
      reload();
    } }, 'Delete') : null)],
  ], subs, 'No subscription yet: events are only kept in the outbox and on the buses.'))));

  const filters = h('form', { class: 'filters', id: 'delivery-filters' },
    input('Status', 'status', { options: [['', 'Any'], ['pending', 'pending'], ['delivered', 'delivered'], ['dead', 'dead (retries exhausted)']] }),
    input('Subscription', 'subscription_id', { options: [['', 'Any'], ...subs.map((s) => [s.id, `${s.event_types.join(', ')} → ${channelText(s.channel)}`])] }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Filter')));
  if (only) filters.elements.subscription_id.value = only;
  const results = h('div', { id: 'deliveries' });
  const subText = (id) => { const sub = subs.find((x) => x.id === id); return sub ? sub.event_types.join(', ') : id; };
  const load = async () => {
    const page = await get(`/api/v1/deliveries${qs({ status: val(filters, 'status'), subscription_id: val(filters, 'subscription_id'), limit: 100 })}`);
    results.replaceChildren(table([
      ['Event', (d) => h('code', {}, d.event_id)],
      ['Subscription', (d) => subText(d.subscription_id)],
      ['Status', (d) => badge(d.status)],
      ['Attempts', (d) => String(d.attempts)],
      ['Next attempt', (d) => (d.status === 'pending' ? fmtDate(d.next_attempt_at) : '—')],
      ['Last error', (d) => (d.last_error ? h('small', { class: 'error' }, d.last_error) : '—')],
      ['Updated', (d) => fmtDate(d.updated_at)],
      ['', (d) => (canWrite && d.status === 'dead' ? h('button', { class: 'retry', onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await post(`/api/v1/subscriptions/${encodeURIComponent(d.subscription_id)}/deliveries/${encodeURIComponent(d.event_id)}/retry`);
        } catch (e) {
          ev.target.replaceWith(h('span', { class: 'error', role: 'alert' }, e.message));
          return;
        }
        await load();
      } }, 'Retry') : null)],
    ], page.items, 'No delivery matches.'));
  };
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  main.append(card('Deliveries', filters, results));
  await load();
}

function createSubscription(cas) {
  const f = form('subscription-form', [
    input('Event types', 'event_types', { placeholder: 'certificate.revoked, device.*' }),
    input('Channel', 'channel_type', { options: [['webhook', 'webhook'], ['email', 'e-mail']] }, 'channel'),
    input('Webhook URL', 'url', { placeholder: 'https://hooks.example/shedu' }, 'url'),
    input('Webhook format', 'format', { options: [['cloudevents', 'CloudEvents'], ['slack', 'Slack / Teams']] }, 'format'),
    input('E-mail address', 'address', { type: 'email' }, 'address'),
    input('Only for the CA', 'ca_id', { options: [['', 'any CA'], ...cas.map((c) => [c.id, c.name])] }, 'ca_id'),
    input('Only when the subject contains', 'subject_contains', {}, 'subject_contains'),
  ], 'Create', (el) => {
    const webhook = val(el, 'channel_type') === 'webhook';
    const cond = { ca_id: val(el, 'ca_id') || undefined, subject_contains: val(el, 'subject_contains') || undefined };
    return {
      event_types: val(el, 'event_types').split(',').map((t) => t.trim()).filter(Boolean),
      channel: webhook ? { type: 'webhook', url: val(el, 'url'), format: val(el, 'format') } : { type: 'email', address: val(el, 'address') },
      condition: cond.ca_id || cond.subject_contains ? cond : undefined,
    };
  }, (b) => post('/api/v1/subscriptions', b), (created) => {
    // A webhook's secret is shown this once; the server keeps it sealed and never lists it.
    if (created.channel?.type === 'webhook' && created.channel.secret) {
      f.replaceWith(h('div', {}, h('p', {}, 'Subscription created. Its signing secret (X-Shedu-Signature), shown only now:'),
        h('pre', { class: 'pem', id: 'new-secret' }, created.channel.secret),
        h('div', { class: 'form-actions' }, h('button', { class: 'primary', id: 'secret-done', onclick: () => { dialog.close(); window.dispatchEvent(new HashChangeEvent('hashchange')); } }, 'Done'))));
    } else {
      dialog.close();
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }
  });
  const toggle = () => {
    const webhook = f.elements.channel_type.value === 'webhook';
    for (const name of ['url', 'format']) f.elements[name].closest('.field').classList.toggle('hidden', !webhook);
    f.elements.address.closest('.field').classList.toggle('hidden', webhook);
  };
  f.elements.channel_type.addEventListener('change', toggle);
  toggle();
  const dialog = modal('New alert subscription', f);
}

// ---- Later capabilities: read-only lists ------------------------------------------------------------

async function connectors(main) {
  main.append(header('Connectors'));
  const { items } = await get('/api/v1/cloud-connectors');
  main.append(card('Cloud connectors', h('div', { id: 'cloud-connectors' }, table([
    ['Name', (c) => h('strong', {}, c.name)],
    ['Type', (c) => c.type],
    ['Region', (c) => c.region],
    ['CA mode', (c) => c.ca_mode],
    ['Registers things', (c) => (c.register_things ? 'yes' : 'no')],
    ['State', (c) => (c.deregistering ? badge('deregistering') : badge('active'))],
    ['Updated', (c) => fmtDate(c.updated_at)],
  ], items, 'No cloud connector yet (shedu cloud create, or POST /api/v1/cloud-connectors).'))));
  main.append(card('Connector tokens',
    h('p', {}, 'One-time tokens pair an application that has no identity yet with its first certificate. ',
      'They live five minutes and are not listed; issue one with ', h('code', {}, 'shedu connector token --application NAME'),
      ' or POST /connector/v1/{kind}/tokens, and revoke what it produced with ', h('code', {}, 'shedu connector revoke'), '.')));
}

async function rotation(main) {
  main.append(header('Assets and rotation'));
  const [{ items: assets }, { items: runs }] = await Promise.all([get('/api/v1/assets'), get(`/api/v1/rotation-runs${qs({ limit: 50 })}`)]);
  main.append(card('Assets', h('div', { id: 'assets' }, table([
    ['System', (a) => h('strong', {}, a.system_name)],
    ['Common name', (a) => a.common_name],
    ['Address', (a) => `${a.ip_address || a.common_name}:${a.port}`],
    ['Certificate expires', (a) => shortDate(a.certificate_expiration)],
    ['Next rotation', (a) => (a.skip_reason ? badge(a.skip_reason) : fmtDate(a.next_rotation_at))],
  ], assets, 'No asset yet (POST /api/v1/assets).'))));
  main.append(card('Rotation runs', h('div', { id: 'rotation-runs' }, table([
    ['Run', (r) => h('code', {}, r.id)],
    ['System', (r) => r.system_name],
    ['State', (r) => badge(r.state)],
    ['Trigger', (r) => r.trigger],
    ['Serial', (r) => r.serial || '—'],
    ['Error', (r) => (r.error ? h('small', { class: 'error' }, r.error) : '—')],
    ['Created', (r) => fmtDate(r.created_at)],
  ], runs, 'No rotation run yet.'))));
}

async function kmip(main) {
  main.append(header('KMIP objects'));
  const [owned, obtained] = await Promise.all([get('/api/v1/kms/access/owned'), get('/api/v1/kms/access/obtained')]);
  const columns = [
    ['Object', (o) => h('code', {}, o.object_id)],
    ['Type', (o) => o.object_type],
    ['State', (o) => badge(o.state)],
    ['Owner', (o) => o.owner_id],
  ];
  main.append(card('Owned by you', h('div', { id: 'kmip-owned' }, table(columns, owned, 'You own no KMIP object.'))));
  main.append(card('Granted to you', h('div', { id: 'kmip-obtained' }, table([...columns,
    ['Operations', (o) => o.operations.join(', ')]], obtained, 'No KMIP object was granted to you.'))));
}

async function secrets(main) {
  main.append(header('Secrets'));
  main.append(card('The secret store',
    h('p', {}, 'A Vault/OpenBao KV v2 compatible store under /v1/ on this listener: the bao and vault CLIs, hvac and the SDKs work unchanged. ',
      'Its values are never shown here; the audit log records every write by path and token accessor.'),
    h('p', {}, 'List paths with ', h('code', {}, 'shedu secrets list PATH'), ' or ', h('code', {}, 'bao kv list -mount=secret PATH'), '.')));
}

async function audit(main) {
  main.append(header('Audit log', h('button', { id: 'verify', onclick: verify }, 'Verify the chain')));
  const verdict = h('p', { id: 'verdict', role: 'status' });
  const filters = h('form', { class: 'filters', id: 'audit-filters' },
    input('Principal', 'principal'), input('Action', 'action'),
    input('Outcome', 'outcome', { options: [['', 'Any'], ['success', 'success'], ['denied', 'denied'], ['failure', 'failure']] }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Search')));
  const results = h('div', {});
  const load = async () => {
    const page = await get(`/api/v1/audit${qs({ principal: val(filters, 'principal'), action: val(filters, 'action'), outcome: val(filters, 'outcome'), limit: 100 })}`);
    results.replaceChildren(table([
      ['#', (r) => String(r.seq)], ['Time', (r) => fmtDate(r.time)], ['Principal', (r) => r.principal],
      ['Action', (r) => h('code', {}, r.action)], ['Target', (r) => r.target], ['Outcome', (r) => badge(r.outcome)],
    ], page.items));
  };
  async function verify() {
    verdict.textContent = 'Checking…';
    try {
      const v = await get('/api/v1/audit/verify');
      verdict.className = v.intact ? 'ok' : 'error';
      verdict.textContent = v.intact ? `Chain intact: ${v.records} records checked.` : `Chain broken: ${v.detail}`;
    } catch (e) {
      verdict.className = 'error';
      verdict.textContent = e.message;
    }
  }
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  main.append(card(null, verdict, filters), card(null, results));
  await load();
}

export const PAGES = {
  dashboard, cas, certificates, certificate, ras, devices, device, events, alerts, connectors, rotation, kmip,
  secrets, audit,
};
