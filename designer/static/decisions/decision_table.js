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
    box.addEventListener('input', (event) => this.edited(event));
    box.addEventListener('click', (event) => this.clicked(event));
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
    const head = [
      `<th scope="col">#</th>`,
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
      `<th scope="col">${esc(this.t('dmn.description'))}</th>`, '<th></th>',
    ];
    const rows = t.rules.map((r, ri) => `<tr>
      <th scope="row"><input data-k="rules.${ri}.id" class="tf-code tf-dmn-id" value="${esc(r.id)}" aria-label="${esc(this.t('dmn.rule_id'))}"${ro}></th>
      ${t.inputs.map((_, ci) => `<td class="tf-dmn-in"><input data-k="rules.${ri}.input_entries.${ci}" class="tf-code" value="${esc(r.input_entries?.[ci] ?? '-')}" aria-label="${esc(`${r.id} · ${t.inputs[ci].label || t.inputs[ci].expression}`)}"${ro}></td>`).join('')}
      ${t.outputs.map((_, ci) => `<td class="tf-dmn-out"><input data-k="rules.${ri}.output_entries.${ci}" class="tf-code" value="${esc(r.output_entries?.[ci] ?? 'null')}" aria-label="${esc(`${r.id} · ${t.outputs[ci].name}`)}"${ro}></td>`).join('')}
      <td><input data-k="rules.${ri}.description" value="${esc(r.description)}" aria-label="${esc(this.t('dmn.description'))}"${ro}></td>
      <td class="tf-dmn-actions">${this.readonly ? '' : `<button type="button" class="tf-row-remove" data-act="up" data-i="${ri}" title="${esc(this.t('dmn.move_up'))}" aria-label="${esc(this.t('dmn.move_up'))}">↑</button><button type="button" class="tf-row-remove" data-act="del-rule" data-i="${ri}" title="${esc(this.t('dmn.remove_rule'))}" aria-label="${esc(this.t('dmn.remove_rule'))}">×</button>`}</td>
    </tr>`).join('');
    this.box.innerHTML = `
      <div class="tf-dmn-head">
        <label>${esc(this.t('dmn.name'))} <input data-k="name" value="${esc(t.name)}"${ro}></label>
        <label>${esc(this.t('dmn.hit_policy'))} <select data-k="hit_policy"${ro}>${POLICIES.map((v) => option(v, t.hit_policy)).join('')}</select></label>
        <label>${esc(this.t('dmn.aggregation'))} <select data-k="aggregation"${ro || (t.hit_policy !== 'COLLECT' ? ' disabled' : '')}>${AGGREGATIONS.map((v) => option(v, t.aggregation)).join('')}</select></label>
      </div>
      <div class="tf-dmn-scroll"><table class="tf-dmn-grid">
        <thead><tr class="tf-dmn-kinds"><th></th>${t.inputs.length ? `<th colspan="${t.inputs.length}" class="tf-dmn-in">${esc(this.t('dmn.inputs'))}</th>` : ''}<th colspan="${t.outputs.length}" class="tf-dmn-out">${esc(this.t('dmn.outputs'))}</th><th colspan="2"></th></tr>
        <tr>${head.join('')}</tr></thead>
        <tbody>${rows}</tbody>
      </table></div>
      ${this.readonly ? '' : `<p class="tf-dmn-add">
        <button type="button" class="btn secondary small" data-act="add-rule">+ ${esc(this.t('dmn.add_rule'))}</button>
        <button type="button" class="btn secondary small" data-act="add-input">+ ${esc(this.t('dmn.add_input'))}</button>
        <button type="button" class="btn secondary small" data-act="add-output">+ ${esc(this.t('dmn.add_output'))}</button></p>`}
      <p class="tf-help">${esc(this.t('dmn.cells_hint'))}</p>`;
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
        t.rules.push({id: uniqueId('Rule', t.rules.map((r) => r.id)), input_entries: t.inputs.map(() => '-'),
          output_entries: t.outputs.map(() => 'null'), description: ''});
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
        if (i > 0) t.rules.splice(i - 1, 0, ...t.rules.splice(i, 1));
        break;
      default:
        return;
    }
    this.write(true);
    this.render();
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
      const message = await TableEditor.detail(response);
      if (!message.includes('several decision tables')) { this.say(esc(message), 'error'); return; }
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

function init(root = document) {
  root.querySelectorAll('[data-dmn]:not([data-dmn-ready])').forEach((box) => {
    box.dataset.dmnReady = '1';
    new TableEditor(box);
  });
}
init();
document.body.addEventListener('htmx:afterSwap', (event) => init(event.detail.target));
