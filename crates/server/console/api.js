// The console's one way to the server: fetch with the session cookie and the console's CSRF header, a
// transparent refresh on 401, and problem documents turned into ApiError. Plus h(), the DOM builder
// (nothing is ever parsed as markup: text is always text).

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

const HEADERS = { 'X-Requested-With': 'shedu-console' };
let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

async function send(method, path, body) {
  const headers = { ...HEADERS };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

async function decode(res) {
  const type = res.headers.get('content-type') || '';
  if (res.status === 204) return null;
  if (type.includes('json')) return res.json();
  return res.text();
}

// One refresh at a time: a refresh token works once, and presenting a used one ends the whole login, so
// the requests that meet a 401 together all wait for the same refresh.
let refreshing = null;
function refresh() {
  if (!refreshing) {
    refreshing = send('POST', '/ui/session/refresh')
      .then((res) => res.ok)
      .finally(() => { setTimeout(() => { refreshing = null; }, 0); });
  }
  return refreshing;
}

export async function api(method, path, body) {
  let res = await send(method, path, body);
  if (res.status === 401 && !path.startsWith('/ui/session')) {
    if (await refresh()) {
      res = await send(method, path, body);
    } else {
      onSignedOut();
    }
  }
  const data = await decode(res);
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { detail: data });
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const patch = (path, body) => api('PATCH', path, body ?? {});
export const del = (path) => api('DELETE', path);

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

// h('div', {class: 'x', onclick: fn}, child, 'text', [children]) → an element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  const add = (c) => {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

// A download of `text` as `name`, through a blob URL (allowed: no inline script involved).
export function download(name, text, type = 'application/x-pem-file') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
