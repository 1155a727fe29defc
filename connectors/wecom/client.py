"""WeCom (企业微信) server API client for 客户联系: welcome messages, 1:1 mass sends, customer tags.

Endpoints (all under ``api_base``, default ``https://qyapi.weixin.qq.com``; JSON bodies; the
``access_token`` in the query string):

==========================================  =====================================================
``GET  /cgi-bin/gettoken``                  ``corpid`` + ``corpsecret`` → ``access_token``,
                                            ``expires_in`` (cached until shortly before expiry)
``POST /cgi-bin/externalcontact/send_welcome_msg``  ``welcome_code`` (from the add-contact callback,
                                            valid 20 s, usable once), ``text.content``,
                                            ``attachments``
``POST /cgi-bin/externalcontact/add_msg_template``  企业群发: ``chat_type`` single, ``external_userid``
                                            list (≤ 10 000), ``sender``, ``text``, ``attachments``
                                            → ``msgid``, ``fail_list``
``POST /cgi-bin/externalcontact/mark_tag``  ``userid``, ``external_userid``, ``add_tag`` /
                                            ``remove_tag`` (corp tag ids)
``POST /cgi-bin/externalcontact/add_corp_tag``       a tag group and tags → their ids
``POST /cgi-bin/externalcontact/get_corp_tag_list``  the corp's tag groups
``GET  /cgi-bin/externalcontact/get``       one external contact (name, unionid, follow users)
==========================================  =====================================================

The secret is the 客户联系 secret, or the secret of a self-built app listed under 客户联系 › API ›
可调用应用. :func:`shared_client` keeps one client per account per process, so every activity thread
shares the token and the rate limiter.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.wecom.api_errors import (
    WECOM_TOKEN_ERRCODES,
    ApiError,
    WeComRejected,
    WeComRetryable,
    WelcomeCodeUnusable,
    wecom_error,
)
from connectors.wecom.transport import DEFAULT_MAX_WAIT, DEFAULT_TIMEOUT, PlatformClient, SharedClients, errcode_of
from wording import Msg

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
#: a welcome_code may be used within 20 seconds of the callback that carried it, once
WELCOME_CODE_TTL = 20.0
#: text content limit of welcome messages and mass sends (bytes of UTF-8)
MAX_TEXT_BYTES = 4000
MAX_ATTACHMENTS = 9
MAX_MASS_RECIPIENTS = 10_000
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")


@dataclass(frozen=True)
class MassSendResult:
    """add_msg_template's answer: the task id and the customers it could not include."""

    msgid: str
    fail_list: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CorpTagGroup:
    group_id: str
    group_name: str
    #: tag name → tag id
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExternalContact:
    external_userid: str
    name: str = ""
    unionid: str = ""
    #: 1 = a WeChat user, 2 = a WeCom user of another corp
    type: int | None = None
    follow_users: list[str] = field(default_factory=list)
    avatar: str = ""


def attachments_for(urls: Iterable[str]) -> list[dict[str, Any]]:
    """Message attachments from URLs: images as ``image.pic_url``, anything else as a ``link``."""
    out: list[dict[str, Any]] = []
    for url in urls:
        path = url.split("?", 1)[0].lower()
        if path.endswith(_IMAGE_SUFFIXES):
            out.append({"msgtype": "image", "image": {"pic_url": url}})
        else:
            title = url.rstrip("/").rsplit("/", 1)[-1][:64] or url[:64]
            out.append({"msgtype": "link", "link": {"title": title, "url": url}})
    if len(out) > MAX_ATTACHMENTS:
        raise WeComRejected(Msg("WeCom takes at most %(max_attachments)s attachments per message, got %(count)s",
                                max_attachments=MAX_ATTACHMENTS, count=len(out)))
    return out


def _check_text(text: str | None) -> None:
    if text is not None and len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise WeComRejected(Msg("the text is %(count)s bytes; WeCom takes at most %(max_text_bytes)s",
                                count=len(text.encode('utf-8')), max_text_bytes=MAX_TEXT_BYTES))


def _welcome_key(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:16]


class WeComClient(PlatformClient):
    """One corp's 客户联系 API, with a cached access token and a client-side rate limit."""

    platform = "WeCom"
    retryable_error = WeComRetryable
    rejected_error = WeComRejected
    token_errcodes = WECOM_TOKEN_ERRCODES

    def __init__(self, corp_id: str, secret: str, *, api_base: str = DEFAULT_API_BASE, rate_per_second: float = 10.0,
                 burst: float | None = None, timeout: float = DEFAULT_TIMEOUT, max_wait: float = DEFAULT_MAX_WAIT,
                 http: httpx.Client | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, wall_clock: Callable[[], float] = time.time) -> None:
        if not corp_id:
            raise ValueError(Msg("corp_id must not be empty (我的企业 › 企业信息 › 企业ID)"))
        if not secret:
            raise ValueError(Msg("secret must not be empty (客户联系 › API › Secret)"))
        self.corp_id = corp_id
        self._secret = secret
        self._wall_clock = wall_clock
        #: welcome_code → "sent" | "used" (WeCom refused it) | "unknown" (tried, no answer)
        self._welcome: OrderedDict[str, str] = OrderedDict()
        self._welcome_lock = threading.Lock()
        super().__init__(api_base, rate_per_second=rate_per_second, burst=burst, timeout=timeout, max_wait=max_wait,
                         http=http, clock=clock, sleep=sleep)

    def __repr__(self) -> str:  # never show the secret
        return f"WeComClient(corp_id={self.corp_id!r}, api_base={self.api_base!r})"

    def error_for(self, api: str, errcode: int, errmsg: str) -> ApiError:
        return wecom_error(api, errcode, errmsg)

    def _fetch_token(self, timeout: float | None = None) -> tuple[str, float]:
        data = self.request("GET", "/cgi-bin/gettoken", "gettoken",
                            params={"corpid": self.corp_id, "corpsecret": self._secret}, timeout=timeout)
        code = errcode_of(data)
        if code != 0:
            raise wecom_error("gettoken", code, str(data.get("errmsg") or ""))
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComRetryable(Msg("WeCom gettoken answered without an access_token"), api="gettoken")
        return token, float(data.get("expires_in") or 7200)

    # -- welcome messages ---------------------------------------------------------------------------

    def welcome_state(self, welcome_code: str) -> str | None:
        """What this process knows of a welcome_code: "sent", "used" (WeCom refused it), "unknown" (tried,
        no answer) or None."""
        with self._welcome_lock:
            return self._welcome.get(_welcome_key(welcome_code))

    def _mark_welcome(self, welcome_code: str, state: str) -> None:
        with self._welcome_lock:
            self._welcome[_welcome_key(welcome_code)] = state
            self._welcome.move_to_end(_welcome_key(welcome_code))
            while len(self._welcome) > 4096:
                self._welcome.popitem(last=False)

    def send_welcome_msg(self, welcome_code: str, text: str | None = None, attachments: Sequence[dict[str, Any]] = (),
                         *, issued_at: float | None = None) -> None:
        """Send the new-contact welcome message (新客户欢迎语) with a callback's ``welcome_code``.

        The code is valid 20 s after the callback and works once. ``issued_at`` (unix seconds of the
        callback) lets the client refuse a code that is already too old without calling WeCom, and
        bounds the wait for the rate limiter by the time the code has left. A code this process
        already used is refused locally (:class:`WelcomeCodeUnusable`); a code whose first attempt
        timed out is tried again (WeCom tells whether it went through).
        """
        if not welcome_code:
            raise ValueError(Msg("welcome_code must not be empty"))
        if not text and not attachments:
            raise ValueError(Msg("a welcome message needs a text or at least one attachment"))
        _check_text(text)
        state = self.welcome_state(welcome_code)
        if state in ("sent", "used"):
            raise WelcomeCodeUnusable(Msg("this welcome_code was already used to send a welcome message; each code "
                                          "works once"), api="send_welcome_msg")
        remaining = None
        if issued_at is not None:
            remaining = issued_at + WELCOME_CODE_TTL - self._wall_clock()
            if remaining <= 0 and state is None:
                raise WelcomeCodeUnusable(
                    Msg("the welcome_code is %(seconds)ss old; WeCom accepts it only within %(welcome_code_ttl)ss of "
                        "the add-contact callback", seconds=format(WELCOME_CODE_TTL - remaining, '.0f'),
                        welcome_code_ttl=format(WELCOME_CODE_TTL, '.0f')), api="send_welcome_msg")
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        wait = self.max_wait if remaining is None else max(0.0, min(self.max_wait, remaining))
        try:
            self.call("POST", "/cgi-bin/externalcontact/send_welcome_msg", "send_welcome_msg", body=body, wait=wait)
        except WelcomeCodeUnusable:
            self._mark_welcome(welcome_code, "used")
            raise
        except ApiError as exc:
            if exc.outcome_unknown:
                self._mark_welcome(welcome_code, "unknown")
            raise
        self._mark_welcome(welcome_code, "sent")

    # -- 企业群发 -------------------------------------------------------------------------------------

    def add_msg_template(self, external_userids: Sequence[str], text: str | None = None, *, sender: str | None = None,
                         attachments: Sequence[dict[str, Any]] = (), allow_select: bool = False) -> MassSendResult:
        """Create a 1:1 mass-send task (企业群发) to these customers.

        WeCom hands the task to the staff member (``sender``; without one, to the members the customers
        are contacts of), who confirms it in the WeCom client. Customers in ``fail_list`` were not
        included (no longer a contact of the sender, or over the per-customer limit).
        """
        recipients = list(dict.fromkeys(u for u in external_userids if u))
        if not recipients:
            raise ValueError(Msg("add_msg_template needs at least one external_userid"))
        if len(recipients) > MAX_MASS_RECIPIENTS:
            raise ValueError(Msg("add_msg_template takes at most %(max_mass_recipients)s customers per call",
                                 max_mass_recipients=MAX_MASS_RECIPIENTS))
        if not text and not attachments:
            raise ValueError(Msg("a mass send needs a text or at least one attachment"))
        _check_text(text)
        body: dict[str, Any] = {"chat_type": "single", "external_userid": recipients, "allow_select": allow_select}
        if sender:
            body["sender"] = sender
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        data = self.call("POST", "/cgi-bin/externalcontact/add_msg_template", "add_msg_template", body=body)
        msgid = data.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            raise WeComRejected(Msg("WeCom add_msg_template answered without a msgid"), api="add_msg_template")
        fail_list = [str(u) for u in data.get("fail_list") or []]
        return MassSendResult(msgid=msgid, fail_list=fail_list)

    # -- tags -----------------------------------------------------------------------------------------

    def mark_tag(self, userid: str, external_userid: str, add_tag: Sequence[str] = (),
                 remove_tag: Sequence[str] = ()) -> None:
        """Add / remove corp tags (by tag id) on a customer as seen by staff member ``userid``."""
        if not add_tag and not remove_tag:
            raise ValueError(Msg("mark_tag needs add_tag or remove_tag"))
        body: dict[str, Any] = {"userid": userid, "external_userid": external_userid}
        if add_tag:
            body["add_tag"] = list(add_tag)
        if remove_tag:
            body["remove_tag"] = list(remove_tag)
        self.call("POST", "/cgi-bin/externalcontact/mark_tag", "mark_tag", body=body)

    def get_corp_tag_list(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> list[CorpTagGroup]:
        body: dict[str, Any] = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        data = self.call("POST", "/cgi-bin/externalcontact/get_corp_tag_list", "get_corp_tag_list", body=body)
        return [_tag_group(g) for g in data.get("tag_group") or [] if isinstance(g, dict)]

    def add_corp_tag(self, tags: Sequence[str], *, group_name: str | None = None,
                     group_id: str | None = None) -> CorpTagGroup:
        """Create tags in a group (a new group named ``group_name``, or the existing ``group_id``)."""
        if not tags:
            raise ValueError(Msg("add_corp_tag needs at least one tag name"))
        if not group_name and not group_id:
            raise ValueError(Msg("add_corp_tag needs group_name (a new group) or group_id (an existing one)"))
        body: dict[str, Any] = {"tag": [{"name": name} for name in tags]}
        if group_id:
            body["group_id"] = group_id
        if group_name:
            body["group_name"] = group_name
        data = self.call("POST", "/cgi-bin/externalcontact/add_corp_tag", "add_corp_tag", body=body)
        group = data.get("tag_group")
        if not isinstance(group, dict):
            raise WeComRejected(Msg("WeCom add_corp_tag answered without a tag_group"), api="add_corp_tag")
        return _tag_group(group)

    def ensure_corp_tags(self, group_name: str, names: Sequence[str]) -> dict[str, str]:
        """Tag name → id for ``names`` in the group ``group_name``, creating what is missing."""
        wanted = list(dict.fromkeys(names))
        group = next((g for g in self.get_corp_tag_list() if g.group_name == group_name), None)
        found = dict(group.tags) if group else {}
        missing = [n for n in wanted if n not in found]
        if missing:
            created = self.add_corp_tag(missing, group_id=group.group_id if group else None,
                                        group_name=None if group else group_name)
            found.update(created.tags)
        return {n: found[n] for n in wanted if n in found}

    # -- contacts -------------------------------------------------------------------------------------

    def get_external_contact(self, external_userid: str, *, wait: float | None = None,
                             timeout: float | None = None) -> ExternalContact:
        """One customer's details (externalcontact/get): name, unionid (when the corp has bound a WeChat
        open platform account), the staff members who have them as a contact."""
        data = self.call("GET", "/cgi-bin/externalcontact/get", "externalcontact/get",
                         params={"external_userid": external_userid}, wait=wait, timeout=timeout)
        found = data.get("external_contact")
        contact: dict[str, Any] = found if isinstance(found, dict) else {}
        follow = [str(f["userid"]) for f in data.get("follow_user") or [] if isinstance(f, dict) and f.get("userid")]
        kind = contact.get("type")
        return ExternalContact(external_userid=str(contact.get("external_userid") or external_userid),
                               name=str(contact.get("name") or ""), unionid=str(contact.get("unionid") or ""),
                               type=kind if isinstance(kind, int) else None, follow_users=follow,
                               avatar=str(contact.get("avatar") or ""))


def _tag_group(group: dict[str, Any]) -> CorpTagGroup:
    tags = {str(t.get("name")): str(t.get("id")) for t in group.get("tag") or []
            if isinstance(t, dict) and t.get("name") and t.get("id") and not t.get("deleted")}
    return CorpTagGroup(group_id=str(group.get("group_id") or ""), group_name=str(group.get("group_name") or ""),
                        tags=tags)


# -- one client per account per process ---------------------------------------------------------------

_shared: SharedClients[WeComClient] = SharedClients()


def shared_client(corp_id: str, secret: str, *, api_base: str = DEFAULT_API_BASE,
                  rate_per_second: float = 10.0) -> WeComClient:
    """The process-wide client of this corp (one token cache, one rate limiter); a changed secret
    or rate replaces it."""
    return _shared.get(api_base, corp_id, secret, rate_per_second,
                       lambda: WeComClient(corp_id, secret, api_base=api_base, rate_per_second=rate_per_second))


def reset_shared_clients() -> None:
    """Close and forget every shared client (tests; a reconfiguration)."""
    _shared.reset()
