// The main menu's "More" (designer/nav.py, drawn by base.html): a <details> that works without this script;
// with it, the menu also closes on Escape (focus back on "More") and on a click anywhere else, like a menu.
(function () {
  'use strict';
  const more = document.querySelector('header.top nav details.more');
  if (!more) return;
  const summary = more.querySelector('summary');
  document.addEventListener('click', (event) => {
    if (more.open && !more.contains(event.target)) more.open = false;
  });
  more.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && more.open) {
      more.open = false;
      summary.focus();
    }
  });
})();
