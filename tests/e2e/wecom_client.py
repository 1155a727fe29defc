"""A stand-in for the WeCom client around a page, for browser tests of the chat sidebar.

The sidebar page runs WeCom's real JS-SDK (@wecom/jssdk, vendored). That SDK talks to the client through
``window.WeixinJSBridge`` — ``invoke(name, params, callback)`` — which the WeCom client injects into pages
it opens. This module injects a stand-in for it (Playwright ``add_init_script``; nothing of it ships) that
behaves like the client:

* ``preVerifyJSAPI`` (``config``) and ``agentConfig`` check the signature the page got from our server
  with the fake WeCom's own check (:meth:`FakeWeComJsApi.verify_signature`: its tickets, SHA-1 of the
  documented string, the page's URL without ``#``) and the corp id / AgentId; a wrong one fails with
  ``invalid signature`` as WeCom does.
* ``getContext``, ``getCurExternalContact`` and ``getCurExternalChat`` answer for the chat the test
  opened; they fail with ``no permission`` until ``agentConfig`` succeeded, as the client does.
* ``sendChatMessage`` records the message (``sent``) — or fails or is cancelled when the test says so.

The user agent must say ``wxwork/<version>`` (:func:`user_agent`) for the SDK to believe it is inside WeCom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext

from tests.connectors.fake_wecom_jsapi import FakeWeComJsApi


def user_agent(version: str = "4.1.22", mobile: bool = False) -> str:
    """A WeCom client's user agent: the desktop client on Windows, or the iPhone app."""
    if mobile:
        return (f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Mobile/15E148 wxwork/{version} MicroMessenger/7.0.1 Language/zh ColorScheme/Light")
    return (f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/120.0.0.0 Safari/537.36 wxwork/{version} MicroMessenger/7.0.1 Language/zh")


_BRIDGE = """
(() => {
  const chat = %(chat)s;
  const state = { agent: false, corp: false, calls: [] };
  window.__wecomClient = state;
  const reply = (cb, body) => setTimeout(() => cb(body), 0);
  window.WeixinJSBridge = {
    on() {},
    invoke(name, params, cb) {
      state.calls.push(name);
      const ok = (extra) => reply(cb, Object.assign({ err_msg: name + ':ok' }, extra || {}));
      const fail = (why) => reply(cb, { err_msg: name + ':fail ' + why });
      const page = location.href.split('#')[0];
      if (name === 'preVerifyJSAPI') {
        if (params.verifyAppId !== chat.corpId) return fail('invalid corpid');
        window.__wecomVerify('corp', page, params.verifyTimestamp, params.verifyNonceStr, params.verifySignature)
          .then((why) => { if (why) return fail(why); state.corp = true; ok(); });
        return;
      }
      if (name === 'agentConfig') {
        if (params.corpid !== chat.corpId || String(params.agentid) !== String(chat.agentId)) {
          return fail('invalid agentid');
        }
        window.__wecomVerify('agent', page, params.timestamp, params.nonceStr, params.signature)
          .then((why) => { if (why) return fail(why); state.agent = true; ok(); });
        return;
      }
      if (!state.agent) return fail('no permission');
      if (name === 'getContext') return ok({ entry: chat.entry });
      if (name === 'getCurExternalContact') {
        return chat.userId ? ok({ userId: chat.userId }) : fail('without context of external contact');
      }
      if (name === 'getCurExternalChat') {
        return chat.chatId ? ok({ chatId: chat.chatId }) : fail('without context of external contact');
      }
      if (name === 'sendChatMessage') {
        const { msgtype } = params;
        const body = { msgtype: msgtype, [msgtype]: params[msgtype] };
        window.__wecomSend(body).then((answer) => answer === 'ok' ? ok() : reply(cb, { err_msg: name + ':' + answer }));
        return;
      }
      fail('function not exist');
    },
  };
})();
"""


@dataclass
class WeComClient:
    """What the stand-in saw; ``answer`` is what the next sendChatMessage calls get ("ok", "cancel",
    "fail no permission")."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    answer: str = "ok"
    refused: list[str] = field(default_factory=list)


def install(context: BrowserContext, fake: FakeWeComJsApi, *, corp_id: str, agent_id: int,
            external_userid: str | None = None, chat_id: str | None = None,
            entry: str = "single_chat_tools") -> WeComClient:
    """Open every page of ``context`` as if WeCom's chat toolbar had opened it beside this chat."""
    client = WeComClient()

    def verify(kind: str, page_url: str, timestamp: Any, nonce: Any, signature: Any) -> str:
        why = fake.verify_signature(kind, page_url, timestamp, nonce, signature)
        if why:
            client.refused.append(f"{kind}: {why}")
        return why

    def send(message: dict[str, Any]) -> str:
        if client.answer == "ok":
            client.sent.append(message)
        return client.answer

    context.expose_function("__wecomVerify", verify)
    context.expose_function("__wecomSend", send)
    chat = {"corpId": corp_id, "agentId": agent_id, "userId": external_userid, "chatId": chat_id, "entry": entry}
    context.add_init_script(_BRIDGE % {"chat": json.dumps(chat)})
    return client
