// The canvas editor. The page keeps one flow@1 document in memory (`doc`); Drawflow draws it
// (through adapter.js), the server renders forms, checks and fragments (htmx), and the document is
// saved as JSON with PUT /api/flows/{id}. No framework; Drawflow and htmx are vendored.
import {fromDrawflow, remapEdges, toDrawflow, uniqueId} from './adapter.js';
import {NODE_H, NODE_W, READABLE, bounds, centreOn, copyOf, fitView, nodesIn, pasteInto, viewport, zoomAt} from './canvas.js';

const DATA = JSON.parse(document.getElementById('tf-data').textContent);
const FLOW = DATA.flow;
const TYPES = DATA.types;
const CAN_EDIT = DATA.canEdit;
const LANG = DATA.lang;
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';
const BASE = `/flows/${encodeURIComponent(FLOW.id)}`;
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const T = (key, vars = {}) => (DATA.text[key] ?? key).replace(/%\((\w+)\)s/g, (_, name) => vars[name] ?? '');
/** The label the canvas draws for a port: ours in the page's language, any other (a switch's case) as it is. */
const portLabel = (port) => DATA.text[`port.${port}`] ?? port;
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
    const response = await fetch(withLang(url), init);  // problems and errors in the page's language
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
editor.zoom_enter = () => {}; // wheel zoom is ours: at the cursor (Drawflow zooms around the centre)
editor.reroute = false;
editor.zoom_min = 0.2;
editor.zoom_max = 2;
editor.start();
// Drawflow's pinch zoom changes editor.zoom and calls zoom_refresh: keep the canvas centre where it is
editor.zoom_refresh = () => {
  const box = canvasBox();
  const factor = editor.zoom / (editor.zoom_last_value || 1);
  setView(zoomAt({...currentView(), zoom: editor.zoom_last_value || 1}, factor, box.width / 2, box.height / 2));
};
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
      output.title = portLabel(output.dataset.port);
    });
  }
  rendering = false;
  decorate();
}

function decorate() {
  for (const node of doc.nodes) elementOf(node.id)?.classList.toggle('tf-selected', selected.has(node.id));
  showProblems();
  showStats();
  drawMinimap();
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
  // The server's answer decides: only a config it returned is applied; anything else is said at the form,
  // and the editor does not claim the draft is saved until the form's change has been accepted.
  const status = $('.tf-form-status', form);
  let response = null;
  let body = {};
  // the last answer is not this submit's: until the server answers, the form says it is waiting
  if (status) status.textContent = T('applying');
  const mine = (Number(form.dataset.submits) || 0) + 1;
  form.dataset.submits = String(mine);
  try {
    response = await fetch(withLang(form.action), {method: 'POST', body: new FormData(form), headers: {'X-CSRF-Token': CSRF}});
    try { body = await response.json(); } catch { body = {}; }
  } catch (error) {
    body = {errors: {_form: String(error)}};
  }
  // answers may arrive out of order: only the newest submit's answer speaks for the form (a newer one is on its way)
  if (form.dataset.submits !== String(mine)) return true;
  if (!response || !response.ok || !body.config) {
    const errors = body.errors && Object.keys(body.errors).length ? body.errors
      : {_form: body.detail?.message || (typeof body.detail === 'string' ? body.detail : '') || `HTTP ${response ? response.status : 0}`};
    showFieldErrors(form, errors);
    form.dataset.failed = Object.values(errors)[0];
    if (status) status.textContent = T('not_applied') + form.dataset.failed;
    setStatus(T('not_applied') + form.dataset.failed, 'error');
    return false;
  }
  showFieldErrors(form, body.errors || {});
  delete form.dataset.failed;
  delete form.dataset.edited;
  if (form.dataset.kind === 'node') applyNode(form.dataset.node, body);
  else applySettings(body.config);
  form.querySelector('[name="_prev"]').value = JSON.stringify(body.config);
  if (status) status.textContent = body.ok ? T('applied') : T('invalid_fields');
  return true;
}

/** Apply the open property form first when it holds edits not yet answered by the server (a typed-in value
 * whose change event has not fired, a submit still waiting): false when the server refused them. */
async function flushForm() {
  clearTimeout(submitTimer);
  const waiting = submitPending;
  submitPending = false;
  const form = $('#tf-panel-props form.tf-form[data-kind]');
  if (!form || !CAN_EDIT) return true;
  if (form.dataset.edited || form.dataset.failed || waiting) return submitForm(form);
  return true;
}

/** Problems the server found in the saved draft, shown at the fields of the open form too. */
function showSavedProblems() {
  const form = $('#tf-panel-props form.tf-form[data-kind="node"]');
  if (!form) return;
  const mine = {};
  for (const p of problems) {
    if (p.node === form.dataset.node && p.field) mine[p.field.replace(/^config\./, '')] = `${p.message} ${T('fix')}${p.fix}`;
  }
  if (Object.keys(mine).length) showFieldErrors(form, mine);
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
  bringIntoView(id);
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

// -- the view: zoom at the cursor, fit, minimap ----------------------------------------------------------
const canvasBox = () => $('#tf-canvas').getBoundingClientRect();
const currentView = () => ({zoom: editor.zoom, x: editor.canvas_x, y: editor.canvas_y});
/** A node's box as drawn (its element's size), for fitting, the minimap and the rubber band. */
const sizeOf = (node) => {
  const el = elementOf(node.id);
  return el ? [el.offsetWidth || NODE_W, el.offsetHeight || NODE_H] : [NODE_W, NODE_H];
};

function setView({zoom, x, y}) {
  Object.assign(editor, {zoom, zoom_last_value: zoom, canvas_x: x, canvas_y: y});
  editor.precanvas.style.transform = `translate(${x}px, ${y}px) scale(${zoom})`;
  $('#tf-zoom-label').textContent = `${Math.round(zoom * 100)}%`;
  drawMinimap();
}

/** Zoom by `factor` keeping the point under the cursor (client coordinates) where it is; no point: the centre. */
function zoomBy(factor, clientX, clientY) {
  const box = canvasBox();
  const sx = clientX === undefined ? box.width / 2 : clientX - box.left;
  const sy = clientY === undefined ? box.height / 2 : clientY - box.top;
  setView(zoomAt(currentView(), factor, sx, sy));
}

/** Show the flow: all of it when it fits readably, else readable from its start (`minZoom` 0: always all). */
function fit(minZoom = READABLE) {
  const box = canvasBox();
  setView(fitView(bounds(doc.nodes, sizeOf), box.width, box.height, minZoom));
}

let minimapDrag = false;
function drawMinimap() {
  const map = $('#tf-minimap');
  if (!map || !doc) return;
  const box = canvasBox();
  const port = viewport(currentView(), box.width, box.height);
  const all = bounds(doc.nodes, sizeOf) || {x: port.x, y: port.y, w: 1, h: 1};
  const [x0, y0] = [Math.min(all.x, port.x), Math.min(all.y, port.y)];
  const [x1, y1] = [Math.max(all.x + all.w, port.x + port.w), Math.max(all.y + all.h, port.y + port.h)];
  const [w, h] = [map.clientWidth || 180, map.clientHeight || 120];
  const scale = Math.min(w / (x1 - x0 || 1), h / (y1 - y0 || 1));
  map.dataset.scale = String(scale);
  map.dataset.x0 = String(x0);
  map.dataset.y0 = String(y0);
  const r = (x, y, rw, rh) => `x="${((x - x0) * scale).toFixed(1)}" y="${((y - y0) * scale).toFixed(1)}" width="${Math.max(rw * scale, 2).toFixed(1)}" height="${Math.max(rh * scale, 2).toFixed(1)}"`;
  map.querySelector('svg').innerHTML = doc.nodes.map((node) => {
    const [nw, nh] = sizeOf(node);
    return `<rect class="tf-mini-node tf-cat-${escapeHtml(typeOf(node)?.category ?? 'unknown')}${selected.has(node.id) ? ' tf-mini-selected' : ''}" data-node="${escapeHtml(node.id)}" ${r(node.ui?.x ?? 0, node.ui?.y ?? 0, nw, nh)}></rect>`;
  }).join('') + `<rect class="tf-mini-view" ${r(port.x, port.y, port.w, port.h)}></rect>`;
}

/** Centre the view on the canvas point under a minimap click. */
function minimapGo(event) {
  const map = $('#tf-minimap');
  const at = map.getBoundingClientRect();
  const scale = Number(map.dataset.scale) || 1;
  const px = Number(map.dataset.x0) + (event.clientX - at.left) / scale;
  const py = Number(map.dataset.y0) + (event.clientY - at.top) / scale;
  const box = canvasBox();
  setView(centreOn(currentView(), px, py, box.width, box.height));
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
editor.on('nodeMoved', () => { sync(); commit(); drawMinimap(); });
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
editor.on('translate', () => drawMinimap());

// Multi-select: shift-click adds or removes a node; dragging a selected node moves them all.
let drag = null;
$('#tf-canvas').addEventListener('mousedown', (event) => {
  closeMenu();
  if (event.button !== 0 || event.target.closest('.input, .output')) return;
  const el = event.target.closest('.drawflow-node');
  if (!el) {
    if (event.shiftKey && !event.target.closest('.main-path')) { startBand(event); return; }
    if (!event.target.closest('.main-path')) select([]);
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

// Rubber band: shift-drag on the empty canvas selects the nodes it touches (added to the selection).
let band = null;
function startBand(event) {
  event.preventDefault();
  event.stopPropagation(); // not a pan
  const box = canvasBox();
  const el = document.createElement('div');
  el.className = 'tf-band';
  $('#tf-canvas-wrap').append(el);
  band = {x: event.clientX, y: event.clientY, el, box, before: new Set(selected)};
}
document.addEventListener('mousemove', (event) => {
  if (!band) return;
  const [x, y] = [Math.min(band.x, event.clientX), Math.min(band.y, event.clientY)];
  const [w, h] = [Math.abs(event.clientX - band.x), Math.abs(event.clientY - band.y)];
  Object.assign(band.el.style, {left: `${x - band.box.left}px`, top: `${y - band.box.top}px`, width: `${w}px`, height: `${h}px`});
  const [px, py] = canvasPoint(x, y);
  const hit = nodesIn(doc.nodes, {x: px, y: py, w: w / editor.zoom, h: h / editor.zoom}, sizeOf);
  selected = new Set([...band.before, ...hit]);
  decorate();
});
document.addEventListener('mouseup', () => {
  if (!band) return;
  band.el.remove();
  band = null;
  select([...selected]);
});

// Wheel: pans; with Ctrl (or a pinch) zooms at the cursor.
$('#tf-canvas').addEventListener('wheel', (event) => {
  event.preventDefault();
  if (event.ctrlKey || event.metaKey) {
    zoomBy(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)), event.clientX, event.clientY);
  } else {
    const v = currentView();
    setView({...v, x: v.x - event.deltaX, y: v.y - event.deltaY});
  }
}, {passive: false});

// -- clipboard: copy, cut, paste, duplicate --------------------------------------------------------------
const CLIPBOARD_KEY = 'tideflow.clipboard';
let clipboard = null;
let pasteCount = 0;
let pointer = null; // the last mouse position over the canvas: where Ctrl+V pastes

function readClipboard() {
  try { return JSON.parse(localStorage.getItem(CLIPBOARD_KEY) || 'null') || clipboard; } catch { return clipboard; }
}

function copySelection() {
  if (!selected.size) return false;
  clipboard = copyOf(doc, [...selected], portsOf);
  try { localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clipboard)); } catch { /* private mode: this tab only */ }
  pasteCount = 0;
  setStatus(T('copied', {n: clipboard.nodes.length}));
  return true;
}

const allowedHere = (type) => Boolean(TYPES[type]) && (!TYPES[type].kinds?.length || TYPES[type].kinds.includes(FLOW.kind));

function pasteClip(clip, atPointer) {
  if (!CAN_EDIT || !clip?.nodes?.length) return;
  let [dx, dy] = [40 * (pasteCount + 1), 40 * (pasteCount + 1)];
  const box = bounds(clip.nodes);
  if (atPointer && pointer && box) {
    const [px, py] = canvasPoint(pointer.x, pointer.y);
    [dx, dy] = [px - box.x, py - box.y];
  }
  const result = pasteInto(doc, clip, dx, dy, allowedHere);
  if (!result.ids.length) { setStatus(T('paste_none'), 'error'); return; }
  pasteCount += 1;
  doc = result.doc;
  for (const [id, list] of Object.entries(result.ports)) ports.set(id, list);
  for (const id of result.ids) if (!ports.has(id)) ports.set(id, TYPES[nodeById(id).type].ports);
  render();
  commit();
  select(result.ids);
  setStatus(result.skipped.length ? T('pasted_skipped', {n: result.ids.length, types: result.skipped.join(', ')})
    : T('pasted', {n: result.ids.length}), result.skipped.length ? 'error' : 'ok');
}

function duplicateSelection() {
  if (!CAN_EDIT || !selected.size) return;
  const before = pasteCount;
  pasteCount = 0;
  pasteClip(copyOf(doc, [...selected], portsOf), false);
  pasteCount = before;
}

function selectAll() { select(doc.nodes.map((n) => n.id)); }

// -- context menu (right click): the same actions as the shortcuts ----------------------------------------
function closeMenu() { $('#tf-menu')?.remove(); }
$('#tf-canvas').addEventListener('contextmenu', (event) => {
  event.preventDefault();
  event.stopPropagation(); // not Drawflow's own delete button
  closeMenu();
  const el = event.target.closest('.drawflow-node');
  if (el && !selected.has(el.dataset.tf)) select([el.dataset.tf]);
  pointer = {x: event.clientX, y: event.clientY};
  const items = [
    ['copy', 'Ctrl+C', selected.size > 0], ['cut', 'Ctrl+X', CAN_EDIT && selected.size > 0],
    ['duplicate', 'Ctrl+D', CAN_EDIT && selected.size > 0], ['paste', 'Ctrl+V', CAN_EDIT && Boolean(readClipboard()?.nodes?.length)],
    ['delete', 'Del', CAN_EDIT && selected.size > 0], ['select_all', 'Ctrl+A', doc.nodes.length > 0],
  ];
  const menu = document.createElement('div');
  menu.id = 'tf-menu';
  menu.className = 'tf-menu';
  menu.setAttribute('role', 'menu');
  menu.innerHTML = items.map(([act, keys, on]) => `<button type="button" role="menuitem" data-act="${act}"${on ? '' : ' disabled'}>
    <span>${escapeHtml(T(`menu.${act}`))}</span><kbd>${keys}</kbd></button>`).join('');
  const wrap = $('#tf-canvas-wrap').getBoundingClientRect();
  Object.assign(menu.style, {left: `${event.clientX - wrap.left}px`, top: `${event.clientY - wrap.top}px`});
  $('#tf-canvas-wrap').append(menu);
  menu.querySelector('button:not([disabled])')?.focus();
  menu.addEventListener('click', (click) => {
    const act = click.target.closest('[data-act]')?.dataset.act;
    closeMenu();
    ({copy: copySelection, cut: () => { if (copySelection()) deleteSelection(); }, duplicate: duplicateSelection,
      paste: () => pasteClip(readClipboard(), true), delete: deleteSelection, select_all: selectAll})[act]?.();
  });
  menu.addEventListener('keydown', (key) => {
    const buttons = [...menu.querySelectorAll('button:not([disabled])')];
    const at = buttons.indexOf(document.activeElement);
    if (key.key === 'Escape') { closeMenu(); return; }
    const step = {ArrowDown: 1, ArrowUp: -1}[key.key];
    if (step) { key.preventDefault(); buttons[(at + step + buttons.length) % buttons.length]?.focus(); }
  });
}, true);
$('#tf-canvas').addEventListener('mousemove', (event) => { pointer = {x: event.clientX, y: event.clientY}; });

// -- the help overlay ------------------------------------------------------------------------------------
function openHelp() {
  const dialog = $('#tf-help');
  if (!dialog.open) dialog.showModal();
}

// Keyboard: Delete, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y), Ctrl+C/X/V/D/A, Ctrl+S, + − 0 1, ?, arrows move the
// selection, Enter opens a node. The help overlay (?) lists them.
document.addEventListener('keydown', (event) => {
  if (event.target.closest('input, textarea, select, [contenteditable], dialog, .tf-menu')) return;
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (mod && key === 'z') { event.preventDefault(); if (CAN_EDIT) travel(event.shiftKey ? 1 : -1); return; }
  if (mod && key === 'y') { event.preventDefault(); if (CAN_EDIT) travel(1); return; }
  if (mod && key === 'c') { if (copySelection()) event.preventDefault(); return; }
  if (mod && key === 'x') { if (CAN_EDIT && copySelection()) { event.preventDefault(); deleteSelection(); } return; }
  if (mod && key === 'v') { event.preventDefault(); pasteClip(readClipboard(), pointerOverCanvas()); return; }
  if (mod && key === 'd') { event.preventDefault(); duplicateSelection(); return; }
  if (mod && key === 'a') { event.preventDefault(); selectAll(); return; }
  if (mod && key === 's') { event.preventDefault(); if (CAN_EDIT) save(); return; }
  if (!mod && (event.key === '?' || (event.key === '/' && event.shiftKey))) { event.preventDefault(); openHelp(); return; }
  if (!mod && (event.key === '+' || event.key === '=')) { zoomBy(1.2); return; }
  if (!mod && event.key === '-') { zoomBy(1 / 1.2); return; }
  if (!mod && event.key === '0') { fit(0); return; }
  if (!mod && event.key === '1') { zoomBy(1 / editor.zoom); return; }
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
    const [dx, dy] = arrows[event.key];
    const step = event.shiftKey ? 5 : 1;
    moveSelection(dx * step, dy * step);
  }
});

function pointerOverCanvas() {
  if (!pointer) return false;
  const box = canvasBox();
  return pointer.x >= box.left && pointer.x <= box.right && pointer.y >= box.top && pointer.y <= box.bottom;
}
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
  if (!(await flushForm())) {
    const failed = $('#tf-panel-props form.tf-form[data-kind]')?.dataset.failed || '';
    setStatus(`${T('save_blocked')} ${failed}`, 'error');
    $('#tf-panel-props [aria-invalid="true"]')?.focus();
    return false;
  }
  const r = await api('PUT', `/api/flows/${encodeURIComponent(FLOW.id)}`, doc);
  if (!r.ok) { setStatus(T('save_failed') + messageOf(r), 'error'); return false; }
  problems = r.body.problems;
  showProblems();
  showSavedProblems();
  dirty = false;
  setStatus(problems.length ? T('saved_problems', {n: problems.length}) : T('saved'), problems.length ? 'tf-dirty' : 'ok');
  return true;
}

async function publish() {
  if (problems.length) { setStatus(T('publish_blocked'), 'error'); return; }
  if (!(await save())) return;
  const r = await api('POST', `/api/flows/${encodeURIComponent(FLOW.id)}/publish`);
  if (r.ok) {
    FLOW.version = r.body.version;
    $('#tf-flow-state').textContent = `${T('active')} · v${r.body.version}`;
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
on('#tf-zoom-in', () => zoomBy(1.2));
on('#tf-zoom-out', () => zoomBy(1 / 1.2));
on('#tf-zoom-reset', () => zoomBy(1 / editor.zoom));
on('#tf-fit', () => fit(0));
on('#tf-help-open', openHelp);
on('#tf-help-close', () => $('#tf-help').close());
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

/** Pan to a node (keeping the zoom) when it is not wholly in view: a node added off screen is shown. */
function bringIntoView(id) {
  const el = elementOf(id);
  if (!el) return;
  const box = canvasBox();
  const at = el.getBoundingClientRect();
  if (at.left < box.left || at.right > box.right || at.top < box.top || at.bottom > box.bottom) centerOn(nodeById(id));
}

/** Pan (keeping the zoom) so that `node` is in the middle of the canvas. */
function centerOn(node) {
  const box = canvasBox();
  const [w, h] = sizeOf(node);
  setView(centreOn(currentView(), (node.ui?.x ?? 0) + w / 2, (node.ui?.y ?? 0) + h / 2, box.width, box.height));
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
let submitPending = false;
function scheduleSubmit(form) {
  clearTimeout(submitTimer);
  submitPending = true;
  submitTimer = setTimeout(() => { submitPending = false; submitForm(form); }, 250);
}
document.addEventListener('input', (event) => {
  const form = event.target.closest('form.tf-form[data-kind]');
  if (form && CAN_EDIT) { form.dataset.edited = '1'; setDirty(true); }
});
document.addEventListener('submit', (event) => {
  const form = event.target.closest('form.tf-form[data-kind]');
  if (!form) return;
  event.preventDefault();
  clearTimeout(submitTimer);
  submitPending = false;
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
      const label = portLabel(output.dataset.port);
      output.dataset.label = stats ? `${label} ${left ?? 0}` : label;
    }
  }
}

window.addEventListener('beforeunload', (event) => {
  if (dirty && CAN_EDIT) { event.preventDefault(); event.returnValue = ''; }
});

// the minimap: click or drag to move the view
$('#tf-minimap')?.addEventListener('mousedown', (event) => { event.preventDefault(); minimapDrag = true; minimapGo(event); });
document.addEventListener('mousemove', (event) => { if (minimapDrag) minimapGo(event); });
document.addEventListener('mouseup', () => { minimapDrag = false; });
window.addEventListener('resize', () => drawMinimap());

// -- start --------------------------------------------------------------------------------------------
$('#tf-panel-props').dataset.empty = $('#tf-panel-props').textContent.trim();
$('#tf-problems-box').dataset.ok = T('no_problems');
render();
fit();
setDirty(false);
setStatus('');
window.tideflowEditor = {get document() { return doc; }, get problems() { return problems; },
  get view() { return currentView(); }, get selected() { return [...selected]; }, save, publish, render};
