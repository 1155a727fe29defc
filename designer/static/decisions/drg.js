// The decision-graph page (templates/decisions/graph.html): clicking a decision or BKM in the graph opens
// its panel below (a table in the grid editor of decision_table.js, FEEL otherwise); "Evaluate" sends the
// model, the tables as edited and the inputs (each as FEEL) to POST /api/decisions/graph/evaluate and
// shows every decision's result by name, in the results list and under the decision in the graph.
// No framework.
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';
const root = document.querySelector('[data-drg]');

function panelFor(key) {
  return [...root.querySelectorAll('[data-panel]')].find((panel) => panel.dataset.panel === key);
}

function open(box) {
  const panel = panelFor(box.dataset.key);
  if (!panel) return;
  root.querySelectorAll('.tf-drg-box.tf-drg-selected').forEach((b) => b.classList.remove('tf-drg-selected'));
  box.classList.add('tf-drg-selected');
  panel.open = true;
  panel.scrollIntoView({block: 'start', behavior: 'smooth'});
  panel.querySelector('summary')?.focus({preventScroll: true});
}

// a typed field as a FEEL expression: text is quoted, a date becomes date("…"), empty is null
function feelOf(field) {
  const value = field.value.trim();
  if (!value) return null;
  switch (field.dataset.widget) {
    case 'string': return JSON.stringify(field.value);
    case 'date': return `date("${value}")`;
    default: return value; // number, boolean, FEEL
  }
}

function say(text, kind = '') {
  const status = root.querySelector('[data-drg-status]');
  status.className = `tf-drg-status ${kind}`;
  status.textContent = text;
}

function showResults(body) {
  const table = root.querySelector('[data-drg-results]');
  const rows = table.querySelector('tbody');
  rows.replaceChildren();
  root.querySelectorAll('[data-result-for]').forEach((text) => { text.textContent = ''; });
  for (const decision of body.decisions) {
    const row = document.createElement('tr');
    row.dataset.decision = decision.name;
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = decision.name;
    const value = document.createElement('td');
    const code = document.createElement('code');
    code.textContent = decision.text;
    value.append(code);
    if (decision.error) {
      const error = document.createElement('div');
      error.className = 'error';
      error.textContent = decision.error;
      value.append(error);
    } else if (decision.table) {
      const rules = document.createElement('div');
      rules.className = 'muted';
      rules.textContent = `${decision.table.hit_policy}: ${decision.table.matched_rules.join(', ') || '—'}`;
      value.append(rules);
    }
    row.append(name, value);
    rows.append(row);
    const inGraph = [...root.querySelectorAll('[data-result-for]')].find((t) => t.dataset.resultFor === decision.key);
    if (inGraph) inGraph.textContent = `= ${decision.text.length > 24 ? `${decision.text.slice(0, 23)}…` : decision.text}`;
  }
  table.hidden = false;
}

async function evaluate(event) {
  event.preventDefault();
  const inputs = {};
  root.querySelectorAll('[data-input]').forEach((field) => { inputs[field.dataset.input] = feelOf(field); });
  const tables = {};
  for (const area of root.querySelectorAll('[data-table-key]')) {
    try { tables[area.dataset.tableKey] = JSON.parse(area.value); } catch (error) {
      say(`${area.dataset.tableKey}: ${error.message}`, 'error');
      return;
    }
  }
  const xml = root.querySelector('[data-drg-xml]').value;
  say('…');
  const lang = encodeURIComponent(document.documentElement.lang || 'zh-CN');  // messages in the page's language
  const response = await fetch(`/api/decisions/graph/evaluate?lang=${lang}`, {
    method: 'POST', body: JSON.stringify({xml, inputs, tables}),
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': CSRF, Accept: 'application/json'}});
  let body;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const detail = body?.detail;
    say(detail?.message ? `${detail.field ? `${detail.field}: ` : ''}${detail.message}${detail.fix ? ` — ${detail.fix}` : ''}`
      : `HTTP ${response.status}`, 'error');
    return;
  }
  say(body.notes.length ? body.notes.slice(0, 5).join(' · ') : root.dataset.done || '', body.notes.length ? 'warn' : 'ok');
  showResults(body);
}

if (root) {
  root.querySelectorAll('.tf-drg-box[role="button"]').forEach((box) => {
    box.addEventListener('click', () => open(box));
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(box); }
    });
  });
  root.querySelector('[data-drg-inputs]')?.addEventListener('submit', evaluate);
}
