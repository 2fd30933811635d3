// certfleet dashboard: plain browser JavaScript, no framework, no build step, nothing fetched from elsewhere.
// Every piece of data reaches the page as a text node or an attribute value set through the DOM (never
// innerHTML), so a certificate named `<img src=x onerror=...>` is shown as those characters.
'use strict';

const state = { session: null, live: null, refreshTimer: 0, overview: { filter: {}, cursors: [] } };

// ---------------------------------------------------------------------------------------------------------------
// DOM helpers

/** h('a', { href: '#/' }, 'text', child): attributes via setAttribute, `on*` as listeners, strings as text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

const view = () => document.getElementById('view');

function show(...nodes) {
  const v = view();
  v.replaceChildren(...nodes.flat().filter(Boolean));
}

const badge = (kind, text) =>
  h('span', { class: `badge ${kind || ''}`, 'data-state': kind || '' }, text ?? kind ?? '—');
const fp = (f) =>
  f ? h('span', { class: 'mono', title: f }, `${f.slice(0, 16)}…`) : h('span', { class: 'muted' }, '—');
const link = (href, text) => h('a', { href }, text);
const certLink = (name) => link(`#/certificates/${encodeURIComponent(name)}`, name);
const endpointLink = (name) =>
  name ? link(`#/endpoints/${encodeURIComponent(name)}`, name) : h('span', { class: 'muted' }, 'no endpoint');

function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toISOString() }, relative(d));
}

function relative(d) {
  const ms = d.getTime() - Date.now();
  const abs = Math.abs(ms);
  const unit = abs >= 86_400_000 ? [86_400_000, 'd'] : abs >= 3_600_000 ? [3_600_000, 'h'] : [60_000, 'min'];
  const n = Math.round(abs / unit[0]);
  return ms >= 0 ? `in ${n} ${unit[1]}` : `${n} ${unit[1]} ago`;
}

function table(headers, rows, attrs) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      attrs || {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((x) => (typeof x === 'string' ? h('th', { scope: 'col' }, x) : x)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.hint = body && body.hint;
  }
}

async function api(path, opts = {}) {
  const headers = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.method && opts.method !== 'GET' && state.session) headers['x-csrf-token'] = state.session.csrf;
  const res = await fetch(`/ui${path}`, {
    method: opts.method || 'GET',
    headers,
    credentials: 'same-origin',
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const body = await res.json().catch(() => null);
  if (res.status === 401 && !opts.signIn) {
    signedOut();
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

const isAdmin = () => state.session && state.session.role === 'admin';

// ---------------------------------------------------------------------------------------------------------------
// Sign-in, sign-out, live updates

function signedOut() {
  state.session = null;
  if (state.live) state.live.close();
  state.live = null;
  document.getElementById('top').hidden = true;
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    required: true,
    'aria-describedby': 'token-help',
  });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = '';
        try {
          state.session = await api('/session', {
            method: 'POST',
            body: { token: input.value },
            signIn: true,
          });
          input.value = '';
          start();
        } catch (err) {
          error.textContent = `${err.message}${err.hint ? ` (${err.hint})` : ''}`;
        }
      },
    },
    h('label', { for: 'token' }, 'API token', input),
    h(
      'small',
      { id: 'token-help', class: 'muted' },
      'A read token shows everything; an admin token can also act. The token stays on the hub: the browser keeps only a session cookie.',
    ),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  show(h('section', { class: 'signin' }, h('h1', {}, 'Sign in to certfleet'), form));
  input.focus();
}

function start() {
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${state.session.name} (${state.session.role})`;
  // The view first: the stream holds a connection of its own, and opening it first delays the first paint.
  void route().then(connectLive);
}

function connectLive() {
  if (state.live) state.live.close();
  const es = new EventSource('/ui/live');
  const dot = document.getElementById('live');
  es.addEventListener('open', () => {
    dot.textContent = 'live';
    dot.classList.add('on');
  });
  es.addEventListener('error', () => {
    dot.textContent = 'reconnecting';
    dot.classList.remove('on');
  });
  es.addEventListener('change', () => scheduleRefresh());
  state.live = es;
}

/** Commits come in bursts: one fetch of the view per quiet 250 ms. */
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => route({ refresh: true }), 250);
}

async function signOut() {
  try {
    await api('/session/end', { method: 'POST', body: {} });
  } finally {
    signedOut();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Router

const routes = [
  [/^#\/?$/, overviewView],
  [/^#\/timeline$/, timelineView],
  [/^#\/events$/, eventsView],
  [/^#\/alerts$/, alertsView],
  [/^#\/certificates\/(.+)$/, (m, o) => certificateView(decodeURIComponent(m[1]), o)],
  [/^#\/endpoints\/(.+)$/, (m, o) => endpointView(decodeURIComponent(m[1]), o)],
];

async function route(opts = {}) {
  if (!state.session) return;
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('header nav a')) {
    const current =
      a.getAttribute('href') === hash ||
      (hash.startsWith('#/certificates') && a.getAttribute('href') === '#/');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const [re, fn] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    try {
      await fn(m, opts);
    } catch (err) {
      if (err.status !== 401)
        show(h('p', { class: 'error', role: 'alert' }, `${err.message}${err.hint ? ` (${err.hint})` : ''}`));
    }
    if (!opts.refresh) view().focus({ preventScroll: true });
    return;
  }
  show(h('p', {}, 'No such view. '), link('#/', 'Back to the overview'));
}

// ---------------------------------------------------------------------------------------------------------------
// Overview

const ATTENTION_LABEL = {
  diverged: 'Diverged',
  failed: 'Failed',
  rolled_back: 'Rolled back',
  window_missed: 'Window missed',
  agent_silent: 'Agent silent',
  renewal_failing: 'Renewal failing',
  expiring: 'Close to expiry',
  in_progress: 'In progress',
  ok: 'OK',
};
const STATES = [
  'pending',
  'delivered',
  'installed',
  'waiting_window',
  'reloaded',
  'verified',
  'failed',
  'rolled_back',
  'diverged',
  'none',
];

async function overviewView(_m, opts) {
  const o = state.overview;
  const q = new URLSearchParams({ ...o.filter, limit: '50' });
  const cursor = o.cursors[o.cursors.length - 1];
  if (cursor) q.set('cursor', cursor);
  const [page, emergency] = await Promise.all([api(`/api/overview?${q}`), api('/api/emergency')]);
  if (opts.refresh && location.hash.replace(/^#\/?$/, '') !== '') return;
  const existing = document.getElementById('overview-results');
  const results = overviewResults(page);
  results.prepend(...emergency.running.map(campaignPanel));
  if (opts.refresh && existing) {
    existing.replaceWith(results);
    return;
  }
  show(h('h1', {}, 'Fleet overview'), overviewFilters(page), results);
  // The first meaningful paint, for bench/dashboard.ts: the first page of rows is in the document.
  if (!performance.getEntriesByName('certfleet:overview').length) performance.mark('certfleet:overview');
}

function overviewFilters(page) {
  const f = state.overview.filter;
  const field = (name, label, el) => h('label', {}, label, el);
  const input = (name) => h('input', { name, type: 'search', value: f[name] || '', 'data-filter': name });
  const select = (name, options) =>
    h(
      'select',
      { name, 'data-filter': name },
      h('option', { value: '' }, 'any'),
      options.map(([v, t]) => h('option', { value: v, selected: f[name] === v }, t)),
    );
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        state.overview.filter = Object.fromEntries([...data].filter(([, v]) => v !== ''));
        state.overview.cursors = [];
        route();
      },
    },
    field('name', 'Certificate or SAN', input('name')),
    field('endpoint', 'Endpoint', input('endpoint')),
    field(
      'state',
      'State',
      select('state', [
        ...Object.entries(ATTENTION_LABEL).map(([k, v]) => [k, `needs: ${v}`]),
        ...STATES.map((x) => [x, `deployment: ${x}`]),
      ]),
    ),
    field(
      'issuer',
      'Issuer',
      select(
        'issuer',
        page.issuers.map((i) => [i, i]),
      ),
    ),
    h('button', { type: 'submit' }, 'Filter'),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: () => {
          state.overview = { filter: {}, cursors: [] };
          route();
        },
      },
      'Clear',
    ),
  );
  return form;
}

/** A running emergency campaign: issued / delivered / reloaded / verified / failed, as `certfleet emergency status`. */
function campaignPanel({ campaign, progress: p }) {
  const of = (n, total) => `${n}/${total}`;
  const stage = (key, label, value) =>
    h('div', { class: 'card' }, h('b', { 'data-campaign': key }, value), label);
  return h(
    'section',
    { class: 'emergency', 'aria-label': 'Emergency campaign', 'data-campaign-id': campaign.id },
    h('h2', {}, `Emergency reissue running: ${campaign.options.reason}`),
    h('progress', { max: String(p.deployments || 1), value: String(p.verified + p.failed) }),
    h(
      'div',
      { class: 'cards' },
      stage('issued', 'issued', of(p.issued, p.certificates)),
      stage('delivered', 'delivered', of(p.delivered, p.deployments)),
      stage('reloaded', 'reloaded', of(p.reloaded, p.deployments)),
      stage('verified', 'verified', of(p.verified, p.deployments)),
      stage('failed', 'failed', String(p.failed)),
    ),
  );
}

function overviewResults(page) {
  const c = page.counts;
  const filterBy = (kind) => (e) => {
    e.preventDefault();
    state.overview = { filter: { state: kind }, cursors: [] };
    route();
  };
  const cards = h(
    'div',
    { class: 'cards', 'aria-label': 'Counts' },
    h('div', { class: 'card' }, h('b', { 'data-count': 'certificates' }, c.certificates), 'certificates'),
    h('div', { class: 'card' }, h('b', { 'data-count': 'endpoints' }, c.endpoints), 'endpoints'),
    Object.entries(ATTENTION_LABEL).map(([k, label]) =>
      h(
        'a',
        {
          class: `card${c.attention[k] && k !== 'ok' && k !== 'in_progress' ? ' hot' : ''}`,
          href: '#/',
          onclick: filterBy(k),
        },
        h('b', { 'data-count': k }, c.attention[k]),
        label,
      ),
    ),
  );
  const states = h(
    'p',
    { class: 'muted', 'aria-label': 'Deployments per state' },
    'Deployments: ',
    Object.entries(c.states).map(([k, n]) => [badge(k, `${k} ${n}`), ' ']),
  );
  const rows = page.items.map((r) =>
    h(
      'tr',
      { 'data-key': r.key },
      h('td', {}, badge(r.attention.kind, ATTENTION_LABEL[r.attention.kind])),
      h('td', {}, certLink(r.certificate)),
      h('td', {}, endpointLink(r.endpoint)),
      h('td', {}, r.state ? badge(r.state) : h('span', { class: 'muted' }, 'none')),
      h('td', {}, lifeBar(r.attention.lifeFraction), when(r.notAfter)),
      h('td', { class: 'wide' }, r.attention.why),
    ),
  );
  const o = state.overview;
  const pager = h(
    'div',
    { class: 'pager' },
    h('span', { 'data-total': page.total }, `${page.total} rows`),
    o.cursors.length
      ? h(
          'button',
          { type: 'button', class: 'secondary', onclick: () => (o.cursors.pop(), route()) },
          'Previous page',
        )
      : null,
    page.next
      ? h(
          'button',
          { type: 'button', class: 'secondary', onclick: () => (o.cursors.push(page.next), route()) },
          'Next page',
        )
      : null,
  );
  return h(
    'section',
    { id: 'overview-results' },
    cards,
    states,
    table(
      [
        'Needs',
        'Certificate',
        'Endpoint',
        'Deployment',
        'Expires',
        h('th', { class: 'wide', scope: 'col' }, 'Why'),
      ],
      rows,
      { 'data-table': 'overview' },
    ),
    pager,
  );
}

function lifeBar(fraction) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  const bar = h('span', {
    class: 'bar',
    title: `${pct}% of lifetime elapsed`,
    role: 'img',
    'aria-label': `${pct}% of lifetime elapsed`,
  });
  const fill = h('i');
  fill.style.width = `${pct}%`; // a CSSOM property, allowed by style-src 'self' (no inline style attribute)
  bar.append(fill);
  return bar;
}

// ---------------------------------------------------------------------------------------------------------------
// Expiry timeline (SVG)

async function timelineView() {
  const t = await api('/api/timeline');
  const now = Date.parse(t.now);
  const until = Date.parse(t.until);
  const rowH = 22;
  const left = 180;
  const width = 1000;
  const height = 30 + rowH * Math.max(1, t.bars.length);
  const x = (ms) => left + ((Math.min(Math.max(ms, now), until) - now) / (until - now)) * (width - left - 10);
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Expiry timeline',
  });
  svg.append(s('title', {}, 'When each certificate expires and when it renews, over the next weeks'));
  for (let d = 0; d <= (until - now) / 86_400_000; d += 7) {
    const gx = x(now + d * 86_400_000);
    // A label that would run past the chart's right edge ends at its line instead of starting there.
    const nearEdge = gx > width - 60;
    svg.append(
      s('line', { class: 'grid', x1: gx, x2: gx, y1: 18, y2: height }),
      s(
        'text',
        nearEdge ? { x: gx - 2, y: 12, 'text-anchor': 'end' } : { x: gx + 2, y: 12 },
        d === 0 ? 'now' : `+${d} d`,
      ),
    );
  }
  t.bars.forEach((b, i) => {
    const y = 24 + i * rowH;
    const from = x(Date.parse(b.notBefore));
    const to = x(Date.parse(b.notAfter));
    const g = s('g', { 'data-certificate': b.certificate });
    g.append(
      s(
        'text',
        { x: 4, y: y + 12 },
        b.certificate.length > 26 ? `${b.certificate.slice(0, 25)}…` : b.certificate,
      ),
      s('rect', { class: 'life', x: from, y: y + 2, width: Math.max(1, to - from), height: 12 }),
      s('rect', {
        class: `window ${b.basis}`,
        x: x(Date.parse(b.renewFrom)),
        y: y + 2,
        width: Math.max(2, x(Date.parse(b.renewUntil)) - x(Date.parse(b.renewFrom))),
        height: 12,
      }),
      s('title', {}, `${b.certificate}: renews from ${b.renewFrom} (${b.basis}), expires ${b.notAfter}`),
    );
    svg.append(g);
  });
  svg.append(s('line', { class: 'now', x1: x(now), x2: x(now), y1: 18, y2: height }));
  show(
    h('h1', {}, 'Expiry timeline'),
    h(
      'p',
      { class: 'muted' },
      "Blue: validity. Orange: renewal window from the lifetime fraction; green: the CA's window (ARI). Soonest expiry first.",
    ),
    svg,
    t.bars.length ? null : h('p', {}, 'No certificate expires in this period.'),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Certificate detail

async function act(button, label, fn) {
  const status = document.getElementById('action-status');
  button.disabled = true;
  try {
    await fn();
    if (status) status.textContent = `${label}: done`;
  } catch (err) {
    if (status) status.textContent = `${label}: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  } finally {
    button.disabled = false;
  }
}

async function certificateView(name) {
  const d = await api(`/api/certificates/${encodeURIComponent(name)}`);
  const path = `/api/certificates/${encodeURIComponent(name)}`;
  const actions = isAdmin()
    ? h(
        'div',
        { class: 'actions', 'data-actions': '' },
        h(
          'button',
          {
            type: 'button',
            'data-action': 'renew',
            onclick: (e) => act(e.target, 'Renew', () => api(`${path}/renew`, { method: 'POST', body: {} })),
          },
          'Renew now',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-action': 'redeploy',
            onclick: (e) =>
              act(e.target, 'Redeploy', () => api(`${path}/deploy`, { method: 'POST', body: {} })),
          },
          'Redeploy',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'reload-now',
            onclick: (e) => {
              if (
                !confirm(
                  `Reload ${name} on every endpoint now, outside the change window? This is recorded in the audit log.`,
                )
              )
                return;
              act(e.target, 'Reload now', () =>
                api(`${path}/deploy`, { method: 'POST', body: { overrideWindow: true } }),
              );
            },
          },
          'Reload now (outside window)',
        ),
      )
    : null;
  const c = d.certificate;
  const p = d.plan;
  show(
    h('h1', {}, 'Certificate ', h('span', { 'data-name': '' }, c.name)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'SANs'),
      h('dd', { class: 'mono' }, c.sans.join(', ')),
      h('dt', {}, 'Issuer'),
      h('dd', {}, c.issuer),
      h('dt', {}, 'Key'),
      h('dd', {}, c.keyType),
    ),
    actions,
    h('p', { id: 'action-status', role: 'status', 'aria-live': 'polite' }),
    h('h2', {}, 'Renewal plan'),
    h(
      'dl',
      { class: 'facts', 'data-plan': p.reason },
      h('dt', {}, 'Reason'),
      h('dd', {}, badge(p.urgent ? 'critical' : p.reissue ? 'warning' : 'ok', p.reason)),
      h('dt', {}, 'Decision'),
      h('dd', {}, p.message),
      h('dt', {}, 'Due'),
      h('dd', {}, when(p.dueAt)),
      p.deferral ? [h('dt', {}, 'Deferred'), h('dd', {}, p.deferral.message)] : null,
      h('dt', {}, 'Rate-limit headroom'),
      h(
        'dd',
        {},
        p.headroom.length
          ? p.headroom.map((x) => h('div', {}, `${x.limit} ${x.key}: ${x.remaining} of ${x.max} left`))
          : 'no limits apply',
      ),
    ),
    h('h2', {}, 'Deployments'),
    d.deployments.length
      ? d.deployments.map((x) => deploymentBlock(x))
      : h('p', { class: 'muted' }, 'No endpoint subscribes to this certificate.'),
    d.moreDeployments
      ? h('p', { class: 'muted' }, 'More endpoints subscribe; the first 200 are shown.')
      : null,
    h('h2', {}, 'Versions'),
    table(
      ['Serial', 'Fingerprint', 'Not before', 'Not after'],
      d.versions.map((v, i) =>
        h(
          'tr',
          {},
          h('td', { class: 'mono' }, v.serial, i === 0 ? ' (current)' : ''),
          h('td', {}, fp(v.fingerprint)),
          h('td', {}, when(v.notBefore)),
          h('td', {}, when(v.notAfter)),
        ),
      ),
    ),
  );
}

function deploymentBlock(x) {
  return h(
    'section',
    { class: 'deployment', 'data-endpoint': x.endpoint },
    h(
      'h3',
      {},
      endpointLink(x.endpoint),
      ' ',
      x.state ? badge(x.state) : badge('none', 'no deployment yet'),
      x.attention && x.attention.kind !== 'ok'
        ? [' ', badge(x.attention.kind, ATTENTION_LABEL[x.attention.kind])]
        : null,
    ),
    x.reason ? h('p', {}, x.reason) : null,
    isAdmin()
      ? h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-action': 'probe',
            onclick: (e) =>
              act(e.target, 'Probe', () =>
                api(`/api/endpoints/${encodeURIComponent(x.endpoint)}/probe`, { method: 'POST', body: {} }),
              ),
          },
          'Probe now',
        )
      : null,
    x.timeline.length
      ? h(
          'ol',
          { class: 'timeline' },
          x.timeline.map((t) =>
            h('li', {}, badge(t.state), ' ', when(t.at), ` by ${t.actor}`, t.reason ? ` (${t.reason})` : ''),
          ),
        )
      : null,
    x.served.length
      ? table(
          ['Probe target', 'Source', 'Issued (current)', 'Served', '', 'Probed'],
          x.served.map((t) =>
            h(
              'tr',
              {},
              h('td', { class: 'mono' }, t.target),
              h('td', { class: 'mono' }, t.source),
              h('td', {}, fp(t.issued)),
              h('td', {}, fp(t.served), t.error ? h('div', { class: 'error' }, t.error) : null),
              h(
                'td',
                {},
                t.served ? badge(t.matches ? 'match' : 'mismatch', t.matches ? 'same' : 'different') : null,
              ),
              h('td', {}, when(t.probedAt)),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No probe target.'),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Endpoint detail

async function endpointView(name) {
  const d = await api(`/api/endpoints/${encodeURIComponent(name)}`);
  const e = d.endpoint;
  show(
    h('h1', {}, 'Endpoint ', h('span', { 'data-name': '' }, e.name)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Kind'),
      h('dd', {}, e.kind),
      h('dt', {}, 'Last agent contact'),
      h('dd', {}, e.kind === 'agent' ? when(d.lastSeenAt) : 'pushed by the hub'),
      h('dt', {}, 'Labels'),
      h(
        'dd',
        {},
        Object.entries(e.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || '—',
      ),
    ),
    isAdmin()
      ? h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              'data-action': 'probe',
              onclick: (ev) =>
                act(ev.target, 'Probe', () =>
                  api(`/api/endpoints/${encodeURIComponent(e.name)}/probe`, { method: 'POST', body: {} }),
                ),
            },
            'Probe now',
          ),
        )
      : null,
    h('p', { id: 'action-status', role: 'status', 'aria-live': 'polite' }),
    h('h2', {}, 'Subscriptions'),
    table(
      ['Certificate', 'Deployment', 'Outputs', 'Change window'],
      d.subscriptions.map((x) =>
        h(
          'tr',
          {},
          h('td', {}, certLink(x.certificate)),
          h('td', {}, x.state ? badge(x.state) : h('span', { class: 'muted' }, 'none'), ' ', when(x.since)),
          h(
            'td',
            { class: 'mono' },
            x.outputs.map((o) => h('div', {}, `${o.path} (${o.format})`)),
          ),
          h(
            'td',
            {},
            x.window
              ? [
                  `${x.window.cron} ${x.window.timezone}, ${x.window.durationMinutes} min; `,
                  x.window.open
                    ? ['open, closes ', when(x.window.closesAt)]
                    : ['next ', when(x.window.opensAt)],
                ]
              : 'any time',
          ),
        ),
      ),
    ),
    h('h2', {}, 'Probe targets'),
    table(
      ['Target', 'Result', 'Served fingerprint', 'Served expiry', 'Probed'],
      (e.probeTargets.length || d.probes.length ? d.probes : []).map((p) =>
        h(
          'tr',
          {},
          h('td', { class: 'mono' }, p.target),
          h(
            'td',
            {},
            badge(p.ok ? 'ok' : 'failed', p.ok ? 'ok' : 'failed'),
            p.error ? h('div', { class: 'error' }, p.error) : null,
          ),
          h('td', {}, fp(p.fingerprint)),
          h('td', {}, when(p.notAfter)),
          h('td', {}, when(p.at)),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Events and alerts

const eventsState = { kind: '', subject: '', afterId: undefined, beforeId: undefined };

async function eventsView() {
  const q = new URLSearchParams({ limit: '50' });
  if (eventsState.kind) q.set('kind', eventsState.kind);
  if (eventsState.subject) q.set('subject', eventsState.subject);
  if (eventsState.afterId !== undefined) q.set('afterId', String(eventsState.afterId));
  else if (eventsState.beforeId !== undefined) q.set('beforeId', String(eventsState.beforeId));
  const r = await api(`/api/events?${q}`);
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        eventsState.kind = String(data.get('kind') || '');
        eventsState.subject = String(data.get('subject') || '');
        eventsState.afterId = undefined;
        eventsState.beforeId = undefined;
        route();
      },
    },
    h(
      'label',
      {},
      'Kind (prefix)',
      h('input', { name: 'kind', type: 'search', value: eventsState.kind, placeholder: 'deployment.' }),
    ),
    h(
      'label',
      {},
      'Subject',
      h('input', {
        name: 'subject',
        type: 'search',
        value: eventsState.subject,
        placeholder: 'certificate:web',
      }),
    ),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const pager = h(
    'div',
    { class: 'pager' },
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: () => ((eventsState.afterId = eventsState.beforeId = undefined), route()),
      },
      'Newest',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: () => ((eventsState.afterId = 0), (eventsState.beforeId = undefined), route()),
      },
      'From the oldest',
    ),
    r.older !== undefined
      ? h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-action': 'older',
            onclick: () => ((eventsState.beforeId = r.older), (eventsState.afterId = undefined), route()),
          },
          'Older',
        )
      : null,
    r.next !== undefined
      ? h(
          'button',
          { type: 'button', class: 'secondary', onclick: () => ((eventsState.afterId = r.next), route()) },
          'Next (newer)',
        )
      : null,
  );
  show(
    h('h1', {}, 'Events'),
    form,
    h(
      'p',
      { class: 'muted' },
      eventsState.afterId !== undefined
        ? 'Walking forward from the oldest.'
        : eventsState.beforeId !== undefined
          ? `Events before #${eventsState.beforeId}, oldest first.`
          : 'The newest events, oldest first.',
    ),
    table(
      ['#', 'At', 'Kind', 'Subject', 'Actor', h('th', { class: 'wide', scope: 'col' }, 'Details')],
      r.events.map((e) =>
        h(
          'tr',
          {},
          h('td', {}, e.id),
          h('td', {}, when(e.at)),
          h('td', {}, e.kind),
          h('td', { class: 'mono' }, e.subject),
          h('td', {}, e.actor),
          h('td', { class: 'wide mono' }, JSON.stringify(e.data)),
        ),
      ),
      { 'data-table': 'events' },
    ),
    pager,
  );
}

async function alertsView() {
  const r = await api('/api/alerts');
  show(
    h('h1', {}, 'Alerts'),
    h('p', { id: 'action-status', role: 'status', 'aria-live': 'polite' }),
    h('h2', {}, `Firing (${r.firing.length})`),
    table(
      ['Severity', 'Alert', 'Subject', 'Acknowledged', ''],
      r.firing.map((a) =>
        h(
          'tr',
          { 'data-alert': a.key },
          h('td', {}, badge(a.severity)),
          h('td', {}, h('strong', {}, a.title), h('div', { class: 'muted' }, a.message)),
          h(
            'td',
            {},
            a.subject.certificate ? certLink(a.subject.certificate) : null,
            ' ',
            a.subject.endpoint ? endpointLink(a.subject.endpoint) : null,
          ),
          h('td', {}, a.acknowledged ? [a.acknowledged.by, ' ', when(a.acknowledged.at)] : '—'),
          h(
            'td',
            {},
            isAdmin() && !a.acknowledged
              ? h(
                  'button',
                  {
                    type: 'button',
                    class: 'secondary',
                    'data-action': 'acknowledge',
                    onclick: (e) =>
                      act(e.target, 'Acknowledge', () =>
                        api('/api/alerts/acknowledge', { method: 'POST', body: { key: a.key } }).then(() =>
                          route(),
                        ),
                      ),
                  },
                  'Acknowledge',
                )
              : null,
          ),
        ),
      ),
    ),
    h('h2', {}, 'Recently resolved'),
    table(
      ['Resolved', 'Alert'],
      r.resolved.map((a) => h('tr', {}, h('td', {}, when(a.at)), h('td', {}, a.title || a.key))),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------

window.addEventListener('hashchange', () => route());
document.addEventListener('DOMContentLoaded', async () => {
  document.getElementById('signout').addEventListener('click', signOut);
  try {
    state.session = await api('/api/session');
    start();
  } catch {
    // api() showed the sign-in form on 401
  }
});
