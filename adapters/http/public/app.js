// factorstream device dashboard: plain browser JavaScript, no build step, no dependencies.
//
// Everything shown that came from the server is put in the page as text (textContent,
// text nodes, attribute values); nothing is ever parsed as HTML. The admin token is kept in
// sessionStorage and sent as a bearer header; the live event stream is opened with a
// short-lived ticket, so the token never appears in a URL.
'use strict';

(() => {
  const TOKEN_KEY = 'factorstream.adminToken';
  const KIND_LABELS = { totp: 'Authenticator app', hotp: 'Hardware token', static: 'Backup codes', email: 'E-mail', sms: 'SMS' };
  const KINDS = ['totp', 'hotp', 'static', 'email', 'sms'];
  const ACTIONS = {
    'device-enrolled': ['Device enrolled', ''],
    'device-confirmed': ['Device confirmed', 'good'],
    'device-renamed': ['Device renamed', 'admin'],
    'device-removed': ['Device removed', 'warn'],
    'backup-codes-issued': ['Backup codes issued', ''],
    'challenge-generated': ['Code sent', ''],
    'challenge-delivery-failed': ['Code delivery failed', 'warn'],
    'challenge-refused': ['Code refused (cooldown)', 'warn'],
    'verification-accepted': ['Verification accepted', 'good'],
    'verification-failed': ['Verification failed', 'bad'],
    'verification-refused': ['Verification refused (throttled)', 'bad'],
    'throttle-reset': ['Lock reset', 'admin'],
    'match-succeeded': ['Code matched', 'good'],
    'match-failed': ['No device matched the code', 'bad'],
    'match-refused': ['Match refused (throttled)', 'bad'],
    'event-quarantined': ['Unreadable event set aside (see factorstream quarantine)', 'warn'],
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    mode: null,
    user: null,
    confirmed: '',
    devices: [],
    auditDevice: '',
    auditCursor: null,
    editing: null, // { deviceId, action, value }
    // Audit entries whose "State then" is open, by event id: what it shows (null while loading).
    // Kept across re-renders of the timeline (live updates redraw it).
    stateThen: new Map(),
    events: null,
    retryMs: 1000,
    reconnectTimer: null,
    refreshTimer: null,
    expiryTimer: null,
    expiryAt: null,
    refreshing: false,
    refreshAgain: false,
  };

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers: text only --------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    append(el, children);
    return el;
  }

  const pad = (n) => String(n).padStart(2, '0');
  const sameDay = (a, b) => new Date(a).toDateString() === new Date(b).toDateString();
  const timeOf = (ms) => {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const dateOf = (ms) => {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  };
  const when = (ms) => `${dateOf(ms)} ${timeOf(ms)}`;
  const whenShort = (ms, now) => (sameDay(ms, now) ? timeOf(ms) : when(ms));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  // ---- the API -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const init = { method: options.method || 'GET', headers, cache: 'no-store', credentials: 'omit' };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'network', 'The server cannot be reached. Is factorstream serve still running?');
    }
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    if (!res.ok) {
      const e = json && json.error ? json.error : {};
      throw new ApiError(res.status, e.code || 'http', e.message || `The server answered ${res.status}.`);
    }
    return json;
  }

  const userPath = (user, rest) => `/api/users/${encodeURIComponent(user)}/${rest}`;
  const devicePath = (id, rest) => `/api/devices/${encodeURIComponent(id)}${rest ? `/${rest}` : ''}`;

  function showBanner(message) {
    const b = $('banner');
    if (!message) {
      b.hidden = true;
      b.textContent = '';
      return;
    }
    b.textContent = message;
    b.hidden = false;
  }

  function failed(e) {
    if (e instanceof ApiError && e.status === 401) {
      signOut('The admin token was not accepted. Sign in again.');
      return;
    }
    showBanner(e instanceof Error ? e.message : String(e));
  }

  // ---- signing in --------------------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    closeLive();
    $('dashboard').hidden = true;
    $('user-form').hidden = true;
    $('signout').hidden = true;
    $('whoami').textContent = '';
    $('login').hidden = false;
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('token-input').focus();
  }

  async function start() {
    try {
      const me = await api('/api/whoami');
      state.mode = me.mode;
      $('whoami').textContent = me.actor;
      $('signout').hidden = me.mode !== 'token';
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        signOut(state.token ? 'The admin token was not accepted. Sign in again.' : '');
        return;
      }
      showBanner(e.message);
      return;
    }
    showBanner('');
    $('login').hidden = true;
    $('dashboard').hidden = false;
    $('user-form').hidden = false;
    openFromHash();
    await refresh();
    connectLive();
  }

  // ---- live updates ------------------------------------------------------------------------

  function setLive(s, text) {
    const el = $('live');
    el.dataset.state = s;
    el.textContent = text;
  }

  function closeLive() {
    clearTimeout(state.reconnectTimer);
    if (state.events) state.events.close();
    state.events = null;
    setLive('off', 'offline');
  }

  async function connectLive() {
    closeLive();
    setLive('connecting', 'connecting…');
    let url = '/api/events';
    try {
      if (state.mode === 'token') {
        const t = await api('/api/sse-ticket', { method: 'POST', body: {} });
        url += `?ticket=${encodeURIComponent(t.ticket)}`;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return failed(e);
      return retryLive();
    }
    const es = new EventSource(url);
    state.events = es;
    es.addEventListener('ready', () => {
      state.retryMs = 1000;
      setLive('live', 'live');
      scheduleRefresh(0); // anything applied while disconnected
    });
    es.addEventListener('changed', () => scheduleRefresh(150));
    es.addEventListener('status', (ev) => {
      const st = JSON.parse(ev.data).state;
      if (st === 'failed') setLive('failed', 'projection stopped');
      else if (st === 'retrying') setLive('reconnecting', 'projection waiting for its database…');
      else if (st === 'live' || st === 'catching-up') setLive('live', 'live');
      scheduleRefresh(0);
    });
    es.onerror = () => {
      if (state.events !== es) return;
      es.close();
      state.events = null;
      retryLive();
    };
  }

  function retryLive() {
    setLive('reconnecting', 'reconnecting…');
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connectLive, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 15000);
  }

  /** At most one pending refresh: a steady stream of changes still refreshes every `delay` ms. */
  function scheduleRefresh(delay) {
    if (state.refreshTimer !== null) return;
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = null;
      refresh();
    }, delay);
  }

  /** Re-reads everything shown; one refresh at a time, and one more if asked meanwhile. */
  async function refresh() {
    if (state.refreshing) {
      state.refreshAgain = true;
      return;
    }
    state.refreshing = true;
    try {
      await Promise.all([loadStats(), loadLag(), state.user ? loadUser() : null]);
      showBanner('');
    } catch (e) {
      failed(e);
    } finally {
      state.refreshing = false;
      if (state.refreshAgain) {
        state.refreshAgain = false;
        scheduleRefresh(0);
      }
    }
  }

  // ---- a user's devices ---------------------------------------------------------------------

  function openFromHash() {
    const m = /^#user=(.*)$/.exec(location.hash);
    let user = null;
    if (m) {
      try {
        user = decodeURIComponent(m[1]);
      } catch {
        user = null;
      }
    }
    if (user !== state.user) {
      state.user = user;
      state.auditDevice = '';
      state.editing = null;
      state.stateThen.clear();
      $('user-input').value = user || '';
    }
  }

  function selectUser(user) {
    location.hash = `user=${encodeURIComponent(user)}`;
  }

  async function loadUser() {
    const user = state.user;
    const q = state.confirmed ? `?confirmed=${state.confirmed}` : '';
    const auditUrl = state.auditDevice ? devicePath(state.auditDevice, 'audit?limit=50') : userPath(user, 'audit?limit=50');
    const [devices, audit] = await Promise.all([api(userPath(user, `devices${q}`)), api(auditUrl)]);
    if (user !== state.user) return;
    state.devices = devices.devices;
    renderDevices(devices.devices, devices.now);
    renderAuditFilter();
    state.auditCursor = audit.nextCursor;
    renderAudit(audit.entries, false);
    scheduleExpiry(devices.devices, devices.now);
  }

  /** Locks and cooldowns end without an event: look again when the first one ends. */
  function scheduleExpiry(devices, now) {
    const ends = devices
      .flatMap((d) => [d.throttle.lockedUntil, d.cooldown.nextChallengeAt, d.pendingCodeValidUntil])
      .filter((t) => typeof t === 'number' && t > now && t - now < 3600000);
    const next = ends.length ? Math.min(...ends) : null;
    if (next === state.expiryAt) return;
    state.expiryAt = next;
    clearTimeout(state.expiryTimer);
    if (next !== null) state.expiryTimer = setTimeout(() => scheduleRefresh(0), next - now + 250);
  }

  function badgesOf(d, now) {
    const b = [];
    if (d.removed) b.push(['removed', 'bad']);
    else b.push(d.confirmed ? ['confirmed', 'ok'] : ['unconfirmed', '']);
    if (d.throttle.lockedUntil !== null) b.push([`locked until ${whenShort(d.throttle.lockedUntil, now)}`, 'bad']);
    else if (d.throttle.failureCount > 0) b.push([plural(d.throttle.failureCount, 'failed attempt', 'failed attempts'), 'warn']);
    if (d.cooldown.nextChallengeAt !== null) b.push([`cooldown until ${whenShort(d.cooldown.nextChallengeAt, now)}`, 'warn']);
    if (d.pendingCodeValidUntil !== null) b.push([`code valid until ${whenShort(d.pendingCodeValidUntil, now)}`, 'info']);
    if (d.backupCodesLeft !== null)
      b.push([`${plural(d.backupCodesLeft, 'backup code', 'backup codes')} left`, d.backupCodesLeft === 0 ? 'bad' : d.backupCodesLeft <= 2 ? 'warn' : 'info']);
    return h('div', { class: 'badges' }, b.map(([text, cls]) => h('span', { class: `badge ${cls}`, text })));
  }

  function renderDevices(devices, now) {
    const box = $('devices');
    const title = $('devices-title');
    title.replaceChildren('Devices of ', h('span', { class: 'mono', text: state.user }));
    if (devices.length === 0) {
      box.replaceChildren(h('p', { class: 'empty', text: `No ${state.confirmed === 'true' ? 'confirmed ' : state.confirmed === 'false' ? 'unconfirmed ' : ''}devices for this user.` }));
      return;
    }
    const focused = document.activeElement && document.activeElement.id === 'editor-input';
    const rows = [];
    for (const d of devices) {
      const lockable = d.throttle.failureCount > 0 || d.throttle.lockedUntil !== null;
      rows.push(
        h(
          'tr',
          { 'data-device': d.deviceId },
          h('td', {}, h('div', { class: 'device-name', text: d.name }), h('div', { class: 'device-id mono', text: d.persistentId })),
          h('td', {}, h('span', { class: 'kind', text: KIND_LABELS[d.kind] || d.kind })),
          h('td', {}, badgesOf(d, now)),
          h('td', {}, d.lastUsedAt === null ? h('span', { class: 'muted', text: 'never' }) : whenShort(d.lastUsedAt, now)),
          h(
            'td',
            { class: 'actions' },
            h('button', {
              type: 'button',
              class: 'small secondary',
              text: 'Unlock',
              disabled: !lockable,
              title: lockable ? 'Reset the failure count and lock' : 'No failures to reset',
              'aria-label': `Unlock ${d.name}`,
              onclick: () => openEditor(d, 'unlock'),
            }),
            h('button', { type: 'button', class: 'small secondary', text: 'Rename', 'aria-label': `Rename ${d.name}`, onclick: () => openEditor(d, 'rename') }),
            h('button', { type: 'button', class: 'small secondary', text: 'Remove', 'aria-label': `Remove ${d.name}`, onclick: () => openEditor(d, 'remove') }),
          ),
        ),
      );
      if (state.editing && state.editing.deviceId === d.deviceId) rows.push(editorRow(d));
    }
    box.replaceChildren(
      h('table', {}, h('thead', {}, h('tr', {}, ['Device', 'Kind', 'Status', 'Last used', ''].map((t) => h('th', { text: t })))), h('tbody', {}, rows)),
    );
    if (state.editing && !devices.some((d) => d.deviceId === state.editing.deviceId)) state.editing = null;
    if (focused && $('editor-input')) $('editor-input').focus();
  }

  function openEditor(d, action) {
    state.editing = { deviceId: d.deviceId, action, value: action === 'rename' ? d.name : '' };
    renderDevices(state.devices, Date.now());
    const input = $('editor-input');
    if (input) {
      input.focus();
      input.select();
    }
  }

  function closeEditor() {
    state.editing = null;
    renderDevices(state.devices, Date.now());
  }

  function editorRow(d) {
    const e = state.editing;
    const spec = {
      unlock: { what: `Unlock “${d.name}”`, label: 'Reason (recorded in the audit log)', placeholder: 'e.g. user called the help desk, identity checked', submit: 'Confirm unlock', cls: '', required: true, max: 500 },
      rename: { what: 'New name', label: 'New name', placeholder: '1–64 characters', submit: 'Save name', cls: '', required: true, max: 64 },
      remove: { what: `Remove “${d.name}”`, label: 'Reason (optional, recorded)', placeholder: 'e.g. phone lost', submit: 'Remove device', cls: 'danger', required: false, max: 500 },
    }[e.action];
    const error = h('span', { class: 'error', id: 'editor-error', role: 'alert' });
    const input = h('input', {
      id: 'editor-input',
      type: 'text',
      maxlength: spec.max,
      placeholder: spec.placeholder,
      'aria-label': spec.label,
      required: spec.required,
      oninput: (ev) => (e.value = ev.target.value),
    });
    input.value = e.value;
    const form = h(
      'form',
      {
        onsubmit: async (ev) => {
          ev.preventDefault();
          const button = form.querySelector('button[type=submit]');
          button.disabled = true;
          error.textContent = '';
          try {
            const value = input.value;
            const body = e.action === 'rename' ? { name: value } : e.action === 'unlock' ? { reason: value } : value.trim() ? { reason: value } : {};
            await api(devicePath(d.deviceId, e.action), { method: 'POST', body });
            state.editing = null;
            await refresh();
          } catch (err) {
            if (err instanceof ApiError && err.status === 401) return failed(err);
            error.textContent = err.message;
            button.disabled = false;
          }
        },
      },
      h('span', { class: 'what', text: spec.what }),
      input,
      h('button', { type: 'submit', class: spec.cls, text: spec.submit }),
      h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: closeEditor }),
      error,
    );
    return h('tr', { class: 'editor' }, h('td', { colspan: 5 }, form));
  }

  // ---- the audit timeline --------------------------------------------------------------------

  function renderAuditFilter() {
    const select = $('audit-filter');
    const options = [h('option', { value: '', text: 'all devices' })];
    for (const d of state.devices) options.push(h('option', { value: d.deviceId, text: d.name }));
    if (state.auditDevice && !state.devices.some((d) => d.deviceId === state.auditDevice))
      options.push(h('option', { value: state.auditDevice, text: state.auditDevice }));
    select.replaceChildren(...options);
    select.value = state.auditDevice;
  }

  function deviceLabel(entry) {
    if (!entry.deviceId) return null;
    const d = state.devices.find((x) => x.deviceId === entry.deviceId);
    return d ? d.name : entry.persistentId || entry.deviceId;
  }

  function detailText(key, value) {
    if (typeof value === 'number' && /(At|Until)$/.test(key)) return `${key}: ${when(value)}`;
    return `${key}: ${value === null ? '–' : String(value)}`;
  }

  /**
   * The device as it was right after an audit entry's event (folded from its stream by the
   * server, GET /api/devices/:id?version=…), shown under the entry; a second click hides it.
   */
  const thenBox = (eventId) => [...document.querySelectorAll('#audit .state-then')].find((b) => b.dataset.event === eventId);

  function showStateThen(eventId) {
    const box = thenBox(eventId);
    if (!box) return;
    const open = state.stateThen.has(eventId);
    box.hidden = !open;
    const button = box.parentElement.querySelector('button[aria-expanded]');
    if (button) button.setAttribute('aria-expanded', String(open));
    if (open) box.replaceChildren(...(state.stateThen.get(eventId) || [h('span', { class: 'muted', text: 'Loading…' })]));
  }

  async function toggleStateThen(e) {
    if (state.stateThen.has(e.eventId)) {
      state.stateThen.delete(e.eventId);
      return showStateThen(e.eventId);
    }
    state.stateThen.set(e.eventId, null);
    showStateThen(e.eventId);
    let nodes;
    try {
      // The device right after this entry's event (by its version: later events of the same
      // millisecond are left out).
      const { device: d } = await api(`${devicePath(e.deviceId)}?version=${e.version}`);
      const facts = [`version ${d.version}`, `last used ${d.lastUsedAt === null ? 'never' : when(d.lastUsedAt)}`];
      if (d.kind === 'totp' && d.totp) facts.push(`drift ${d.totp.drift} step${Math.abs(d.totp.drift) === 1 ? '' : 's'}`);
      nodes = [
        h('div', {}, h('span', { class: 'muted', text: `As of ${when(e.at)}: ` }), h('span', { class: 'device-name', text: d.name })),
        badgesOf(d, e.at),
        h('div', { class: 'meta', text: facts.join(' · ') }),
      ];
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return failed(err);
      nodes = [h('span', { class: 'error', text: err.message })];
    }
    if (!state.stateThen.has(e.eventId)) return; // closed meanwhile
    state.stateThen.set(e.eventId, nodes);
    showStateThen(e.eventId);
  }

  function renderAudit(entries, more) {
    const list = $('audit');
    const items = entries.map((e) => {
      const [label, cls] = ACTIONS[e.action] || [e.action, ''];
      const device = deviceLabel(e);
      const meta = [`by ${e.actor}`];
      if (e.ip) meta.push(`from ${e.ip}`);
      const details = Object.entries(e.details || {}).map(([k, v]) => detailText(k, v));
      // Only for an event of the device's own stream (its version numbers that stream).
      const ofDevice = e.deviceId && e.streamName === `otpdevice-${e.deviceId}`;
      const then = ofDevice ? h('div', { class: 'state-then', 'data-event': e.eventId, hidden: true }) : null;
      const thenButton = ofDevice
        ? h('button', {
            type: 'button',
            class: 'link',
            text: 'State then',
            title: 'The device as it was at this moment',
            'aria-expanded': 'false',
            'aria-label': `Show ${device} as it was at ${when(e.at)}`,
            onclick: () => toggleStateThen(e),
          })
        : null;
      return h(
        'li',
        {},
        h('time', { datetime: new Date(e.at).toISOString(), text: when(e.at) }),
        h(
          'div',
          {},
          h(
            'div',
            {},
            h('span', { class: `action ${cls}`, text: label }),
            device ? h('span', { class: 'muted', text: ` · ${device}` }) : null,
            thenButton,
          ),
          e.reason ? h('div', { class: 'reason' }, h('span', { class: 'muted', text: 'Reason: ' }), e.reason) : null,
          h('div', { class: 'meta', text: [...meta, ...details].join(' · ') }),
          then,
        ),
      );
    });
    if (more) list.append(...items);
    else list.replaceChildren(...items);
    for (const e of entries) if (state.stateThen.has(e.eventId)) showStateThen(e.eventId);
    $('audit-empty').hidden = list.children.length > 0;
    $('audit-empty').textContent = state.user ? 'Nothing recorded yet.' : 'No user selected.';
    $('audit-more').hidden = !state.auditCursor;
  }

  async function loadMoreAudit() {
    if (!state.auditCursor || !state.user) return;
    const base = state.auditDevice ? devicePath(state.auditDevice, 'audit') : userPath(state.user, 'audit');
    try {
      const page = await api(`${base}?limit=50&cursor=${encodeURIComponent(state.auditCursor)}`);
      state.auditCursor = page.nextCursor;
      renderAudit(page.entries, true);
    } catch (e) {
      failed(e);
    }
  }

  // ---- statistics ------------------------------------------------------------------------------

  async function loadStats() {
    const st = await api('/api/stats');
    renderCards(st);
    renderHourly(st.hourly);
    renderKinds(st.devices);
    renderLocked(st.lockedDevices, st.now);
    renderUnusual(st.unusualFailures);
  }

  async function loadLag() {
    const lag = await api('/api/lag');
    const text =
      lag.state === 'failed'
        ? `Projection stopped: ${lag.error || 'see the server log'}`
        : lag.events === 0
          ? 'Read models up to date'
          : `Read models ${lag.exact ? '' : 'over '}${plural(lag.events, 'event', 'events')} behind`;
    $('lag').textContent = text;
  }

  function card(value, label, alert) {
    return h('div', { class: `card${alert ? ' alert' : ''}` }, h('div', { class: 'value', text: value }), h('div', { class: 'label', text: label }));
  }

  function renderCards(st) {
    const t = st.devices.total;
    const sum = (f) => st.hourly.reduce((n, r) => n + f(r), 0);
    $('cards').replaceChildren(
      card(t.confirmed + t.unconfirmed, 'devices in use'),
      card(t.unconfirmed, 'awaiting confirmation'),
      card(sum((r) => r.verified), 'verifications, 24 h'),
      card(sum((r) => r.failed + r.matchFailed), 'failures, 24 h', false),
      card(st.lockedDevices.length, 'locked now', st.lockedDevices.length > 0),
      card(st.unusualFailures.length, 'users flagged', st.unusualFailures.length > 0),
    );
  }

  const niceMax = (n) => {
    if (n <= 4) return 4;
    const p = 10 ** Math.floor(Math.log10(n));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  };

  function renderHourly(hourly) {
    const W = 340;
    const H = 150;
    const left = 28;
    const bottom = 20;
    const top = 8;
    const plotW = W - left - 4;
    const plotH = H - top - bottom;
    const rows = hourly.map((r) => ({ hour: r.hour, failed: r.failed + r.matchFailed, refused: r.refused + r.matchRefused }));
    const max = niceMax(Math.max(0, ...rows.map((r) => r.failed + r.refused)));
    const y = (v) => top + plotH - (v / max) * plotH;
    const bw = plotW / Math.max(1, rows.length);
    const parts = [];
    for (const v of [0, max / 2, max]) {
      parts.push(s('line', { class: v === 0 ? 'axis' : 'grid', x1: left, x2: W - 4, y1: y(v), y2: y(v) }));
      parts.push(s('text', { x: left - 5, y: y(v) + 3, 'text-anchor': 'end' }, String(v)));
    }
    rows.forEach((r, i) => {
      const x = left + i * bw + bw * 0.15;
      const w = bw * 0.7;
      const title = `${when(r.hour)}: ${plural(r.failed, 'failure', 'failures')}, ${r.refused} refused`;
      if (r.failed > 0) parts.push(s('rect', { class: 'bar-failed', x, width: w, y: y(r.failed), height: y(0) - y(r.failed) }, s('title', {}, title)));
      if (r.refused > 0)
        parts.push(s('rect', { class: 'bar-refused', x, width: w, y: y(r.failed + r.refused), height: y(r.failed) - y(r.failed + r.refused) }, s('title', {}, title)));
      const hour = new Date(r.hour).getHours();
      if (i % 6 === 0 && i + 3 < rows.length)
        parts.push(s('text', { x: left + i * bw + bw / 2, y: H - 6, 'text-anchor': 'middle' }, `${pad(hour)}:00`));
      if (i === rows.length - 1) parts.push(s('text', { x: W - 4, y: H - 6, 'text-anchor': 'end' }, 'now'));
    });
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Failed and refused verifications per hour' }, parts);
    $('chart-hourly').replaceChildren(svg);
  }

  function renderKinds(counts) {
    const W = 340;
    const rowH = 24;
    const left = 104;
    const right = 36;
    const H = KINDS.length * rowH + 4;
    const max = Math.max(1, ...KINDS.map((k) => counts[k].confirmed + counts[k].unconfirmed));
    const scale = (W - left - right) / max;
    const parts = [];
    KINDS.forEach((k, i) => {
      const c = counts[k];
      const y = i * rowH + 4;
      parts.push(s('text', { class: 'label', x: 0, y: y + 13 }, KIND_LABELS[k]));
      parts.push(s('rect', { class: 'grid-bg', x: left, y, width: W - left - right, height: 16, fill: '#f1f4f8' }));
      if (c.confirmed > 0) parts.push(s('rect', { class: 'bar-kind', x: left, y, width: c.confirmed * scale, height: 16 }, s('title', {}, `${c.confirmed} confirmed`)));
      if (c.unconfirmed > 0)
        parts.push(
          s('rect', { class: 'bar-kind-unconfirmed', x: left + c.confirmed * scale, y, width: c.unconfirmed * scale, height: 16 }, s('title', {}, `${c.unconfirmed} unconfirmed`)),
        );
      parts.push(s('text', { class: 'label', x: W - right + 6, y: y + 13 }, String(c.confirmed + c.unconfirmed)));
    });
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Devices in use by kind (dark: confirmed, light: unconfirmed)' }, parts);
    $('chart-kinds').replaceChildren(svg);
  }

  function userLink(user) {
    return h('button', { type: 'button', class: 'link', text: user, onclick: () => selectUser(user) });
  }

  function renderLocked(devices, now) {
    const list = $('locked');
    if (devices.length === 0) {
      list.replaceChildren(h('li', { class: 'empty', text: 'No device is locked.' }));
      return;
    }
    list.replaceChildren(
      ...devices.map((d) =>
        h(
          'li',
          {},
          h('div', {}, h('strong', { text: d.name }), ' · ', userLink(d.userId)),
          h('div', { class: 'sub', text: `locked until ${whenShort(d.throttle.lockedUntil, now)} · ${plural(d.throttle.failureCount, 'failure', 'failures')}` }),
        ),
      ),
    );
  }

  function renderUnusual(streaks) {
    const list = $('unusual');
    if (streaks.length === 0) {
      list.replaceChildren(h('li', { class: 'empty', text: 'Nobody is flagged.' }));
      return;
    }
    list.replaceChildren(
      ...streaks.map((f) =>
        h(
          'li',
          {},
          h('div', {}, userLink(f.userId)),
          h('div', { class: 'sub', text: `${plural(f.failures, 'failure', 'failures')} over ${plural(f.days.length, 'day', 'days')} · last ${when(f.lastFailureAt)}` }),
        ),
      ),
    );
  }

  // ---- wiring --------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = $('token-input').value.trim();
      if (!token) return;
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token-input').value = '';
      start();
    });
    $('signout').addEventListener('click', () => signOut(''));
    $('user-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const user = $('user-input').value.trim();
      if (user) selectUser(user);
    });
    window.addEventListener('hashchange', () => {
      openFromHash();
      refresh();
    });
    $('confirmed-filter').addEventListener('change', (ev) => {
      state.confirmed = ev.target.value;
      refresh();
    });
    $('audit-filter').addEventListener('change', (ev) => {
      state.auditDevice = ev.target.value;
      refresh();
    });
    $('audit-more').addEventListener('click', loadMoreAudit);
    start();
  });
})();
