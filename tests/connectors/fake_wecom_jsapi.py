"""The fake WeCom grows what the chat sidebar needs: web sign-in and the JS-SDK.

* ``GET /connect/oauth2/authorize`` (open.weixin.qq.com in real life): WeCom's authorisation redirect
  for whoever is signed in to the client (``fake.client_user``) — an HTML page that moves the browser
  to ``redirect_uri?code=CODE&state=STATE``, as the WeCom client's webview does.
* ``GET /cgi-bin/auth/getuserinfo``: code → ``userid`` (a member) or ``openid`` (anybody else). A code
  works once and for 5 minutes (``40029 invalid code`` otherwise), as documented on
  developer.work.weixin.qq.com/document/path/96442.
* ``GET /cgi-bin/get_jsapi_ticket`` and ``GET /cgi-bin/ticket/get?type=agent_config``: the corp and the
  app ticket, ``expires_in`` 7200, at most 400 fetches an hour per corp and 100 per app
  (``45009`` past that; document/path/96909).
* :meth:`FakeWeComJsApi.verify_signature`: what the WeCom client does with ``wx.config`` /
  ``wx.agentConfig`` — recompute the signature from a ticket it issued, the nonce, the timestamp and
  the page URL (without ``#…``) per the documented algorithm, and say why it does not match.
  Browser tests hand it to their stand-in for the client's JS bridge.

The fake signs nothing with our code: it computes SHA-1 itself, from the documented string.
"""

from __future__ import annotations

import hashlib
import html
import urllib.parse
from collections import deque
from typing import Any

#: the AgentId of the self-built app the sidebar belongs to
SIDEBAR_AGENT_ID = 1000005
TICKET_TTL = 7200
CODE_TTL = 300


class FakeWeComJsApi:
    """A mixin for :class:`tests.connectors.fake_wecom.FakeWeCom` (uses its lock, clock, tokens, problems)."""

    jsapi_routes: dict[str, tuple[str, str]] = {
        "/connect/oauth2/authorize": ("GET", "oauth2/authorize"),
        "/cgi-bin/auth/getuserinfo": ("GET", "auth/getuserinfo"),
        "/cgi-bin/get_jsapi_ticket": ("GET", "get_jsapi_ticket"),
        "/cgi-bin/ticket/get": ("GET", "ticket/get"),
    }

    # attributes of FakePlatform this mixin relies on
    lock: Any
    now: Any
    _serial: Any
    corp_id: str
    problem: Any
    check_token: Any

    def __init__(self) -> None:
        super().__init__()
        #: who is signed in to the WeCom client the browser stands for (a member's UserID), or None
        self.client_user: str | None = None
        #: when set, the openid of a non-member visitor (used when client_user is None)
        self.client_openid: str | None = None
        #: hosts the app's 可信域名 covers; empty = any (WeCom refuses other redirect hosts)
        self.trusted_hosts: set[str] = set()
        #: code → (userid or None, openid or None, issued at)
        self.oauth_codes: dict[str, tuple[str | None, str | None, float]] = {}
        self.used_oauth_codes: set[str] = set()
        #: ticket → (kind "corp"|"agent", expiry)
        self.tickets: dict[str, tuple[str, float]] = {}
        self._ticket_fetches: dict[str, deque[float]] = {"corp": deque(), "agent": deque()}
        self.ticket_limits = {"corp": 400, "agent": 100}

    # -- helpers for tests -----------------------------------------------------------------------
    def issue_oauth_code(self, userid: str | None = None, openid: str | None = None) -> str:
        code = f"CODE{next(self._serial)}x{int(self.now())}"
        with self.lock:
            self.oauth_codes[code] = (userid, openid, self.now())
        return code

    def valid_tickets(self, kind: str) -> list[str]:
        with self.lock:
            return [t for t, (k, expiry) in self.tickets.items() if k == kind and expiry > self.now()]

    def verify_signature(self, kind: str, page_url: str, timestamp: Any, nonce: Any, signature: Any) -> str:
        """"" when ``signature`` is what WeCom computes for ``page_url`` with a live ticket of ``kind``
        ("corp" for config, "agent" for agentConfig); else the reason it is refused."""
        if not isinstance(signature, str) or not isinstance(nonce, str) or not nonce:
            return "missing nonceStr or signature"
        if not str(timestamp).isdigit():
            return "timestamp must be unix seconds"
        url = page_url.split("#", 1)[0]
        for ticket in self.valid_tickets(kind):
            plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
            if hashlib.sha1(plain.encode()).hexdigest() == signature:  # noqa: S324
                return ""
        return "invalid signature"

    # -- APIs -------------------------------------------------------------------------------------
    def api_oauth2_authorize(self, query: dict[str, str], body: dict[str, Any]) -> Any:
        redirect = query.get("redirect_uri", "")
        if query.get("appid") != self.corp_id:
            return _page("appid 参数错误 (the appid is not this corp's CorpID)")
        if query.get("response_type") != "code" or query.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
            self.problem(f"oauth2/authorize: response_type/scope {query!r}")
            return _page("参数错误")
        state = query.get("state", "")
        if state and (not state.isalnum() or len(state) > 128):
            self.problem(f"oauth2/authorize: state {state!r} is not 1-128 letters and digits")
        host = urllib.parse.urlsplit(redirect).hostname or ""
        if not redirect or (self.trusted_hosts and host not in self.trusted_hosts):
            return _page("redirect_uri 需使用应用可信域名 (the redirect host is not a trusted domain)")
        if self.client_user is None and self.client_openid is None:
            return _page("请在企业微信客户端打开链接 (no one is signed in to the client)")
        code = self.issue_oauth_code(self.client_user, None if self.client_user else self.client_openid)
        sep = "&" if "?" in redirect else "?"
        target = f"{redirect}{sep}{urllib.parse.urlencode({'code': code, 'state': state})}"
        return (f'<!doctype html><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
                f"<title>redirecting</title>").encode()

    def api_auth_getuserinfo(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        code = query.get("code", "")
        with self.lock:
            issued = self.oauth_codes.get(code)
            if issued is None or code in self.used_oauth_codes or self.now() - issued[2] > CODE_TTL:
                return {"errcode": 40029, "errmsg": "invalid code"}
            self.used_oauth_codes.add(code)
        userid, openid, _ = issued
        if userid:
            return {"errcode": 0, "errmsg": "ok", "userid": userid}
        return {"errcode": 0, "errmsg": "ok", "openid": openid or "oFake"}

    def _issue_ticket(self, kind: str, query: dict[str, str]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            now = self.now()
            for k in ("corp", "agent"):
                fetches = self._ticket_fetches[k]
                while fetches and fetches[0] <= now - 3600:
                    fetches.popleft()
            corp_total = len(self._ticket_fetches["corp"]) + len(self._ticket_fetches["agent"])
            if len(self._ticket_fetches[kind]) >= self.ticket_limits[kind] or corp_total >= self.ticket_limits["corp"]:
                return {"errcode": 45009, "errmsg": "api freq out of limit"}
            self._ticket_fetches[kind].append(now)
            ticket = f"{kind}-ticket-{next(self._serial)}-{int(now)}"
            self.tickets[ticket] = (kind, now + TICKET_TTL)
        return {"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": TICKET_TTL}

    def api_get_jsapi_ticket(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self._issue_ticket("corp", query)

    def api_ticket_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if query.get("type") != "agent_config":
            self.problem(f"ticket/get: type {query.get('type')!r} (the app ticket is type=agent_config)")
            return {"errcode": 40058, "errmsg": "invalid type"}
        return self._issue_ticket("agent", query)


def _page(text: str) -> bytes:
    return f"<!doctype html><title>企业微信</title><p id='wecom-error'>{html.escape(text)}</p>".encode()


def expire_all(fake: FakeWeComJsApi) -> None:
    """Every ticket issued so far has expired."""
    with fake.lock:
        for ticket, (kind, _) in list(fake.tickets.items()):
            fake.tickets[ticket] = (kind, fake.now() - 1)
