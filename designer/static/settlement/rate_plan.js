// The rate-plan editor of the settlement.collect property form: a form over the rate plan's JSON, which the
// hidden "rate_plan" textarea holds and the server parses and validates (activities/settlement/plans.py).
// Tiers are a table (from ¥, rate %), the tier boundary rule a choice (at least / above), a guarantee and
// its threshold in yuan, split parties a table whose percentages must add up to 100, compositions and
// nested plans edited in place. Money is typed in yuan and stored in whole fen; percentages stay decimal
// strings (never floats). Without JavaScript the JSON is edited directly. No framework.
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const TYPES = ['flat', 'tiered', 'guaranteed', 'split', 'composition', 'kpi_coefficient'];
const DEFAULTS = {
  flat: () => ({type: 'flat', default_rate: '5'}),
  tiered: () => ({type: 'tiered', mode: 'graduated', tiers: [{from: 0, rate: '3'}]}),
  guaranteed: () => ({type: 'guaranteed', guarantee_fen: 5000000, threshold_fen: 0, tiers: [{from: 0, rate: '5'}]}),
  split: () => ({type: 'split', parties: [{party: 'anchor', percent: '50'}, {party: 'agency', percent: '30'}, {party: 'platform', percent: '20'}]}),
  composition: () => ({type: 'composition', components: [{type: 'flat', default_rate: '5'}]}),
  kpi_coefficient: () => ({type: 'kpi_coefficient', inner: {type: 'flat', default_rate: '5'},
    rules: [{kpi: 'completion_rate', thresholds: [{at: '0.9', coefficient: '1.1'}]}], min_coefficient: '0.5', max_coefficient: '1.5'}),
};

/** "¥1,234.50" / "1234.5" / "1234" → 123450 fen; null when it is not an amount. Exact: no floats. */
export function yuanToFen(text) {
  const clean = String(text ?? '').replace(/[¥,，\s]/g, '');
  const match = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(clean);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || '').padEnd(2, '0'));
}

/** 123450 fen → "1,234.50"; whole yuan without decimals ("500,000"). */
export function fenToYuan(fen) {
  if (!Number.isInteger(fen)) return '';
  const whole = Math.trunc(fen / 100).toLocaleString('en-US');
  const cents = fen % 100;
  return cents ? `${whole}.${String(cents).padStart(2, '0')}` : whole;
}

const PERCENT = /^\d{1,3}(\.\d{1,6})?$/;

/** What is wrong with a plan, as a person would say it (the server checks the same and more). */
export function problems(plan, t, where = '') {
  const out = [];
  const at = (text) => (where ? `${where}: ${text}` : text);
  if (!plan || typeof plan !== 'object') return out;
  const tiers = plan.tiers || [];
  if ((plan.type === 'tiered' || plan.type === 'guaranteed')) {
    if (!tiers.length) out.push(at(t('rp.err.no_tiers')));
    tiers.forEach((tier, i) => {
      if (!Number.isInteger(tier.from)) out.push(at(t('rp.err.amount').replace('%(n)s', i + 1)));
      if (!PERCENT.test(String(tier.rate ?? '')) || Number(tier.rate) > 100) out.push(at(t('rp.err.rate').replace('%(n)s', i + 1)));
      if (i > 0 && Number.isInteger(tier.from) && Number.isInteger(tiers[i - 1].from) && tier.from <= tiers[i - 1].from) {
        out.push(at(t('rp.err.order').replace('%(n)s', i + 1)));
      }
    });
  }
  if (plan.type === 'split') {
    const total = (plan.parties || []).reduce((sum, p) => sum + Math.round(Number(p.percent || 0) * 1e6), 0) / 1e6;
    if (total !== 100) out.push(at(t('rp.err.split').replace('%(total)s', String(total))));
    const names = (plan.parties || []).map((p) => p.party);
    if (new Set(names).size !== names.length) out.push(at(t('rp.err.twice')));
    if (plan.of) out.push(...problems(plan.of, t, t('rp.of')));
  }
  if (plan.type === 'composition') (plan.components || []).forEach((c, i) => out.push(...problems(c, t, `${t('rp.component')} ${i + 1}`)));
  if (plan.type === 'kpi_coefficient') out.push(...problems(plan.inner, t, t('rp.inner')));
  return out;
}

class RatePlanEditor {
  constructor(box) {
    this.box = box;
    this.form = box.closest('form');
    this.source = document.getElementById(box.dataset.source);
    this.text = JSON.parse(box.dataset.text || '{}');
    this.readonly = Boolean(box.closest('fieldset[disabled]'));
    this.load();
    box.addEventListener('input', (event) => this.edited(event, false));
    box.addEventListener('change', (event) => this.edited(event, true));
    box.addEventListener('click', (event) => this.clicked(event));
    this.source.addEventListener('change', () => { this.load(); this.render(); });
    this.render();
  }

  t(key) { return this.text[key] ?? key; }

  load() {
    try { this.plan = JSON.parse(this.source.value || 'null'); } catch { this.plan = null; }
    if (!this.plan || typeof this.plan !== 'object' || !TYPES.includes(this.plan.type)) this.plan = this.plan?.type ? this.plan : DEFAULTS.flat();
  }

  write(commit) {
    this.source.value = JSON.stringify(this.plan, null, 1);
    this.showProblems();
    if (commit) this.source.dispatchEvent(new Event('change', {bubbles: true})); // the form applies on change
  }

  /** The object at a dotted path ("components.0.tiers") inside the plan. */
  at(path) {
    let target = this.plan;
    for (const part of path ? path.split('.') : []) target = target[/^\d+$/.test(part) ? Number(part) : part];
    return target;
  }

  setAt(path, value) {
    const parts = path.split('.');
    const last = parts.pop();
    const parent = this.at(parts.join('.'));
    const key = /^\d+$/.test(last) ? Number(last) : last;
    if (value === undefined) delete parent[key]; else parent[key] = value;
  }

  input(path, value, kind, label, extra = '') {
    const ro = this.readonly ? ' disabled' : '';
    const shown = kind === 'money' ? fenToYuan(value) : (value ?? '');
    const unit = kind === 'money' ? '<span class="tf-rp-unit">¥</span>' : '';
    const after = kind === 'percent' ? '<span class="tf-rp-unit">%</span>' : '';
    return `<span class="tf-rp-in">${unit}<input type="text" inputmode="${kind === 'text' ? 'text' : 'decimal'}" data-p="${path}" data-kind="${kind}"
      value="${esc(shown)}" aria-label="${esc(label)}"${extra}${ro}>${after}</span>`;
  }

  select(path, value, options, label) {
    const ro = this.readonly ? ' disabled' : '';
    return `<select data-p="${path}" data-kind="choice" aria-label="${esc(label)}"${ro}>${options.map(([v, text]) =>
      `<option value="${esc(v)}"${v === (value ?? '') ? ' selected' : ''}>${esc(text)}</option>`).join('')}</select>`;
  }

  button(act, path, label, text = label) {
    return this.readonly ? '' : `<button type="button" class="tf-rp-btn" data-act="${act}" data-p="${path}" title="${esc(label)}" aria-label="${esc(label)}">${esc(text)}</button>`;
  }

  tiersTable(plan, path) {
    const rows = (plan.tiers || []).map((tier, i) => `<tr>
      <td>${i + 1}</td><td>${this.input(`${path}tiers.${i}.from`, tier.from, 'money', `${this.t('rp.tier_from')} ${i + 1}`)}</td>
      <td>${this.input(`${path}tiers.${i}.rate`, tier.rate, 'percent', `${this.t('rp.tier_rate')} ${i + 1}`)}</td>
      <td>${this.button('del-tier', `${path}tiers.${i}`, this.t('rp.remove'), '×')}</td></tr>`).join('');
    return `<table class="tf-rp-tiers"><caption>${esc(this.t(plan.type === 'guaranteed' ? 'rp.tiers_excess' : 'rp.tiers'))}</caption>
      <thead><tr><th scope="col">#</th><th scope="col">${esc(this.t('rp.tier_from'))}</th><th scope="col">${esc(this.t('rp.tier_rate'))}</th><th></th></tr></thead>
      <tbody>${rows}</tbody></table>${this.button('add-tier', `${path}tiers`, this.t('rp.add_tier'), `+ ${this.t('rp.add_tier')}`)}`;
  }

  renderPlan(plan, path, depth) {
    const p = path ? `${path}.` : '';
    const typeOptions = TYPES.filter((k) => !(depth > 0 && k === 'split')).map((k) => [k, this.t(`rp.type.${k}`)]);
    let body = '';
    if (plan.type === 'flat') {
      const rates = Object.entries(plan.rates || {});
      body = `<div class="tf-rp-row"><label>${esc(this.t('rp.rates_by'))} ${this.select(`${p}rates_by`, plan.rates_by || 'party_type',
        [['party_type', this.t('rp.by.party_type')], ['channel', this.t('rp.by.channel')], ['party', this.t('rp.by.party')]], this.t('rp.rates_by'))}</label></div>
        <table class="tf-rp-rates"><thead><tr><th scope="col">${esc(this.t('rp.value'))}</th><th scope="col">${esc(this.t('rp.rate'))}</th><th></th></tr></thead><tbody>
        ${rates.map(([key, rate], i) => `<tr><td>${this.input(`${p}rates#key.${i}`, key, 'text', `${this.t('rp.value')} ${i + 1}`)}</td>
          <td>${this.input(`${p}rates#rate.${i}`, rate, 'percent', `${this.t('rp.rate')} ${i + 1}`)}</td><td>${this.button('del-rate', `${p}rates.${i}`, this.t('rp.remove'), '×')}</td></tr>`).join('')}
        </tbody></table>${this.button('add-rate', `${p}rates`, this.t('rp.add_rate'), `+ ${this.t('rp.add_rate')}`)}
        <div class="tf-rp-row"><label>${esc(this.t('rp.default_rate'))} ${this.input(`${p}default_rate`, plan.default_rate, 'percent', this.t('rp.default_rate'))}</label></div>`;
    } else if (plan.type === 'tiered') {
      body = `<div class="tf-rp-row"><label>${esc(this.t('rp.mode'))} ${this.select(`${p}mode`, plan.mode,
        [['graduated', this.t('rp.mode.graduated')], ['retroactive', this.t('rp.mode.retroactive')]], this.t('rp.mode'))}</label>
        <label>${esc(this.t('rp.boundary'))} ${this.select(`${p}boundary`, plan.boundary || '',
          [['', this.t('rp.boundary.default')], ['at_least', this.t('rp.boundary.at_least')], ['above', this.t('rp.boundary.above')]], this.t('rp.boundary'))}</label></div>
        <p class="tf-help">${esc(this.t(`rp.mode_help.${plan.mode || 'graduated'}`))}</p>${this.tiersTable(plan, p)}`;
    } else if (plan.type === 'guaranteed') {
      body = `<div class="tf-rp-row"><label>${esc(this.t('rp.guarantee'))} ${this.input(`${p}guarantee_fen`, plan.guarantee_fen, 'money', this.t('rp.guarantee'))}</label>
        <label>${esc(this.t('rp.threshold'))} ${this.input(`${p}threshold_fen`, plan.threshold_fen, 'money', this.t('rp.threshold'))}</label></div>
        <p class="tf-help">${esc(this.t('rp.guarantee_help'))}</p>${this.tiersTable(plan, p)}`;
    } else if (plan.type === 'split') {
      const total = (plan.parties || []).reduce((sum, x) => sum + Math.round(Number(x.percent || 0) * 1e6), 0) / 1e6;
      body = `<table class="tf-rp-parties"><caption>${esc(this.t('rp.parties'))}</caption><thead><tr><th scope="col">${esc(this.t('rp.party'))}</th><th scope="col">${esc(this.t('rp.percent'))}</th><th></th></tr></thead><tbody>
        ${(plan.parties || []).map((x, i) => `<tr><td>${this.input(`${p}parties.${i}.party`, x.party, 'text', `${this.t('rp.party')} ${i + 1}`)}</td>
          <td>${this.input(`${p}parties.${i}.percent`, x.percent, 'percent', `${this.t('rp.percent')} ${i + 1}`)}</td><td>${this.button('del-party', `${p}parties.${i}`, this.t('rp.remove'), '×')}</td></tr>`).join('')}
        </tbody><tfoot><tr><th scope="row">${esc(this.t('rp.total'))}</th><td class="tf-rp-total${total === 100 ? '' : ' tf-rp-bad'}" data-split-total>${esc(String(total))}%</td><td></td></tr></tfoot></table>
        ${this.button('add-party', `${p}parties`, this.t('rp.add_party'), `+ ${this.t('rp.add_party')}`)}
        <p class="tf-help">${esc(this.t('rp.split_help'))}</p>
        <label class="tf-rp-row"><input type="checkbox" data-act="toggle-of" data-p="${p}of"${plan.of ? ' checked' : ''}${this.readonly ? ' disabled' : ''}> ${esc(this.t('rp.split_of'))}</label>
        ${plan.of ? `<div class="tf-rp-nested">${this.renderPlan(plan.of, `${p}of`, depth + 1)}</div>` : ''}`;
    } else if (plan.type === 'composition') {
      body = (plan.components || []).map((c, i) => `<div class="tf-rp-nested"><div class="tf-rp-nested-head">${esc(this.t('rp.component'))} ${i + 1}
        ${this.button('del-component', `${p}components.${i}`, this.t('rp.remove'), '×')}</div>${this.renderPlan(c, `${p}components.${i}`, depth + 1)}</div>`).join('')
        + this.button('add-component', `${p}components`, this.t('rp.add_component'), `+ ${this.t('rp.add_component')}`);
    } else if (plan.type === 'kpi_coefficient') {
      body = `<div class="tf-rp-row"><label>${esc(this.t('rp.min_coefficient'))} ${this.input(`${p}min_coefficient`, plan.min_coefficient, 'number', this.t('rp.min_coefficient'))}</label>
        <label>${esc(this.t('rp.max_coefficient'))} ${this.input(`${p}max_coefficient`, plan.max_coefficient, 'number', this.t('rp.max_coefficient'))}</label></div>
        <label class="tf-rp-block">${esc(this.t('rp.kpi_rules'))}<textarea data-p="${p}rules" data-kind="json" rows="4" class="tf-code"${this.readonly ? ' disabled' : ''}>${esc(JSON.stringify(plan.rules || [], null, 1))}</textarea></label>
        <div class="tf-rp-nested"><div class="tf-rp-nested-head">${esc(this.t('rp.inner'))}</div>${this.renderPlan(plan.inner || DEFAULTS.flat(), `${p}inner`, depth + 1)}</div>`;
    }
    return `<fieldset class="tf-rp-plan" data-plan="${esc(path)}"><legend>${esc(depth ? this.t('rp.nested') : this.t('rp.title'))}
        ${this.select(`${p}type`, plan.type, typeOptions, this.t('rp.type'))}</legend>
      <p class="tf-help">${esc(this.t(`rp.type_help.${plan.type}`))}</p>${body}
      <div class="tf-rp-row"><label>${esc(this.t('rp.name'))} ${this.input(`${p}name`, plan.name, 'text', this.t('rp.name'))}</label>
      ${depth ? '' : `<label>${esc(this.t('rp.rounding'))} ${this.select(`${p}rounding`, plan.rounding || '', [['', this.t('rp.rounding.default')], ['half_up', this.t('rp.rounding.half_up')], ['half_even', this.t('rp.rounding.half_even')]], this.t('rp.rounding'))}</label>`}</div>
    </fieldset>`;
  }

  render() {
    this.box.innerHTML = `${this.renderPlan(this.plan, '', 0)}<ul class="tf-rp-problems" data-rp-problems role="status"></ul>`;
    this.showProblems();
  }

  showProblems() {
    const list = this.box.querySelector('[data-rp-problems]');
    if (!list) return;
    const found = problems(this.plan, (k) => this.t(k));
    list.innerHTML = found.map((text) => `<li>${esc(text)}</li>`).join('');
    const total = this.box.querySelector('[data-split-total]');
    if (total && this.plan.type === 'split') {
      const sum = (this.plan.parties || []).reduce((s, x) => s + Math.round(Number(x.percent || 0) * 1e6), 0) / 1e6;
      total.textContent = `${sum}%`;
      total.classList.toggle('tf-rp-bad', sum !== 100);
    }
  }

  edited(event, commit) {
    const el = event.target;
    const path = el.dataset.p;
    if (!path || el.dataset.act) return;
    const kind = el.dataset.kind;
    if (path.includes('rates#')) { // flat rates: a dict edited as rows
      const [head, tail] = path.split('rates#');
      const [what, index] = tail.split('.');
      const owner = this.at(head.replace(/\.$/, ''));
      const entries = Object.entries(owner.rates || {});
      if (what === 'key') entries[Number(index)][0] = el.value.trim(); else entries[Number(index)][1] = el.value.trim();
      owner.rates = Object.fromEntries(entries);
      this.write(commit);
      return;
    }
    if (path.endsWith('type') && kind === 'choice' && path.split('.').pop() === 'type') {
      if (!commit) return;
      const base = path.slice(0, -'type'.length).replace(/\.$/, '');
      const fresh = DEFAULTS[el.value]();
      const old = this.at(base);
      if (old.name) fresh.name = old.name;
      if (!base) { if (old.rounding) fresh.rounding = old.rounding; this.plan = fresh; } else this.setAt(base, fresh);
      this.write(true);
      this.render();
      return;
    }
    let value = el.value.trim();
    el.removeAttribute('aria-invalid');
    if (kind === 'money') {
      value = yuanToFen(value);
      if (value === null) { el.setAttribute('aria-invalid', 'true'); return; }
    } else if (kind === 'json') {
      try { value = JSON.parse(el.value || '[]'); } catch { el.setAttribute('aria-invalid', 'true'); return; }
    } else if (value === '' && (kind === 'choice' || kind === 'text' || kind === 'percent')) {
      value = undefined;
    }
    this.setAt(path, value);
    this.write(commit);
  }

  clicked(event) {
    const button = event.target.closest('[data-act]');
    if (!button || this.readonly) return;
    const path = button.dataset.p;
    const act = button.dataset.act;
    const parts = path.split('.');
    const index = Number(parts[parts.length - 1]);
    const list = (p) => this.at(p.split('.').slice(0, -1).join('.'));
    switch (act) {
      case 'add-tier': {
        const tiers = this.at(path);
        const last = tiers[tiers.length - 1];
        tiers.push({from: last ? (last.from || 0) + 10000000 : 0, rate: last ? last.rate : '3'});
        break;
      }
      case 'add-party': this.at(path).push({party: '', percent: '0'}); break;
      case 'add-component': this.at(path).push(DEFAULTS.flat()); break;
      case 'add-rate': {
        const owner = this.at(path.replace(/\.?rates$/, ''));
        owner.rates = {...(owner.rates || {}), [`value_${Object.keys(owner.rates || {}).length + 1}`]: '5'};
        break;
      }
      case 'del-rate': {
        const owner = this.at(path.replace(/\.?rates\.\d+$/, ''));
        owner.rates = Object.fromEntries(Object.entries(owner.rates || {}).filter((_, i) => i !== index));
        break;
      }
      case 'del-tier': case 'del-party': case 'del-component': list(path).splice(index, 1); break;
      case 'toggle-of': {
        const owner = this.at(path.replace(/\.?of$/, ''));
        if (button.checked) owner.of = DEFAULTS.flat(); else delete owner.of;
        break;
      }
      default: return;
    }
    this.write(true);
    this.render();
  }
}

function init(root = document) {
  root.querySelectorAll('[data-rate-plan]:not([data-rate-plan-ready])').forEach((box) => {
    box.dataset.ratePlanReady = '1';
    new RatePlanEditor(box);
  });
}
init();
document.body.addEventListener('htmx:afterSwap', (event) => init(event.detail.target));
