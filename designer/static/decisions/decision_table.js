// The decision-table editor of the logic.decision_table property form. The form's "table" textarea
// holds the table as JSON and is what the server parses; this grid edits that JSON (inputs, outputs,
// rules, hit policy), imports a DMN file (POST /api/decisions), exports one (POST
// /api/decisions/export) and tests the table on an input (POST /api/decisions/evaluate).
// Without JavaScript the textarea still works. No framework.
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';
const POLICIES = ['UNIQUE', 'ANY', 'PRIORITY', 'FIRST', 'RULE ORDER', 'OUTPUT ORDER', 'COLLECT'];
const AGGREGATIONS = ['', 'SUM', 'MIN', 'MAX', 'COUNT'];
const TYPES = ['', 'string', 'number', 'integer', 'boolean', 'date'];
const NUMERIC = new Set(['number', 'integer']);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function uniqueId(prefix, taken) {
  let n = taken.length + 1;
  while (taken.includes(`${prefix}_${n}`)) n += 1;
  return `${prefix}_${n}`;
}

// allowed values: shown as a FEEL list ("gold", "silver" / 1, 2), read back typed by the column
function valuesText(values, type) {
  if (!Array.isArray(values)) return '';
  return values.map((v) => (typeof v === 'string' && !NUMERIC.has(type) && type !== 'date' ? JSON.stringify(v) : String(v))).join(', ');
}
function parseValues(text, type) {
  const found = [];
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|([^,，]+)/g)) {
    if (m[1] !== undefined) { found.push(JSON.parse(`"${m[1]}"`)); continue; }
    const bare = m[2].trim();
    if (!bare) continue;
    if (NUMERIC.has(type) && /^-?\d+(\.\d+)?$/.test(bare)) found.push(bare.includes('.') ? bare : Number(bare));
    else if (type === 'boolean' && (bare === 'true' || bare === 'false')) found.push(bare === 'true');
    else found.push(bare);
  }
  return found.length ? found : null;
}

class TableEditor {
  constructor(box) {
    this.box = box;
    this.form = box.closest('form');
    this.source = document.getElementById(box.dataset.source);
    this.text = JSON.parse(box.dataset.text || '{}');
    this.status = box.parentElement.querySelector('[data-dmn-status]');
    this.readonly = Boolean(box.closest('fieldset[disabled]'));
    try { this.table = JSON.parse(this.source.value || '{}'); } catch { this.table = {}; }
    this.normalise();
    this.field = box.closest('.tf-field') || box.parentElement;
    box.addEventListener('input', (event) => this.edited(event));
    box.addEventListener('click', (event) => this.clicked(event));
    box.addEventListener('keydown', (event) => this.keyed(event));
    this.field.querySelector('[data-dmn-open]')?.addEventListener('click', () => this.full(true));
    this.field.querySelector('[data-dmn-close]')?.addEventListener('click', () => this.full(false));
    this.field.tableEditor = this;
    // drag a rule by its number to reorder
    box.addEventListener('dragstart', (event) => {
      const from = event.target.closest('[data-drag]');
      if (!from) return;
      event.dataTransfer.setData('text/x-tideflow-rule', from.dataset.drag);
      event.dataTransfer.effectAllowed = 'move';
    });
    box.addEventListener('dragover', (event) => { if (event.target.closest('tbody tr')) event.preventDefault(); });
    box.addEventListener('drop', (event) => {
      const row = event.target.closest('tbody tr');
      const from = event.dataTransfer.getData('text/x-tideflow-rule');
      if (!row || from === '') return;
      event.preventDefault();
      if (this.moveRule(Number(from), Number(row.dataset.rule))) { this.write(true); this.render(); }
    });
    this.source.addEventListener('change', () => this.reload());
    const tools = box.parentElement;
    tools.querySelector('[data-dmn-import]')?.addEventListener('change', (event) => this.importFile(event.target));
    tools.querySelector('[data-dmn-export]')?.addEventListener('click', () => this.exportFile());
    tools.querySelector('[data-dmn-test]')?.addEventListener('click', () => this.test());
    this.render();
  }

  t(key) { return this.text[key] ?? key; }

  normalise() {
    const t = this.table;
    t.name ??= '';
    t.hit_policy ??= 'UNIQUE';
    t.inputs ??= [];
    t.outputs ??= [];
    t.rules ??= [];
    if (!t.outputs.length) t.outputs.push({id: 'Output_1', name: 'result', type_ref: 'string'});
  }

  reload() { // the JSON textarea was edited by hand
    try { this.table = JSON.parse(this.source.value || '{}'); } catch { return; }
    this.normalise();
    this.render();
  }

  write(commit) {
    this.source.value = JSON.stringify(this.table, null, 1);
    // the form applies on "change": the grid's own inputs have no name, so the textarea carries it
    if (commit) this.form?.dispatchEvent(new Event('change', {bubbles: true}));
  }

  render() {
    const t = this.table;
    const ro = this.readonly ? ' disabled' : '';
    const option = (value, current, label = value) => `<option value="${esc(value)}"${value === (current ?? '') ? ' selected' : ''}>${esc(label || '—')}</option>`;
    const cols = t.inputs.length + t.outputs.length;
    const head = [
      ...t.inputs.map((c, i) => `<th scope="col" class="tf-dmn-in">
        <input data-k="inputs.${i}.label" value="${esc(c.label)}" placeholder="${esc(this.t('dmn.label'))}" aria-label="${esc(this.t('dmn.label'))}"${ro}>
        <input data-k="inputs.${i}.expression" class="tf-code" value="${esc(c.expression)}" placeholder="event.payload.amount" aria-label="${esc(this.t('dmn.expression'))}"${ro}>
        <select data-k="inputs.${i}.type_ref" aria-label="${esc(this.t('dmn.type'))}"${ro}>${TYPES.map((v) => option(v, c.type_ref)).join('')}</select>
        <input data-k="inputs.${i}.allowed_values" value="${esc(valuesText(c.allowed_values, c.type_ref))}" placeholder="${esc(this.t('dmn.values'))}" aria-label="${esc(this.t('dmn.values'))}"${ro}>
        ${this.readonly ? '' : `<button type="button" class="tf-row-remove" data-act="del-input" data-i="${i}" title="${esc(this.t('dmn.remove_input'))}" aria-label="${esc(this.t('dmn.remove_input'))}">×</button>`}</th>`),
      ...t.outputs.map((c, i) => `<th scope="col" class="tf-dmn-out">
        <input data-k="outputs.${i}.name" class="tf-code" value="${esc(c.name)}" placeholder="queue" aria-label="${esc(this.t('dmn.output_name'))}"${ro}>
        <select data-k="outputs.${i}.type_ref" aria-label="${esc(this.t('dmn.type'))}"${ro}>${TYPES.map((v) => option(v, c.type_ref)).join('')}</select>
        <input data-k="outputs.${i}.allowed_values" value="${esc(valuesText(c.allowed_values, c.type_ref))}" placeholder="${esc(this.t('dmn.priority_values'))}" aria-label="${esc(this.t('dmn.priority_values'))}"${ro}>
        ${this.readonly || t.outputs.length < 2 ? '' : `<button type="button" class="tf-row-remove" data-act="del-output" data-i="${i}" title="${esc(this.t('dmn.remove_output'))}" aria-label="${esc(this.t('dmn.remove_output'))}">×</button>`}</th>`),
    ];
    const cell = (ri, ci, key, value, cls) => `<td class="${cls}"><input data-k="${key}" data-row="${ri}" data-col="${ci}" class="tf-code tf-dmn-cell" value="${esc(value)}" aria-label="${esc(this.t('dmn.rule_n').replace('%(n)s', ri + 1))} · ${esc(this.columnName(ci))}"${ro}></td>`;
    const rows = t.rules.map((r, ri) => `<tr data-rule="${ri}">
      <th scope="row" class="tf-dmn-num"${this.readonly ? '' : ` draggable="true" data-drag="${ri}" title="${esc(this.t('dmn.drag'))}"`}><span class="tf-dmn-n">${ri + 1}</span>
        <input data-k="rules.${ri}.id" class="tf-code tf-dmn-id" value="${esc(r.id)}" aria-label="${esc(this.t('dmn.rule_id'))}"${ro}></th>
      ${t.inputs.map((_, ci) => cell(ri, ci, `rules.${ri}.input_entries.${ci}`, r.input_entries?.[ci] ?? '-', 'tf-dmn-in')).join('')}
      ${t.outputs.map((_, ci) => cell(ri, t.inputs.length + ci, `rules.${ri}.output_entries.${ci}`, r.output_entries?.[ci] ?? 'null', 'tf-dmn-out')).join('')}
      ${cell(ri, cols, `rules.${ri}.description`, r.description ?? '', 'tf-dmn-ann')}
      <td class="tf-dmn-actions">${this.readonly ? '' : `<button type="button" class="tf-dmn-act" data-act="up" data-i="${ri}" title="${esc(this.t('dmn.move_up'))}" aria-label="${esc(this.t('dmn.move_up'))}">↑</button><button type="button" class="tf-dmn-act" data-act="down" data-i="${ri}" title="${esc(this.t('dmn.move_down'))}" aria-label="${esc(this.t('dmn.move_down'))}">↓</button><button type="button" class="tf-dmn-act" data-act="insert" data-i="${ri}" title="${esc(this.t('dmn.insert_below'))}" aria-label="${esc(this.t('dmn.insert_below'))}">+</button><button type="button" class="tf-dmn-act tf-danger" data-act="del-rule" data-i="${ri}" title="${esc(this.t('dmn.remove_rule'))}" aria-label="${esc(this.t('dmn.remove_rule'))}">×</button>`}</td>
    </tr>`).join('');
    this.box.innerHTML = `
      <div class="tf-dmn-head">
        <label>${esc(this.t('dmn.name'))} <input data-k="name" value="${esc(t.name)}"${ro}></label>
      </div>
      <div class="tf-dmn-scroll"><table class="tf-dmn-grid">
        <thead><tr class="tf-dmn-kinds">
          <th rowspan="2" class="tf-dmn-policy" scope="col"><label>${esc(this.t('dmn.hit_policy'))}
            <select data-k="hit_policy"${ro}>${POLICIES.map((v) => option(v, t.hit_policy)).join('')}</select></label>
            <label class="tf-dmn-agg">${esc(this.t('dmn.aggregation'))} <select data-k="aggregation"${ro || (t.hit_policy !== 'COLLECT' ? ' disabled' : '')}>${AGGREGATIONS.map((v) => option(v, t.aggregation)).join('')}</select></label></th>
          ${t.inputs.length ? `<th colspan="${t.inputs.length}" class="tf-dmn-in" scope="colgroup">${esc(this.t('dmn.when'))}${this.readonly ? '' : ` <button type="button" class="tf-dmn-act" data-act="add-input" title="${esc(this.t('dmn.add_input'))}" aria-label="${esc(this.t('dmn.add_input'))}">+</button>`}</th>` : ''}
          <th colspan="${t.outputs.length}" class="tf-dmn-out" scope="colgroup">${esc(this.t('dmn.then'))}${this.readonly ? '' : ` <button type="button" class="tf-dmn-act" data-act="add-output" title="${esc(this.t('dmn.add_output'))}" aria-label="${esc(this.t('dmn.add_output'))}">+</button>`}</th>
          <th rowspan="2" class="tf-dmn-ann" scope="col">${esc(this.t('dmn.annotations'))}</th><th rowspan="2" aria-label="${esc(this.t('dmn.actions'))}"></th></tr>
        <tr>${head.join('')}</tr></thead>
        <tbody>${rows}</tbody>
        ${this.readonly ? '' : `<tfoot><tr><td colspan="${cols + 3}"><button type="button" class="btn secondary small" data-act="add-rule">+ ${esc(this.t('dmn.add_rule'))}</button>
          ${t.inputs.length ? '' : `<button type="button" class="btn secondary small" data-act="add-input">+ ${esc(this.t('dmn.add_input'))}</button>`}</td></tr></tfoot>`}
      </table></div>
      <p class="tf-help">${esc(this.t('dmn.cells_hint'))} ${esc(this.t('dmn.keys_hint'))}</p>`;
    this.summarise();
  }

  columnName(ci) {
    const t = this.table;
    if (ci < t.inputs.length) return t.inputs[ci].label || t.inputs[ci].expression;
    if (ci < t.inputs.length + t.outputs.length) return t.outputs[ci - t.inputs.length].name;
    return this.t('dmn.annotations');
  }

  /** The side panel's one line about the table (the grid itself opens full width). */
  summarise() {
    const line = this.field?.querySelector('[data-dmn-summary]');
    if (!line) return;
    const t = this.table;
    const sep = (document.documentElement.lang || 'zh-CN').startsWith('zh') ? '、' : ', ';  // as the page lists
    line.textContent = this.t('dmn.summary').replace('%(rules)s', t.rules.length).replace('%(policy)s', t.hit_policy)
      .replace('%(inputs)s', t.inputs.map((c) => c.label || c.expression).join(sep) || '—')
      .replace('%(outputs)s', t.outputs.map((c) => c.name).join(sep));
  }

  /** Open the grid full width (Camunda-style), or back into the side panel. */
  full(on) {
    this.field.classList.toggle('tf-dmn-full', on);
    this.field.querySelector('[data-dmn-open]')?.setAttribute('aria-expanded', String(on));
    if (on) {
      (this.box.querySelector('.tf-dmn-cell') || this.box.querySelector('input, select'))?.focus();
    } else {
      this.write(true);
      this.field.querySelector('[data-dmn-open]')?.focus();
    }
  }

  focusCell(row, col) {
    const cell = this.box.querySelector(`.tf-dmn-cell[data-row="${row}"][data-col="${col}"]`);
    if (cell) { cell.focus(); cell.select?.(); }
    return Boolean(cell);
  }

  moveRule(from, to) {
    const rules = this.table.rules;
    if (to < 0 || to >= rules.length || from === to) return false;
    rules.splice(to, 0, ...rules.splice(from, 1));
    return true;
  }

  /** Spreadsheet keys in the cells: arrows and Enter move between cells, Alt+↑/↓ move the rule, Enter on
   * the last rule adds one. */
  keyed(event) {
    const cell = event.target.closest('.tf-dmn-cell');
    if (!cell) return;
    const row = Number(cell.dataset.row);
    const col = Number(cell.dataset.col);
    const last = this.table.rules.length - 1;
    if (event.altKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown') && !this.readonly) {
      event.preventDefault();
      const to = row + (event.key === 'ArrowUp' ? -1 : 1);
      if (this.moveRule(row, to)) { this.write(true); this.render(); this.focusCell(to, col); }
      return;
    }
    if (event.key === 'ArrowUp' || event.key === 'ArrowDown' || event.key === 'Enter') {
      event.preventDefault();
      const to = row + (event.key === 'ArrowUp' ? -1 : 1);
      if (event.key === 'Enter' && row === last && !this.readonly) {
        this.addRule(row + 1);
        this.write(true);
        this.render();
      }
      this.focusCell(to, col);
      return;
    }
    const at = cell.selectionStart;
    if (event.key === 'ArrowLeft' && at === 0 && cell.selectionEnd === 0) { event.preventDefault(); this.focusCell(row, col - 1); }
    if (event.key === 'ArrowRight' && at === cell.value.length) { event.preventDefault(); this.focusCell(row, col + 1); }
  }

  addRule(at) {
    const t = this.table;
    t.rules.splice(at, 0, {id: uniqueId('Rule', t.rules.map((r) => r.id)), input_entries: t.inputs.map(() => '-'),
      output_entries: t.outputs.map(() => 'null'), description: ''});
  }

  edited(event) {
    const key = event.target.dataset.k;
    if (!key) return;
    const parts = key.split('.');
    const last = parts.pop();
    let target = this.table;
    for (const part of parts) target = target[/^\d+$/.test(part) ? Number(part) : part];
    let value = event.target.value;
    if (last === 'allowed_values') value = parseValues(value, target.type_ref ?? '');
    else if (last === 'aggregation') value = value || null;
    target[/^\d+$/.test(last) ? Number(last) : last] = value;
    if (key === 'hit_policy') {
      if (value !== 'COLLECT') this.table.aggregation = null;
      this.write(true);
      this.render();
      this.box.querySelector('select[data-k="hit_policy"]')?.focus();
      return;
    }
    this.write(event.target.tagName === 'SELECT');
  }

  clicked(event) {
    const button = event.target.closest('[data-act]');
    if (!button) return;
    const t = this.table;
    const i = Number(button.dataset.i);
    switch (button.dataset.act) {
      case 'add-rule':
        this.addRule(t.rules.length);
        break;
      case 'insert':
        this.addRule(i + 1);
        break;
      case 'down':
        this.moveRule(i, i + 1);
        break;
      case 'add-input':
        t.inputs.push({id: uniqueId('Input', t.inputs.map((c) => c.id)), label: '', expression: 'event.payload.', type_ref: 'string'});
        t.rules.forEach((r) => r.input_entries.push('-'));
        break;
      case 'add-output':
        t.outputs.push({id: uniqueId('Output', t.outputs.map((c) => c.id)), name: `output_${t.outputs.length + 1}`, type_ref: 'string'});
        t.rules.forEach((r) => r.output_entries.push('null'));
        break;
      case 'del-input':
        t.inputs.splice(i, 1);
        t.rules.forEach((r) => r.input_entries.splice(i, 1));
        break;
      case 'del-output':
        t.outputs.splice(i, 1);
        t.rules.forEach((r) => r.output_entries.splice(i, 1));
        break;
      case 'del-rule':
        t.rules.splice(i, 1);
        break;
      case 'up':
        this.moveRule(i, i - 1);
        break;
      default:
        return;
    }
    this.write(true);
    this.render();
    const act = button.dataset.act;
    if (act === 'add-rule' || act === 'insert') this.focusCell(act === 'insert' ? i + 1 : t.rules.length - 1, 0);
  }

  say(html, kind = '') {
    if (!this.status) return;
    this.status.className = `tf-dmn-status ${kind}`;
    this.status.innerHTML = html;
  }

  async call(url, body, contentType = 'application/json') {
    const lang = encodeURIComponent(document.documentElement.lang || 'zh-CN');  // messages in the page's language
    const response = await fetch(`${url}${url.includes('?') ? '&' : '?'}lang=${lang}`, {method: 'POST', body, headers: {'Content-Type': contentType, 'X-CSRF-Token': CSRF, Accept: 'application/json'}});
    return response;
  }

  static async detail(response) {
    try { const body = await response.json(); return body.detail?.message || JSON.stringify(body.detail); } catch { return `HTTP ${response.status}`; }
  }

  async importFile(input) {
    const file = input.files?.[0];
    if (!file) return;
    const xml = await file.text();
    input.value = '';
    let response = await this.call('/api/decisions', xml, 'application/xml');
    if (response.status === 400) {
      let detail = null;
      try { detail = (await response.json()).detail; } catch { detail = null; }
      const message = detail?.message || `HTTP ${response.status}`;
      // several decision tables in the file: the API names the field decision_id (its words are translated)
      if (detail?.field !== 'decision_id') { this.say(esc(message), 'error'); return; }
      const chosen = window.prompt(`${message}\n\n${this.t('dmn.which')}`);
      if (!chosen) return;
      response = await this.call(`/api/decisions?decision_id=${encodeURIComponent(chosen.trim())}`, xml, 'application/xml');
    }
    if (!response.ok) { this.say(esc(await TableEditor.detail(response)), 'error'); return; }
    const body = await response.json();
    this.table = body.config.table;
    this.normalise();
    this.write(true);
    this.render();
    const findings = [...body.analysis.overlaps, ...body.analysis.gaps, ...body.analysis.other];
    const problems = body.problems.map((p) => `<li>${esc(p.message)} — ${esc(p.fix)}</li>`).join('');
    this.say(`${esc(this.t('dmn.imported'))} ${esc(file.name)}${findings.length || problems ? `<ul>${problems || findings.map((f) => `<li>${esc(f.message)}</li>`).join('')}</ul>` : ` ✓ ${esc(this.t('dmn.clean'))}`}`,
      problems ? 'error' : 'ok');
  }

  async exportFile() {
    const response = await this.call('/api/decisions/export', JSON.stringify({table: this.table}));
    if (!response.ok) { this.say(esc(await TableEditor.detail(response)), 'error'); return; }
    const url = URL.createObjectURL(await response.blob());
    const link = Object.assign(document.createElement('a'), {href: url, download: `${this.table.id || 'decision'}.dmn`});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async test() {
    const field = this.box.parentElement.querySelector('[data-dmn-input]');
    let input;
    try { input = JSON.parse(field.value || '{}'); } catch (error) { this.say(esc(`${this.t('dmn.bad_input')} ${error.message}`), 'error'); return; }
    const response = await this.call('/api/decisions/evaluate', JSON.stringify({table: this.table, input}));
    if (!response.ok) { this.say(esc(await TableEditor.detail(response)), 'error'); return; }
    const body = await response.json();
    this.say(`<strong>${esc(this.t('dmn.result'))}</strong> <code>${esc(JSON.stringify(body.result))}</code>
      <br>${esc(this.t('dmn.matched'))} ${body.matched_rules.map((r) => `<code>${esc(r)}</code>`).join(' ') || '—'}`, 'ok');
  }
}

// Escape closes the full-width table wherever the focus is (and the canvas keeps its selection)
document.addEventListener('keydown', (event) => {
  const open = event.key === 'Escape' && document.querySelector('.tf-dmn-full');
  if (!open) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  open.tableEditor?.full(false);
}, true);

function init(root = document) {
  root.querySelectorAll('[data-dmn]:not([data-dmn-ready])').forEach((box) => {
    box.dataset.dmnReady = '1';
    new TableEditor(box);
  });
}
init();
document.body.addEventListener('htmx:afterSwap', (event) => init(event.detail.target));
