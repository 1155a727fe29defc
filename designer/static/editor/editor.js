// The canvas editor. The page keeps one flow@1 document in memory (`doc`); Drawflow draws it
// (through adapter.js), the server renders forms, checks and fragments (htmx), and the document is
// saved as JSON with PUT /api/flows/{id}. No framework; Drawflow and htmx are vendored.
import {fromDrawflow, remapEdges, toDrawflow, uniqueId} from './adapter.js';

const DATA = JSON.parse(document.getElementById('tf-data').textContent);
const FLOW = DATA.flow;
const TYPES = DATA.types;
const CAN_EDIT = DATA.canEdit;
const LANG = DATA.lang;
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';
const BASE = `/flows/${encodeURIComponent(FLOW.id)}`;
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const T = (key, vars = {}) => (DATA.text[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => vars[name] ?? '');
const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// -- state --------------------------------------------------------------------------------------------
let doc = {...DATA.document, nodes: DATA.document.nodes || [], edges: DATA.document.edges || []};
let ports = new Map(Object.entries(DATA.ports)); // node id → output ports (switch/split: from config)
let view = null; // the adapter's id and port mappings of the current drawing
let selected = new Set();
let problems = DATA.problems;
let stats = null;
let dirty = false;
let rendering = false;
const history = {stack: [snapshot()], at: 0};

function snapshot() {
  return {json: JSON.stringify(doc), ports: JSON.stringify([...ports])};
}

const nodeById = (id) => doc.nodes.find((n) => n.id === id);
const typeOf = (node) => TYPES[node.type];
const portsOf = (node) => ports.get(node.id) ?? typeOf(node)?.ports ?? [];
const isTrigger = (node) => (typeOf(node)?.category ?? node.type.split('.')[0]) === 'trigger';
const elementOf = (id) => (view?.idOf.has(id) ? $(`#node-${view.idOf.get(id)}`) : null);

// -- server calls -------------------------------------------------------------------------------------
async function api(method, url, body) {
  const init = {method, headers: {'X-CSRF-Token': CSRF, Accept: 'application/json'}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = {detail: {message: text.slice(0, 200)}}; }
    return {ok: response.ok, status: response.status, body: json};
  } catch (error) {
    return {ok: false, status: 0, body: {detail: {message: String(error)}}};
  }
}
const messageOf = (r) => r.body?.detail?.message || r.body?.detail || `HTTP ${r.status}`;
const withLang = (url) => url + (url.includes('?') ? '&' : '?') + `lang=${encodeURIComponent(LANG)}`;

function setStatus(text, kind = '') {
  const status = $('#tf-status');
  status.textContent = text;
  status.className = `tf-status ${kind}`;
}

// -- drawing ------------------------------------------------------------------------------------------
const editor = new Drawflow($('#tf-canvas'));
editor.key = () => {}; // Delete, undo and redo are ours (multi-select, history)
editor.reroute = false;
editor.zoom_min = 0.3;
editor.start();
editor.editor_mode = CAN_EDIT ? 'edit' : 'view';

function nodeHtml(node) {
  const info = typeOf(node);
  const label = info?.label ?? node.type;
  return `<div class="tf-node">
    <div class="tf-node-kind">${escapeHtml(label)}</div>
    <div class="tf-node-name">${escapeHtml(node.name || label)}</div>
    <div class="tf-node-id">${escapeHtml(node.id)}</div>
    <div class="tf-node-rules">${escapeHtml(sendRules(node))}</div>
    <div class="tf-node-stats"></div>
    <span class="tf-badge" hidden></span>
  </div>`;
}

/** The sending rules on a send node, compactly: "频控 3/7 天 · 免打扰 21:00–09:00" (the form says it in full). */
function sendRules(node) {
  const policy = DATA.policy;
  if (!policy?.sendTypes.includes(node.type)) return '';
  if (node.config?.category === 'transactional') return T('pol.badge.exempt');
  const settings = doc.settings || {};
  const parts = [];
  if (policy.cap && settings.frequency_capped !== false) parts.push(T('pol.badge.cap', {count: policy.cap.count, window: policy.cap.window}));
  const own = settings.quiet_hours;
  const quiet = own?.start ? (own.start === own.end ? null : [own.start, own.end]) : policy.quiet;
  if (quiet) parts.push(T('pol.badge.quiet', {start: quiet[0], end: quiet[1]}));
  return parts.join(' · ');
}

function render() {
  rendering = true;
  view = toDrawflow(doc, {
    portsOf, hasInput: (n) => !isTrigger(n), html: nodeHtml,
    className: (n) => `tf-cat-${typeOf(n)?.category ?? 'unknown'}`,
  });
  editor.import(view.model);
  editor.node_selected = null; // their elements were replaced
  editor.connection_selected = null;
  for (const node of doc.nodes) {
    const el = elementOf(node.id);
    el.dataset.tf = node.id;
    el.tabIndex = 0;
    el.setAttribute('role', 'button');
    el.setAttribute('aria-label', `${node.name || typeOf(node)?.label || node.type} (${node.id})`);
    $$('.outputs .output', el).forEach((output, k) => {
      output.dataset.port = view.portLists.get(node.id)[k];
      output.title = output.dataset.port;
    });
  }
  rendering = false;
  decorate();
}

function decorate() {
  for (const node of doc.nodes) elementOf(node.id)?.classList.toggle('tf-selected', selected.has(node.id));
  showProblems();
  showStats();
}

/** Read positions and connections back from Drawflow into the document. */
function sync() {
  if (rendering || !view) return;
  doc = fromDrawflow(editor.drawflow, doc, view);
}

// -- history (flow@1 snapshots) -------------------------------------------------------------------------
function commit() {
  const now = snapshot();
  const top = history.stack[history.at];
  if (now.json === top.json && now.ports === top.ports) return;
  history.stack.splice(history.at + 1);
  history.stack.push(now);
  if (history.stack.length > 200) history.stack.shift();
  history.at = history.stack.length - 1;
  setDirty(true);
  scheduleValidation();
}

function travel(step) {
  const at = history.at + step;
  if (at < 0 || at >= history.stack.length) return;
  history.at = at;
  doc = JSON.parse(history.stack[at].json);
  ports = new Map(JSON.parse(history.stack[at].ports));
  selected = new Set([...selected].filter((id) => nodeById(id)));
  render();
  showProperties();
  setDirty(true);
  scheduleValidation();
}

function setDirty(value) {
  dirty = value;
  if (value) setStatus(T('unsaved'), 'tf-dirty');
  const undo = $('#tf-undo');
  if (undo) {
    undo.disabled = history.at === 0;
    $('#tf-redo').disabled = history.at >= history.stack.length - 1;
  }
}

// -- validation -----------------------------------------------------------------------------------------
let validationTimer = null;
let validationRun = 0;
function scheduleValidation() {
  clearTimeout(validationTimer);
  validationTimer = setTimeout(validateNow, 350);
}
async function validateNow() {
  const run = ++validationRun;
  const r = await api('POST', '/api/flows/validate', doc);
  if (run !== validationRun || !r.ok) return;
  problems = r.body.problems;
  showProblems();
}

function showProblems() {
  const byNode = new Map();
  for (const p of problems) if (p.node) byNode.set(p.node, [...(byNode.get(p.node) || []), p]);
  for (const node of doc.nodes) {
    const el = elementOf(node.id);
    if (!el) continue;
    const mine = byNode.get(node.id) || [];
    const badge = $('.tf-badge', el);
    el.classList.toggle('tf-invalid', mine.length > 0);
    badge.hidden = mine.length === 0;
    badge.textContent = mine.length ? `! ${mine.length}` : '';
    badge.title = mine.map((p) => `${p.field ? p.field + ': ' : ''}${p.message}\n${T('fix')}${p.fix}`).join('\n\n');
  }
  const list = $('#tf-problems');
  list.innerHTML = problems.length ? problems.map((p) => `<li><button type="button" class="link" data-node="${escapeHtml(p.node || '')}" data-field="${escapeHtml(p.field || '')}">
      <code>${escapeHtml(p.node || T('flow'))}</code>${p.field ? ` <span class="muted">${escapeHtml(p.field)}</span>` : ''}:
      ${escapeHtml(p.message)} <span class="tf-fix">${escapeHtml(T('fix') + p.fix)}</span></button></li>`).join('')
    : `<li class="ok">${escapeHtml($('#tf-problems-box').dataset.ok || '✓')}</li>`;
  $('#tf-problem-count').textContent = problems.length ? T('problems_n', {n: problems.length}) : '✓';
  $('#tf-problems-box').classList.toggle('tf-has-problems', problems.length > 0);
  const publish = $('#tf-publish');
  if (publish) {
    publish.disabled = problems.length > 0;
    publish.title = problems.length ? T('publish_blocked') : '';
  }
}

// -- selection, properties ------------------------------------------------------------------------------
function select(ids) {
  $$('.tf-highlight').forEach((el) => el.classList.remove('tf-highlight'));
  selected = new Set(ids);
  decorate();
  showProperties();
}

let formTimer = null;
function showProperties() {
  clearTimeout(formTimer);
  const panel = $('#tf-panel-props');
  if (selected.size === 1) {
    const node = nodeById([...selected][0]);
    formTimer = setTimeout(() => loadNodeForm(node), 60);
    activateTab('props');
  } else if (selected.size > 1) {
    panel.innerHTML = `<p>${escapeHtml(T('selected', {n: selected.size}))}</p>`;
  } else if (!panel.querySelector('form[data-kind="settings"]')) {
    panel.innerHTML = `<p class="muted">${escapeHtml(panel.dataset.empty)}</p>`;
  }
}

function loadNodeForm(node) {
  if (!node) return;
  const query = new URLSearchParams({type: node.type, config: JSON.stringify(node.config || {}), name: node.name || '',
    settings: JSON.stringify(doc.settings || {}), lang: LANG});
  htmx.ajax('GET', `${BASE}/nodes/${encodeURIComponent(node.id)}/form?${query}`, {target: '#tf-panel-props', swap: 'innerHTML'});
}

function openSettings() {
  const {nodes, edges, ...envelope} = doc;
  const query = new URLSearchParams({document: JSON.stringify(envelope), lang: LANG});
  select([]);
  htmx.ajax('GET', `${BASE}/settings/form?${query}`, {target: '#tf-panel-props', swap: 'innerHTML'});
  activateTab('props');
}

async function submitForm(form) {
  const response = await fetch(withLang(form.action), {method: 'POST', body: new FormData(form), headers: {'X-CSRF-Token': CSRF}});
  let body = {};
  try { body = await response.json(); } catch { body = {errors: {_form: `HTTP ${response.status}`}}; }
  showFieldErrors(form, body.errors || {});
  if (!body.config) return;
  if (form.dataset.kind === 'node') applyNode(form.dataset.node, body);
  else applySettings(body.config);
  form.querySelector('[name="_prev"]').value = JSON.stringify(body.config);
  const status = $('.tf-form-status', form);
  if (status) status.textContent = body.ok ? T('applied') : T('invalid_fields');
}

function applyNode(id, body) {
  const node = nodeById(id);
  if (!node) return;
  node.config = body.config;
  if (body.name) node.name = body.name; else delete node.name;
  if (body.ports) {
    const before = portsOf(node);
    if (before.join('\u0000') !== body.ports.join('\u0000')) {
      doc.edges = remapEdges(doc.edges, id, before, body.ports);
      ports.set(id, body.ports);
    }
  }
  render();
  commit();
}

function applySettings(config) {
  doc.name = config.name || doc.name;
  if (config.description) doc.description = config.description; else delete doc.description;
  doc.settings = config.settings || {};
  $('#tf-flow-name').textContent = doc.name;
  render();
  commit();
}

function showFieldErrors(form, errors) {
  $$('[data-error-for]', form).forEach((el) => { el.textContent = ''; });
  $$('[aria-invalid]', form).forEach((el) => el.removeAttribute('aria-invalid'));
  for (const [name, message] of Object.entries(errors)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) || form.querySelector('[data-error-for="_form"]');
    slot.textContent = slot.dataset.errorFor === name ? message : `${name}: ${message}`;
    form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute('aria-invalid', 'true');
  }
}

// -- editing --------------------------------------------------------------------------------------------
function freeSpot(x, y) {
  while (doc.nodes.some((n) => Math.abs((n.ui?.x ?? 0) - x) < 40 && Math.abs((n.ui?.y ?? 0) - y) < 40)) y += 60;
  return {x: Math.round(x), y: Math.round(y)};
}

function addNode(type, x, y) {
  if (!CAN_EDIT || !TYPES[type]) return;
  const id = uniqueId(type, doc.nodes.map((n) => n.id));
  doc.nodes.push({id, type, config: {}, ui: freeSpot(x, y)});
  ports.set(id, TYPES[type].ports);
  render();
  commit();
  select([id]);
  elementOf(id)?.focus({preventScroll: true});
  setStatus(T('node_added', {id}));
}

/** Where a new node goes when added by keyboard: right of the selected node, else mid-view. */
function nextPosition() {
  const last = nodeById([...selected].pop() || '') || doc.nodes[doc.nodes.length - 1];
  if (last?.ui) return [last.ui.x + 260, last.ui.y];
  const canvas = $('#tf-canvas').getBoundingClientRect();
  return canvasPoint(canvas.left + 120, canvas.top + canvas.height / 3);
}

/** Zoom (at most 100 %) and pan so that every node is in view. */
function fit() {
  if (!doc.nodes.length) return;
  const box = $('#tf-canvas').getBoundingClientRect();
  const xs = doc.nodes.map((n) => n.ui?.x ?? 0);
  const ys = doc.nodes.map((n) => n.ui?.y ?? 0);
  const [minX, minY] = [Math.min(...xs), Math.min(...ys)];
  const [width, height] = [Math.max(...xs) + 230 - minX, Math.max(...ys) + 100 - minY];
  const margin = 40;
  const zoom = Math.max(0.4, Math.min(1, (box.width - 2 * margin) / width, (box.height - 2 * margin) / height));
  // Drawflow scales around the canvas centre: screen = centre + (point - centre) * zoom + translate
  const [cx, cy] = [box.width / 2, box.height / 2];
  const left = margin + Math.max(0, (box.width - 2 * margin - width * zoom) / 2);
  const top = margin + Math.max(0, (box.height - 2 * margin - height * zoom) / 2);
  Object.assign(editor, {zoom, zoom_last_value: zoom, canvas_x: left - cx - (minX - cx) * zoom,
    canvas_y: top - cy - (minY - cy) * zoom});
  editor.precanvas.style.transform = `translate(${editor.canvas_x}px, ${editor.canvas_y}px) scale(${zoom})`;
  $('#tf-zoom-label').textContent = `${Math.round(zoom * 100)}%`;
}

function canvasPoint(clientX, clientY) {
  const box = editor.precanvas.getBoundingClientRect();
  return [(clientX - box.left) / editor.zoom, (clientY - box.top) / editor.zoom];
}

function deleteSelection() {
  if (!CAN_EDIT) return;
  if (editor.connection_selected) {
    editor.removeConnection(); // → connectionRemoved → sync
    return;
  }
  if (!selected.size) return;
  const n = selected.size;
  doc.nodes = doc.nodes.filter((node) => !selected.has(node.id));
  doc.edges = doc.edges.filter((e) => !selected.has(e.from) && !selected.has(e.to));
  for (const id of selected) ports.delete(id);
  select([]);
  render();
  commit();
  setStatus(T('deleted', {n}));
}

function moveSelection(dx, dy) {
  for (const id of selected) {
    const node = nodeById(id);
    node.ui = {x: (node.ui?.x ?? 0) + dx, y: (node.ui?.y ?? 0) + dy};
  }
  render();
  commit();
  elementOf([...selected][0])?.focus({preventScroll: true});
}

async function autoLayout() {
  const r = await api('POST', withLang('/flows/layout'), doc);
  if (!r.ok) return setStatus(messageOf(r), 'error');
  for (const node of doc.nodes) if (r.body[node.id]) node.ui = {...(node.ui || {}), ...r.body[node.id]};
  render();
  fit();
  commit();
}

// Drawflow events: the document follows what the user did on the canvas.
editor.on('nodeMoved', () => { sync(); commit(); });
editor.on('nodeRemoved', () => { sync(); commit(); });
editor.on('connectionRemoved', () => { if (!rendering) { sync(); commit(); } });
editor.on('connectionStart', () => $('#tf-canvas').classList.add('tf-connecting'));
editor.on('connectionCancel', () => $('#tf-canvas').classList.remove('tf-connecting'));
editor.on('connectionCreated', ({output_id: out, input_id: into, output_class: port}) => {
  $('#tf-canvas').classList.remove('tf-connecting');
  // a port leads to one node: a new connection replaces the port's old one
  rendering = true;
  for (const old of [...editor.drawflow.drawflow.Home.data[out].outputs[port].connections]) {
    if (String(old.node) !== String(into)) editor.removeSingleConnection(out, old.node, port, old.output);
  }
  rendering = false;
  sync();
  commit();
});
editor.on('zoom', (zoom) => { $('#tf-zoom-label').textContent = `${Math.round(zoom * 100)}%`; });

// Multi-select: shift-click adds or removes a node; dragging a selected node moves them all.
let drag = null;
$('#tf-canvas').addEventListener('mousedown', (event) => {
  if (event.button !== 0 || event.target.closest('.input, .output')) return;
  const el = event.target.closest('.drawflow-node');
  if (!el) {
    if (!event.shiftKey && !event.target.closest('.main-path')) select([]);
    return;
  }
  const id = el.dataset.tf;
  if (event.shiftKey) {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id); else next.add(id);
    select([...next]);
  } else if (!selected.has(id)) {
    select([id]);
  }
  drag = {id, moved: false, start: new Map([...selected].map((s) => [s, {...nodeById(s).ui}]))};
}, true);
editor.on('mouseMove', () => {
  if (!drag || !editor.drag || !view) return;
  const data = editor.drawflow.drawflow.Home.data;
  const mine = data[view.idOf.get(drag.id)];
  const origin = drag.start.get(drag.id);
  if (!mine || !origin) return;
  const dx = mine.pos_x - (origin.x ?? 0);
  const dy = mine.pos_y - (origin.y ?? 0);
  if (dx || dy) drag.moved = true;
  for (const [id, start] of drag.start) {
    if (id === drag.id) continue;
    const df = view.idOf.get(id);
    data[df].pos_x = (start.x ?? 0) + dx;
    data[df].pos_y = (start.y ?? 0) + dy;
    const el = $(`#node-${df}`);
    el.style.left = `${data[df].pos_x}px`;
    el.style.top = `${data[df].pos_y}px`;
    editor.updateConnectionNodes(`node-${df}`);
  }
});
document.addEventListener('mouseup', (event) => {
  if (drag && !drag.moved && !event.shiftKey && selected.size > 1) select([drag.id]);
  drag = null;
});

// Keyboard: Delete, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y), arrows move the selection, Enter opens a node.
document.addEventListener('keydown', (event) => {
  if (event.target.closest('input, textarea, select, [contenteditable]')) return;
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (mod && key === 'z') { event.preventDefault(); if (CAN_EDIT) travel(event.shiftKey ? 1 : -1); return; }
  if (mod && key === 'y') { event.preventDefault(); if (CAN_EDIT) travel(1); return; }
  if (event.key === 'Delete' || (event.key === 'Backspace' && !mod)) {
    if (selected.size || editor.connection_selected) { event.preventDefault(); deleteSelection(); }
    return;
  }
  const onNode = event.target.closest('.drawflow-node');
  if (event.key === 'Enter' && onNode) { select([onNode.dataset.tf]); return; }
  if (event.key === 'Escape') { select([]); return; }
  const arrows = {ArrowLeft: [-20, 0], ArrowRight: [20, 0], ArrowUp: [0, -20], ArrowDown: [0, 20]};
  if (arrows[event.key] && onNode && selected.size && CAN_EDIT) {
    event.preventDefault();
    moveSelection(...arrows[event.key]);
  }
});
$('#tf-canvas').addEventListener('focusin', (event) => {
  const el = event.target.closest('.drawflow-node');
  if (el && !drag && !selected.has(el.dataset.tf)) select([el.dataset.tf]);
});

// -- palette --------------------------------------------------------------------------------------------
$('#tf-palette-search').addEventListener('input', (event) => {
  const words = event.target.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const group of $$('.tf-pal-group')) {
    let shown = 0;
    for (const item of $$('.tf-pal-item', group)) {
      const hit = words.every((w) => item.dataset.search.toLowerCase().includes(w));
      item.parentElement.hidden = !hit;
      shown += hit ? 1 : 0;
    }
    group.hidden = shown === 0;
  }
});
for (const item of $$('.tf-pal-item')) {
  item.addEventListener('dragstart', (event) => {
    event.dataTransfer.setData('application/x-tideflow-node', item.dataset.type);
    event.dataTransfer.setData('text/plain', item.dataset.type);
    event.dataTransfer.effectAllowed = 'copy';
  });
  item.addEventListener('click', () => addNode(item.dataset.type, ...nextPosition())); // Enter and Space too
}
$('#tf-canvas').addEventListener('dragover', (event) => { if (CAN_EDIT) event.preventDefault(); });
$('#tf-canvas').addEventListener('drop', (event) => {
  event.preventDefault();
  const type = event.dataTransfer.getData('application/x-tideflow-node') || event.dataTransfer.getData('text/plain');
  const [x, y] = canvasPoint(event.clientX, event.clientY);
  addNode(type, x - 80, y - 30);
});

// -- toolbar --------------------------------------------------------------------------------------------
async function save() {
  setStatus(T('saving'));
  const r = await api('PUT', `/api/flows/${encodeURIComponent(FLOW.id)}`, doc);
  if (!r.ok) { setStatus(T('save_failed') + messageOf(r), 'error'); return false; }
  problems = r.body.problems;
  showProblems();
  dirty = false;
  setStatus(T('saved'), 'ok');
  return true;
}

async function publish() {
  if (problems.length) { setStatus(T('publish_blocked'), 'error'); return; }
  if (!(await save())) return;
  const r = await api('POST', `/api/flows/${encodeURIComponent(FLOW.id)}/publish`);
  if (r.ok) {
    FLOW.version = r.body.version;
    $('#tf-flow-state').textContent = `active · v${r.body.version}`;
    setStatus(T('published', {version: r.body.version}), 'ok');
    if (!$('#tf-panel-versions').hidden) loadVersions();
  } else {
    if (r.body?.detail?.problems) { problems = r.body.detail.problems; showProblems(); }
    setStatus(T('publish_failed') + messageOf(r), 'error');
  }
}

const on = (id, handler) => $(id)?.addEventListener('click', handler);
on('#tf-save', save);
on('#tf-publish', publish);
on('#tf-undo', () => travel(-1));
on('#tf-redo', () => travel(1));
on('#tf-delete', deleteSelection);
on('#tf-zoom-in', () => editor.zoom_in());
on('#tf-zoom-out', () => editor.zoom_out());
on('#tf-zoom-reset', () => editor.zoom_reset());
on('#tf-layout', autoLayout);
on('#tf-settings', openSettings);
on('#tf-stats', toggleStats);

// -- side panel: tabs, problems, versions, funnel, preview -----------------------------------------------
function activateTab(name) {
  for (const tab of $$('[role="tab"]')) {
    const active = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(active));
    tab.tabIndex = active ? 0 : -1;
    $(`#${tab.getAttribute('aria-controls')}`).hidden = !active;
  }
  if (name === 'versions') loadVersions();
  if (name === 'funnel') loadFunnel();
}
for (const tab of $$('[role="tab"]')) {
  tab.addEventListener('click', () => activateTab(tab.dataset.tab));
  tab.addEventListener('keydown', (event) => {
    const tabs = $$('[role="tab"]');
    const step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.focus();
    activateTab(next.dataset.tab);
  });
}

const loadVersions = () => htmx.ajax('GET', withLang(`${BASE}/versions`), {target: '#tf-versions', swap: 'innerHTML'});
const loadFunnel = () => htmx.ajax('GET', withLang(`${BASE}/funnel`), {target: '#tf-funnel', swap: 'innerHTML'});

function highlight(id) {
  $$('.tf-highlight').forEach((el) => el.classList.remove('tf-highlight'));
  const el = id && elementOf(id);
  if (!el) return;
  el.classList.add('tf-highlight');
  const box = $('#tf-canvas').getBoundingClientRect();
  const at = el.getBoundingClientRect();
  if (at.left < box.left || at.right > box.right || at.top < box.top || at.bottom > box.bottom) centerOn(nodeById(id));
}

/** Pan (keeping the zoom) so that `node` is in the middle of the canvas. */
function centerOn(node) {
  const box = $('#tf-canvas').getBoundingClientRect();
  const zoom = editor.zoom;
  editor.canvas_x = -((node.ui?.x ?? 0) + 88 - box.width / 2) * zoom;
  editor.canvas_y = -((node.ui?.y ?? 0) + 30 - box.height / 2) * zoom;
  editor.precanvas.style.transform = `translate(${editor.canvas_x}px, ${editor.canvas_y}px) scale(${zoom})`;
}

let player = null;
function play(button) {
  clearInterval(player);
  const steps = $$('li[data-node]', button.closest('.tf-panel'));
  let i = 0;
  player = setInterval(() => {
    steps.forEach((s) => s.classList.remove('tf-current'));
    if (i >= steps.length) { clearInterval(player); return; }
    steps[i].classList.add('tf-current');
    steps[i].scrollIntoView({block: 'nearest'});
    highlight(steps[i].dataset.node);
    i += 1;
  }, 700);
}

document.addEventListener('click', async (event) => {
  const target = event.target;
  const problem = target.closest('#tf-problems [data-node]');
  if (problem) {
    if (problem.dataset.node && nodeById(problem.dataset.node)) select([problem.dataset.node]);
    else if (problem.dataset.field.startsWith('settings') || !problem.dataset.node) openSettings();
    return;
  }
  const step = target.closest('.tf-timeline li[data-node], .tf-funnel li[data-node], .tf-problem-list li[data-node], .tf-diff li[data-node]');
  if (step) { highlight(step.dataset.node); return; }
  if (target.closest('[data-play]')) { play(target.closest('[data-play]')); return; }
  const rollback = target.closest('[data-rollback]');
  if (rollback) {
    const version = Number(rollback.dataset.rollback);
    if (!window.confirm(T('rollback_confirm', {version}))) return;
    const r = await api('POST', `/api/flows/${encodeURIComponent(FLOW.id)}/rollback`, {version});
    if (!r.ok) { setStatus(messageOf(r), 'error'); return; }
    dirty = false;
    window.location.reload(); // the draft is now the old version's document
    return;
  }
  const add = target.closest('[data-add-row]');
  if (add) {
    const box = add.closest('.tf-rows');
    const index = Number(add.dataset.next || 0);
    add.dataset.next = String(index + 1);
    const list = $('.tf-row-list', box);
    list.insertAdjacentHTML('beforeend', $(':scope > template', box).innerHTML.replaceAll('__i__', String(index)));
    const row = list.lastElementChild;
    htmx.process(row);
    $('input, select, textarea', row)?.focus();
    return;
  }
  const remove = target.closest('[data-remove-row]');
  if (remove) {
    const form = remove.closest('form');
    remove.closest('.tf-row').remove();
    if (form?.classList.contains('tf-form') && form.dataset.kind) scheduleSubmit(form);
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && event.target.matches('.tf-timeline li, .tf-funnel li')) highlight(event.target.dataset.node);
});

// Property and settings forms: applied on submit and on every change.
let submitTimer = null;
function scheduleSubmit(form) {
  clearTimeout(submitTimer);
  submitTimer = setTimeout(() => submitForm(form), 250);
}
document.addEventListener('submit', (event) => {
  const form = event.target.closest('form.tf-form[data-kind]');
  if (!form) return;
  event.preventDefault();
  clearTimeout(submitTimer);
  submitForm(form);
});
document.addEventListener('change', (event) => {
  const form = event.target.closest('form.tf-form[data-kind]');
  if (form && CAN_EDIT) scheduleSubmit(form);
});

// htmx: every request says the UI language; the preview sends the canvas document as it is now.
document.body.addEventListener('htmx:configRequest', (event) => {
  const detail = event.detail;
  if (!/[?&]lang=/.test(detail.path)) detail.path = withLang(detail.path);
  if (detail.elt.id === 'tf-preview-form') detail.parameters.document = JSON.stringify(doc);
  detail.headers['X-CSRF-Token'] = CSRF;
});
document.body.addEventListener('htmx:afterSwap', (event) => {
  if (event.detail.target.id === 'tf-timeline') {
    const first = $('#tf-timeline li[data-node]');
    if (first) highlight(first.dataset.node);
  }
});

// -- live statistics ------------------------------------------------------------------------------------
let statsTimer = null;
function toggleStats() {
  const button = $('#tf-stats');
  const on = button.getAttribute('aria-pressed') !== 'true';
  button.setAttribute('aria-pressed', String(on));
  clearInterval(statsTimer);
  $('#tf-canvas').classList.toggle('tf-stats-on', on);
  if (on) {
    refreshStats();
    statsTimer = setInterval(refreshStats, 3000);
  } else {
    stats = null;
    showStats();
  }
}
async function refreshStats() {
  const r = await api('GET', `/api/flows/${encodeURIComponent(FLOW.id)}/stats`);
  if (!r.ok) return;
  stats = r.body.nodes || {};
  showStats();
  if (!$('#tf-panel-funnel').hidden) loadFunnel();
}
function showStats() {
  for (const node of doc.nodes) {
    const el = elementOf(node.id);
    if (!el) continue;
    const s = stats?.[node.id];
    const box = $('.tf-node-stats', el);
    box.textContent = stats ? `${T('entered')} ${s?.entered ?? 0} · ${T('waiting')} ${s?.waiting ?? 0}${s?.failed ? ` · ${T('failed')} ${s.failed}` : ''}` : '';
    for (const output of $$('.outputs .output', el)) {
      const left = s?.left?.[output.dataset.port];
      output.dataset.label = stats ? `${output.dataset.port} ${left ?? 0}` : output.dataset.port;
    }
  }
}

window.addEventListener('beforeunload', (event) => {
  if (dirty && CAN_EDIT) { event.preventDefault(); event.returnValue = ''; }
});

// -- start --------------------------------------------------------------------------------------------
$('#tf-panel-props').dataset.empty = $('#tf-panel-props').textContent.trim();
$('#tf-problems-box').dataset.ok = T('no_problems');
render();
fit();
setDirty(false);
setStatus('');
window.tideflowEditor = {get document() { return doc; }, get problems() { return problems; }, save, publish, render};
