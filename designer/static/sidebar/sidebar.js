// The chat sidebar (聊天工具栏): learn the chat from WeCom's JS-SDK (@wecom/jssdk, vendored as window.ww),
// ask the server for the customer and the scripts (server-rendered HTML), send a script with
// ww.sendChatMessage and report what WeCom answered. Every action goes through the web app's own JSON API;
// the status line shows the server's (or WeCom's) answer, never a guess.
(function () {
  'use strict';
  const root = document.getElementById('sidebar');
  if (!root || !window.ww) return;
  const body = document.getElementById('sb-body');
  const live = document.getElementById('sb-status');
  const text = JSON.parse(document.getElementById('sb-text').textContent);
  const csrf = root.dataset.csrf;
  let who = null; // {external_userid} or {chat_id}
  let customerId = null;
  let signing = null;
  let retried = false;
  let retryNext = false;

  function say(message, bad) {
    live.textContent = message;
    live.className = bad ? 'sb-status bad' : 'sb-status';
  }

  function requestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'r' + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  async function call(path, payload, wantHtml) {
    const response = await fetch(path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(payload),
    });
    if (response.status === 401) { window.location.assign('/sidebar'); throw new Error(text.signedOut); }
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      const detail = data.detail || {};
      throw new Error((detail.message || (text.failed + ' (HTTP ' + response.status + ')')) +
                      (detail.fix ? ' — ' + detail.fix : ''));
    }
    return wantHtml ? response.text() : response.json();
  }

  function sign(url) {
    if (!signing) {
      signing = call('/api/sidebar/signatures', { url: url, retry: retryNext })
        .catch((error) => { signing = null; throw error; });
      retryNext = false;
    }
    return signing;
  }

  function configFailed(error) {
    const message = error.errMsg || error.message || '';
    if (!retried && /signature|ticket/i.test(message)) {
      // WeCom may end a ticket early: the next attempt asks the server for fresh ones, once
      retried = true;
      retryNext = true;
      signing = null;
      return;
    }
    say(text.configFailed + ' ' + message, true);
  }

  ww.register({
    corpId: root.dataset.corpId,
    agentId: root.dataset.agentId,
    jsApiList: ['getContext', 'getCurExternalContact', 'getCurExternalChat', 'sendChatMessage'],
    getConfigSignature: async (url) => (await sign(url)).config,
    getAgentConfigSignature: async (url) => (await sign(url)).agent_config,
    onConfigFail: configFailed,
    onAgentConfigFail: configFailed,
  });

  async function load(query) {
    const payload = Object.assign({ q: query || '' }, who);
    const category = body.querySelector('#sb-category');
    if (category && category.value) payload.category_id = Number(category.value);
    body.setAttribute('aria-busy', 'true');
    try {
      body.innerHTML = await call('/sidebar/view', payload, true);
      const found = body.querySelector('[data-customer-id]');
      customerId = found ? found.dataset.customerId : null;
    } finally {
      body.removeAttribute('aria-busy');
    }
  }

  function within(promise, ms) {
    // outside the WeCom client nothing ever answers the JS-SDK: say so instead of waiting forever
    return Promise.race([promise, new Promise((resolve, reject) => setTimeout(
      () => reject(new Error(text.notInWeCom)), ms))]);
  }

  async function start() {
    say(text.connecting);
    try {
      const context = await within(ww.getContext().catch((error) => {
        if (error && error.message === text.notInWeCom) throw error;
        return { entry: '' };
      }), 10000);
      if (context.entry === 'group_chat_tools') {
        const chat = await within(ww.getCurExternalChat(), 10000);
        who = { chat_id: chat.chatId };
      } else {
        const contact = await within(ww.getCurExternalContact(), 10000);
        who = { external_userid: contact.userId };
      }
      await load('');
      say('');
    } catch (error) {
      say(text.noChat + ' ' + (error.errMsg || error.message || ''), true);
    }
  }

  function pause(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async function report(useId, outcome, error) {
    // the message is in the chat (or refused) already: its outcome is worth a few tries, and a repeat
    // changes nothing on the server. A failure is not a reason to send again, and is said as such.
    let last = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt) await pause(800 * attempt);
      try {
        return await call('/api/sidebar/uses/' + useId, { status: outcome, error: error });
      } catch (failure) {
        last = failure;
      }
    }
    throw last;
  }

  async function send(button) {
    const item = button.closest('[data-script]');
    const status = item.querySelector('.sb-sent');
    button.disabled = true;
    status.textContent = text.sending;
    try {
      const use = await call('/api/sidebar/scripts/' + item.dataset.script + '/use',
                             { customer_id: customerId, chat_id: who && who.chat_id ? who.chat_id : null });
      let outcome = 'sent';
      let error = '';
      try {
        await ww.sendChatMessage(use.message);
      } catch (failure) {
        error = failure.errMsg || String(failure);
        outcome = /:cancel/.test(error) ? 'cancelled' : 'failed';
      }
      let unrecorded = '';
      try {
        await report(use.use_id, outcome, error);
      } catch (failure) {
        // sent but not recorded: say it was sent, so nobody sends it to the customer again
        unrecorded = ' · ' + (outcome === 'sent' ? text.notRecordedSent : text.notRecorded) + ' ' + failure.message;
      }
      status.textContent = (outcome === 'sent' ? text.sent : (outcome === 'cancelled' ? text.cancelled
                                                                                       : text.sendFailed + ' ' + error))
                           + unrecorded;
      status.className = 'sb-sent ' + outcome + (unrecorded ? ' unrecorded' : '');
    } catch (error) {
      status.textContent = error.message;
      status.className = 'sb-sent failed';
    } finally {
      button.disabled = false;
    }
  }

  async function act(form) {
    const data = new FormData(form);
    const kind = form.dataset.action;
    let path;
    let payload;
    if (kind === 'tag') {
      path = '/api/customers/' + encodeURIComponent(customerId) + '/tags';
      payload = { add: [String(data.get('tag') || '').trim()] };
    } else if (kind === 'untag') {
      path = '/api/customers/' + encodeURIComponent(customerId) + '/tags';
      payload = { remove: [String(data.get('tag'))] };
    } else if (kind === 'enroll') {
      path = '/api/flows/' + encodeURIComponent(String(data.get('flow'))) + '/enroll';
      payload = { customer: { customer_id: customerId } };
    } else if (kind === 'coupon') {
      path = '/api/coupon-campaigns/' + encodeURIComponent(String(data.get('campaign'))) + '/issue';
      payload = { customer_id: customerId, request_id: form.dataset.request || (form.dataset.request = requestId()) };
    } else if (kind === 'ticket') {
      path = '/api/tickets';
      payload = { type: String(data.get('type')), subject: String(data.get('subject') || '').trim(),
                  description: String(data.get('description') || ''), customer_id: customerId, channel: 'wecom',
                  external_id: form.dataset.request || (form.dataset.request = requestId()) };
    } else {
      return;
    }
    const button = form.querySelector('button');
    if (button) button.disabled = true;
    try {
      const answer = await call(path, payload);
      delete form.dataset.request;
      let message = text['done_' + kind] || text.done;
      if (kind === 'coupon' && answer.status !== 'issued') message = text.couponRefused + ' ' + (answer.message || answer.reason || '');
      if (kind === 'enroll' && answer.status !== 'started') message = text.notEntered;
      if (kind === 'ticket') message = message.replace('%(id)s', answer.id);
      await load(body.querySelector('#sb-q') ? body.querySelector('#sb-q').value : '');
      say(message, kind === 'coupon' && answer.status !== 'issued');
    } catch (error) {
      say(error.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  root.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-send]');
    if (button) { event.preventDefault(); send(button); }
  });
  root.addEventListener('submit', (event) => {
    const form = event.target;
    event.preventDefault();
    if (form.id === 'sb-search') {
      load(form.querySelector('#sb-q').value).catch((error) => say(error.message, true));
    } else {
      act(form);
    }
  });
  root.addEventListener('change', (event) => {
    if (event.target.id === 'sb-category') load(body.querySelector('#sb-q').value).catch((e) => say(e.message, true));
  });

  start();
})();
