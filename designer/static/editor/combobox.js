// A searchable, grouped picker over a <datalist data-catalogue> (the event-type catalogue): type to
// filter by type, label, group or note, arrows and Enter to pick, Escape to close; whatever is typed
// stays a valid answer (free entry for new types). Without JavaScript the datalist still suggests.
// Inputs appear later too (property forms swapped in by htmx, preview rows), so they are enhanced on
// first focus. No framework.
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const LIMIT = 120;
let serial = 0;

class Combobox {
  constructor(input, list) {
    this.input = input;
    this.list = list;
    this.options = [...list.options].map((o) => ({
      value: o.value, label: o.textContent.trim(), group: o.dataset.group || '', note: o.dataset.note || '',
      search: `${o.value} ${o.textContent} ${o.dataset.group || ''} ${o.dataset.note || ''}`.toLowerCase(),
    }));
    serial += 1;
    this.popup = document.createElement('div');
    this.popup.id = `tf-combo-${serial}`;
    this.popup.className = 'tf-combo-list';
    this.popup.setAttribute('role', 'listbox');
    this.popup.hidden = true;
    document.body.append(this.popup);
    input.removeAttribute('list'); // no native dropdown on top of ours
    input.dataset.comboList = list.id;
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', this.popup.id);
    input.autocomplete = 'off';
    this.active = -1;
    this.shown = [];
    input.addEventListener('input', () => {
      if (!this.picking) this.input.dataset.comboTyped = '1'; // typed (IME and paste too): filter by it
      this.open();
    });
    input.addEventListener('keydown', (event) => this.key(event));
    input.addEventListener('blur', () => setTimeout(() => this.close(), 120));
    input.addEventListener('click', () => this.open());
    this.popup.addEventListener('mousedown', (event) => event.preventDefault()); // keep the focus in the input
    this.popup.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) this.pick(this.shown[Number(option.dataset.i)].value);
    });
    window.addEventListener('resize', () => this.place());
    document.addEventListener('scroll', () => this.place(), true);
  }

  matches() {
    const words = this.input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const exact = this.options.some((o) => o.value === this.input.value.trim());
    if (exact && !this.typed) return this.options; // opened on a chosen value: show everything
    return this.options.filter((o) => words.every((w) => o.search.includes(w)));
  }

  open() {
    if (this.input.disabled || this.input.readOnly) return;
    this.typed = this.input.dataset.comboTyped === '1';
    this.shown = this.matches().slice(0, LIMIT);
    this.active = this.shown.length ? 0 : -1;
    this.render();
    this.popup.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.place();
  }

  close() {
    this.popup.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }

  place() {
    if (this.popup.hidden) return;
    const box = this.input.getBoundingClientRect();
    const below = window.innerHeight - box.bottom;
    Object.assign(this.popup.style, {left: `${box.left}px`, width: `${Math.max(box.width, 320)}px`});
    if (below < 220 && box.top > below) {
      Object.assign(this.popup.style, {top: '', bottom: `${window.innerHeight - box.top + 2}px`, maxHeight: `${box.top - 8}px`});
    } else {
      Object.assign(this.popup.style, {bottom: '', top: `${box.bottom + 2}px`, maxHeight: `${Math.max(below - 8, 160)}px`});
    }
  }

  render() {
    if (!this.shown.length) {
      this.popup.innerHTML = `<div class="tf-combo-empty">${esc(this.list.dataset.empty || '')}</div>`;
      return;
    }
    let html = '';
    let group = null;
    this.shown.forEach((o, i) => {
      if (o.group !== group) {
        if (group !== null) html += '</div>';
        group = o.group;
        html += `<div role="group" aria-label="${esc(group)}"><div class="tf-combo-group" aria-hidden="true">${esc(group)}</div>`;
      }
      html += `<div role="option" id="${this.popup.id}-${i}" data-i="${i}" data-value="${esc(o.value)}" aria-selected="${i === this.active}"
        class="tf-combo-option${i === this.active ? ' tf-active' : ''}"><span class="tf-combo-label">${esc(o.label)}</span>
        ${o.label === o.value ? '' : `<code>${esc(o.value)}</code>`}${o.note ? `<small>${esc(o.note)}</small>` : ''}</div>`;
    });
    this.popup.innerHTML = `${html}</div>`;
    if (this.active >= 0) this.input.setAttribute('aria-activedescendant', `${this.popup.id}-${this.active}`);
  }

  move(step) {
    if (this.popup.hidden) { this.open(); return; }
    if (!this.shown.length) return;
    this.active = (this.active + step + this.shown.length) % this.shown.length;
    this.render();
    this.popup.querySelector('.tf-active')?.scrollIntoView({block: 'nearest'});
  }

  key(event) {
    if (event.key === 'ArrowDown') { event.preventDefault(); this.move(1); return; }
    if (event.key === 'ArrowUp') { event.preventDefault(); this.move(-1); return; }
    if (event.key === 'Escape' && !this.popup.hidden) { event.preventDefault(); event.stopPropagation(); this.close(); return; }
    if (event.key === 'Enter' && !this.popup.hidden) {
      event.preventDefault(); // Enter picks, it does not submit the form
      if (this.active >= 0 && this.input.dataset.comboTyped === '1') this.pick(this.shown[this.active].value);
      else this.pick(this.input.value.trim()); // free entry: what was typed
      return;
    }
    if (event.key === 'Tab') this.close();
  }

  pick(value) {
    this.input.value = value;
    this.picking = true;
    this.input.dispatchEvent(new Event('input', {bubbles: true}));
    this.input.dispatchEvent(new Event('change', {bubbles: true}));
    this.picking = false;
    this.input.dataset.comboTyped = '0';
    this.close();
  }
}

const live = new Set();

function enhance(input) {
  if (input.dataset.comboList) return;
  for (const combo of live) { // forms swapped out by htmx take their pickers with them
    if (!combo.input.isConnected) { combo.popup.remove(); live.delete(combo); }
  }
  const list = document.getElementById(input.getAttribute('list') || '');
  if (!list || list.dataset.catalogue === undefined) return;
  input.combobox = new Combobox(input, list);
  live.add(input.combobox);
}

document.addEventListener('focusin', (event) => {
  if (event.target.matches?.('input[list]')) {
    enhance(event.target);
    event.target.combobox?.open();
  }
});
