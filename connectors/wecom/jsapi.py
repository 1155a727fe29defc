"""WeCom (企业微信) for pages WeCom opens itself — the chat sidebar (聊天工具栏): web sign-in (OAuth code →
UserID), the corp and app ``jsapi_ticket``, and the JS-SDK signature.

Endpoints (all under ``api_base``; the app's ``access_token`` in the query string):

=======================================  ===========================================================
``GET /cgi-bin/auth/getuserinfo``         ``code`` (from the OAuth redirect; ≤ 512 bytes, works once,
                                          expires after 5 minutes) → ``userid`` for a member of the
                                          corp; ``openid`` (+ ``external_userid``) for anyone else.
                                          https://developer.work.weixin.qq.com/document/path/96442
``GET /cgi-bin/get_jsapi_ticket``         the corp ticket, signs ``wx.config`` / ``getConfigSignature``
``GET /cgi-bin/ticket/get``               ``type=agent_config``: the app ticket, signs
                                          ``wx.agentConfig`` / ``getAgentConfigSignature``
=======================================  ===========================================================

The tickets are valid ``expires_in`` seconds (7200 today) and may be fetched at most 400 times an hour
per corp and 100 times an hour per app; WeCom asks every server to cache them
(https://developer.work.weixin.qq.com/document/path/96909). Here each is cached until shortly before
it expires (one fetch per ticket per process every ~2 hours, single flight), and a fetch counter per
corp and per app refuses, with :class:`~connectors.wecom.api_errors.WeComRetryable`, to go past those
hourly limits even if something keeps invalidating the cache.

Both tickets must be fetched with the access token of the app named in ``agentConfig`` (the
self-built app configured as the chat toolbar), not the 客户联系 secret: :func:`shared_app` keeps one
client per (corp, app) beside the connector's own client.

The signature (same page): ``sha1("jsapi_ticket=T&noncestr=N&timestamp=S&url=U")`` — in that order,
nothing URL-encoded, the URL without ``#`` and what follows. :func:`jsapi_signature` is tested
against the example values published on that page.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from connectors.wecom.api_errors import WeComRejected, WeComRetryable
from connectors.wecom.client import DEFAULT_API_BASE, WeComClient
from connectors.wecom.tokens import AccessTokenCache
from connectors.wecom.transport import SharedClients
from wording import Msg

DEFAULT_OAUTH_BASE = "https://open.weixin.qq.com"
#: WeCom's hourly limits for fetching jsapi tickets (document/path/96909)
CORP_TICKETS_PER_HOUR = 400
APP_TICKETS_PER_HOUR = 100
#: an OAuth code is at most 512 bytes and expires 5 minutes after the redirect (document/path/96442)
MAX_CODE_BYTES = 512
OAUTH_CODE_TTL = 300
#: OAuth ``state`` — a-zA-Z0-9, at most 128 bytes
MAX_STATE_BYTES = 128
#: after an "invalid signature", tickets at least this old are fetched again
TICKET_RETRY_AFTER = 60.0
#: refresh a ticket this long before WeCom's expiry
TICKET_MARGIN = 300.0


def sign_url(url: str) -> str:
    """The URL a JS-SDK signature covers: the page's full URL without ``#`` and what follows."""
    return url.split("#", 1)[0]


def jsapi_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The JS-SDK signature (签名算法): SHA-1 hex of the four fields in WeCom's fixed order, unencoded."""
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={sign_url(url)}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()  # noqa: S324 - WeCom's algorithm, not our choice


def new_nonce() -> str:
    """A 16-character random nonce (letters and digits, like WeCom's example)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def check_page_url(url: str) -> str:
    """A page URL the sidebar may ask to have signed: absolute http(s), no user info, bounded."""
    if len(url) > 2048:
        raise ValueError(Msg("the page URL is longer than 2048 characters"))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(Msg("the page URL must be an absolute http(s) URL (location.href of the sidebar page)"))
    if parts.username or parts.password or any(ord(ch) < 0x20 for ch in url):
        raise ValueError(Msg("the page URL must not carry user info or control characters"))
    return url


@dataclass(frozen=True)
class Signature:
    """What ``getConfigSignature`` / ``getAgentConfigSignature`` hand back to the JS-SDK."""

    timestamp: int
    nonce_str: str
    signature: str
    url: str


@dataclass(frozen=True)
class Visitor:
    """Who came through OAuth: a member of the corp (``userid``) or somebody else (``openid``)."""

    userid: str | None = None
    openid: str | None = None
    external_userid: str | None = None

    @property
    def member(self) -> bool:
        return bool(self.userid)


def oauth_url(corp_id: str, redirect_uri: str, *, state: str, agent_id: int | str | None = None,
              scope: str = "snsapi_base", base: str = DEFAULT_OAUTH_BASE) -> str:
    """The 构造网页授权链接 URL: WeCom sends the member back to ``redirect_uri?code=CODE&state=STATE``."""
    if not state.isascii() or not state.isalnum() or len(state) > MAX_STATE_BYTES:
        raise ValueError(Msg("state must be 1–128 letters and digits"))
    query: dict[str, str] = {"appid": corp_id, "redirect_uri": redirect_uri, "response_type": "code",
                             "scope": scope, "state": state}
    if agent_id is not None:
        query["agentid"] = str(agent_id)
    return f"{base.rstrip('/')}/connect/oauth2/authorize?{urlencode(query, quote_via=quote)}#wechat_redirect"


def check_code(code: str) -> str:
    """An OAuth code as WeCom hands it out: 1–512 bytes of printable ASCII."""
    if not code or len(code.encode("utf-8")) > MAX_CODE_BYTES or not code.isascii() or not code.isprintable():
        raise ValueError(Msg("the OAuth code must be 1–512 printable ASCII characters"))
    return code


class HourlyBudget:
    """At most ``limit`` uses in any sliding hour; ``take`` says how long to wait when there is none left."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic, window: float = 3600.0) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._uses: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """Use one (None), or the seconds until one is free again (nothing is used)."""
        with self._lock:
            now = self._clock()
            while self._uses and self._uses[0] <= now - self.window:
                self._uses.popleft()
            if len(self._uses) >= self.limit:
                return max(self._uses[0] + self.window - now, 0.001)
            self._uses.append(now)
            return None

    def used(self) -> int:
        with self._lock:
            now = self._clock()
            return sum(1 for t in self._uses if t > now - self.window)


_corp_budgets: dict[tuple[str, str], HourlyBudget] = {}
_budget_lock = threading.Lock()


def _corp_budget(api_base: str, corp_id: str, clock: Callable[[], float]) -> HourlyBudget:
    with _budget_lock:
        key = (api_base.rstrip("/"), corp_id)
        if key not in _corp_budgets:
            _corp_budgets[key] = HourlyBudget(CORP_TICKETS_PER_HOUR, clock=clock)
        return _corp_budgets[key]


class WeComApp:
    """One self-built app of one corp, as the sidebar uses it: sign-in and JS-SDK signatures."""

    def __init__(self, corp_id: str, agent_id: int, secret: str, *, api_base: str = DEFAULT_API_BASE,
                 rate_per_second: float = 10.0, client: WeComClient | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 corp_budget: HourlyBudget | None = None) -> None:
        if agent_id is None or int(agent_id) <= 0:
            raise ValueError(Msg("agent_id must be the AgentId of the self-built app (应用管理 › 自建 › AgentId)"))
        self.corp_id = corp_id
        self.agent_id = int(agent_id)
        self.client = client or WeComClient(corp_id, secret, api_base=api_base, rate_per_second=rate_per_second,
                                            clock=clock)
        self._wall_clock = wall_clock
        self.corp_budget = corp_budget or _corp_budget(self.client.api_base, corp_id, clock)
        self.app_budget = HourlyBudget(APP_TICKETS_PER_HOUR, clock=clock)
        self._clock = clock
        #: when each ticket kind was last fetched (monotonic seconds), for :meth:`refresh_tickets`
        self._fetched_at: dict[str, float] = {}
        self.corp_ticket = AccessTokenCache(lambda timeout: self._fetch_ticket("corp", timeout), margin=TICKET_MARGIN,
                                            clock=clock)
        self.agent_ticket = AccessTokenCache(lambda timeout: self._fetch_ticket("agent", timeout),
                                             margin=TICKET_MARGIN, clock=clock)

    def __repr__(self) -> str:  # never show the secret or a ticket
        return f"WeComApp(corp_id={self.corp_id!r}, agent_id={self.agent_id})"

    def close(self) -> None:
        self.client.close()

    # -- tickets ------------------------------------------------------------------------------------

    def _fetch_ticket(self, kind: str, timeout: float | None) -> tuple[str, float]:
        api = "get_jsapi_ticket" if kind == "corp" else "ticket/get"
        for budget, whose in ((self.app_budget, "this app"), (self.corp_budget, "this corp")):
            wait = budget.take()
            if wait is not None:
                raise WeComRetryable(Msg("WeCom %(api)s: %(whose)s already fetched %(limit)s jsapi tickets in the "
                                         "last hour (WeCom's limit); retry in %(wait)ss", api=api, whose=whose,
                                         limit=budget.limit, wait=format(wait, '.0f')), api=api, retry_after=wait)
        if kind == "corp":
            data = self.client.call("GET", "/cgi-bin/get_jsapi_ticket", api, timeout=timeout)
        else:
            data = self.client.call("GET", "/cgi-bin/ticket/get", api, params={"type": "agent_config"},
                                    timeout=timeout)
        ticket = data.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise WeComRetryable(Msg("WeCom %(api)s answered without a ticket", api=api), api=api)
        self._fetched_at[kind] = self._clock()
        return ticket, float(data.get("expires_in") or 7200)

    def refresh_tickets(self, min_age: float | None = None) -> bool:
        """The client said "invalid signature" for a signature of ours: forget tickets older than ``min_age``
        seconds, so the next signature uses fresh ones (WeCom may end a ticket before ``expires_in``).
        Younger tickets are kept — a page that keeps failing cannot make us fetch more than once a minute,
        and the hourly budget still applies. True when something was forgotten."""
        min_age = TICKET_RETRY_AFTER if min_age is None else min_age
        forgot = False
        for kind, cache in (("corp", self.corp_ticket), ("agent", self.agent_ticket)):
            fetched = self._fetched_at.get(kind)
            if fetched is not None and self._clock() - fetched >= min_age:
                cache.invalidate(cache.get())
                self._fetched_at.pop(kind, None)
                forgot = True
        return forgot

    def _sign(self, cache: AccessTokenCache, url: str, timestamp: int | None, nonce: str | None) -> Signature:
        page = sign_url(check_page_url(url))
        ticket = cache.get()
        stamp = int(self._wall_clock()) if timestamp is None else int(timestamp)
        nonce_str = nonce or new_nonce()
        return Signature(timestamp=stamp, nonce_str=nonce_str, url=page,
                         signature=jsapi_signature(ticket, nonce_str, stamp, page))

    def config_signature(self, url: str, *, timestamp: int | None = None, nonce: str | None = None) -> Signature:
        """Sign ``url`` with the corp ticket (``wx.config`` / ``getConfigSignature``)."""
        return self._sign(self.corp_ticket, url, timestamp, nonce)

    def agent_config_signature(self, url: str, *, timestamp: int | None = None,
                               nonce: str | None = None) -> Signature:
        """Sign ``url`` with the app ticket (``wx.agentConfig`` / ``getAgentConfigSignature``)."""
        return self._sign(self.agent_ticket, url, timestamp, nonce)

    # -- sign-in ------------------------------------------------------------------------------------

    def visitor(self, code: str) -> Visitor:
        """Exchange an OAuth code for who it belongs to (auth/getuserinfo). A used or expired code is
        WeCom's 40029, a :class:`WeComRejected`."""
        data = self.client.call("GET", "/cgi-bin/auth/getuserinfo", "auth/getuserinfo",
                                params={"code": check_code(code)})
        userid = data.get("userid") or data.get("UserId")
        openid = data.get("openid") or data.get("OpenId")
        if not userid and not openid:
            raise WeComRejected(Msg("WeCom auth/getuserinfo answered neither a userid nor an openid"),
                                api="auth/getuserinfo")
        return Visitor(userid=str(userid) if userid else None, openid=str(openid) if openid else None,
                       external_userid=str(data["external_userid"]) if data.get("external_userid") else None)


# -- one app object per (corp, app) per process ---------------------------------------------------------

_apps: SharedClients[WeComApp] = SharedClients()


def shared_app(corp_id: str, agent_id: int, secret: str, *, api_base: str = DEFAULT_API_BASE,
               rate_per_second: float = 10.0) -> WeComApp:
    """The process-wide :class:`WeComApp` (one token, one ticket cache of each kind, one budget); a changed
    secret or rate replaces it."""
    return _apps.get(api_base, f"{corp_id}/{agent_id}", secret, rate_per_second,
                     lambda: WeComApp(corp_id, agent_id, secret, api_base=api_base, rate_per_second=rate_per_second))


def reset_shared_apps() -> None:
    """Close and forget every shared app and the corp fetch counters (tests; a reconfiguration)."""
    _apps.reset()
    with _budget_lock:
        _corp_budgets.clear()
