"""Loopback stand-ins for WeCom's and the WeChat Official Account's server APIs, and callback builders.

Each fake is a real HTTP server on 127.0.0.1 (a thread) that speaks the documented protocol: the
``access_token`` in the query string, JSON bodies, ``{"errcode", "errmsg", …}`` answers. It checks the
shape of every request (problems are collected in ``fake.problems``; a test asserts it is empty),
keeps state the way the platform does (tokens expire, a welcome_code works once within 20 s), and
can be scripted to fail (``fake.fail_next("send_welcome_msg", -1)``).

What the documentation does not say, the fakes choose and say so: the errcode for an *expired* or
unknown welcome_code (41096 "invalid welcome_code" here; a used one is the documented 41051) and for
an unknown external contact (84061).

The callback builders produce real-format pushes: the WeCom event XML of the 客户联系 docs,
encrypted with :class:`connectors.wecom.WeComCrypto` under the official sample's token, key and
CorpID (tests/connectors/wecom_vectors.py).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from connectors.wechat_oa import compute_url_signature
from connectors.wecom import WeComCrypto
from tests.connectors.fake_wecom_contact_way import ContactWayFake, ParamQrFake
from tests.connectors.fake_wecom_groupchat import FakeWeComGroupChat
from tests.connectors.fake_wecom_jsapi import FakeWeComJsApi
from tests.connectors.fake_wecom_media import MediaApis
from tests.connectors.fake_wecom_transfer import FakeWeComTransfer
from tests.connectors.wecom_vectors import OA_APPID, OA_KEY, OA_TOKEN, WECOM_CORP_ID, WECOM_KEY, WECOM_TOKEN

__all__ = ["OA_APPID", "OA_KEY", "OA_TOKEN", "WECOM_CORP_ID", "WECOM_KEY", "WECOM_TOKEN"]

WECOM_SECRET = "wecom-contact-secret-for-tests"
OA_SECRET = "oa-app-secret-for-tests"


@dataclass
class Reply:
    """A scripted answer: a JSON object (``body``) with an HTTP status, optionally after a delay."""

    body: Any = field(default_factory=dict)
    status: int = 200
    delay: float = 0.0

    @classmethod
    def errcode(cls, code: int, errmsg: str = "scripted error") -> Reply:
        return cls({"errcode": code, "errmsg": errmsg})


@dataclass
class Seen:
    method: str
    path: str
    api: str
    query: dict[str, str]
    body: Any
    answer: Any = None


class FakePlatform:
    """Routing, recording, scripting and token bookkeeping shared by both fakes."""

    #: errcode for an unknown / invalid token, and for an expired one
    invalid_token_errcode = 40014
    expired_token_errcode = 42001

    def __init__(self) -> None:
        self.url = ""
        self.lock = threading.RLock()
        self.requests: list[Seen] = []
        self.problems: list[str] = []
        self.script: dict[str, list[Reply]] = {}
        self.now: Callable[[], float] = time.time
        self.token_ttl = 7200
        self._tokens: dict[str, float] = {}  # token → expiry (self.now() seconds)
        self._serial = itertools.count(1)

    # -- scripting and inspection -----------------------------------------------------------------
    def fail_next(self, api: str, *answers: int | Reply) -> None:
        """The next calls of ``api`` get these answers (an errcode, or a :class:`Reply`) before normal service."""
        with self.lock:
            self.script.setdefault(api, []).extend(Reply.errcode(a) if isinstance(a, int) else a for a in answers)

    def calls(self, api: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.requests if s.api == api]

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    # -- tokens -----------------------------------------------------------------------------------
    def new_token(self) -> str:
        token = f"tok-{next(self._serial)}-{int(self.now())}"
        with self.lock:
            self._tokens[token] = self.now() + self.token_ttl
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 'expired' (42001)."""
        with self.lock:
            for token in self._tokens:
                self._tokens[token] = self.now() - 1

    def revoke_tokens(self) -> None:
        """Every token issued so far now answers 'invalid' (40014): e.g. the secret was reset."""
        with self.lock:
            self._tokens.clear()

    def check_token(self, query: dict[str, str]) -> dict[str, Any] | None:
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        with self.lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return {"errcode": self.invalid_token_errcode, "errmsg": "invalid access_token"}
        if expiry <= self.now():
            return {"errcode": self.expired_token_errcode, "errmsg": "access_token expired"}
        return None

    # -- dispatch ---------------------------------------------------------------------------------
    routes: dict[str, tuple[str, str]] = {}  # path → (method, api name); handler is ``api_<api name>``

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes,
               content_type: str = "application/json") -> tuple[int, Any, float]:
        route = self.routes.get(path)
        api = route[1] if route else path
        body: Any = None
        if api in ("media/upload", "media/uploadimg") and hasattr(self, "upload"):  # multipart, not JSON
            with self.lock:
                self.requests.append(Seen(method, path, api, query, None))
            return 200, self.upload(api, query, content_type, raw), 0.0
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.problem(f"{api}: the body is not JSON")
        seen = Seen(method, path, api, query, body)
        with self.lock:
            self.requests.append(seen)
            scripted = self.script.get(api)
            reply = scripted.pop(0) if scripted else None
        if route is None:
            self.problem(f"unknown path {path}")
            return 404, {"errcode": 404, "errmsg": "not found"}, 0.0
        if method != route[0]:
            self.problem(f"{api}: {method} instead of {route[0]}")
            return 200, {"errcode": 43002 if route[0] == "POST" else 43001, "errmsg": "wrong method"}, 0.0
        if route[0] == "POST" and (raw and not isinstance(body, dict)):
            self.problem(f"{api}: the JSON body is not an object")
            return 200, {"errcode": 47001, "errmsg": "data format error"}, 0.0
        if reply is not None:
            seen.answer = reply.body
            return reply.status, reply.body, reply.delay
        answer = getattr(self, f"api_{api.replace('/', '_')}")(query, body if isinstance(body, dict) else {})
        seen.answer = answer
        return 200, answer, 0.0


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


class FakeWeCom(FakeWeComJsApi, MediaApis, ContactWayFake, FakePlatform, FakeWeComTransfer, FakeWeComGroupChat):
    """qyapi.weixin.qq.com for one corp: gettoken and the 客户联系 APIs Tideflow calls."""

    routes = {
        **ContactWayFake.contact_way_routes,
        "/cgi-bin/gettoken": ("GET", "gettoken"),
        "/cgi-bin/externalcontact/send_welcome_msg": ("POST", "send_welcome_msg"),
        "/cgi-bin/externalcontact/add_msg_template": ("POST", "add_msg_template"),
        "/cgi-bin/externalcontact/mark_tag": ("POST", "mark_tag"),
        "/cgi-bin/externalcontact/add_corp_tag": ("POST", "add_corp_tag"),
        "/cgi-bin/externalcontact/get_corp_tag_list": ("POST", "get_corp_tag_list"),
        "/cgi-bin/externalcontact/get": ("GET", "externalcontact/get"),
        **MediaApis.media_routes,
        **FakeWeComTransfer.routes_transfer,
        **FakeWeComGroupChat.routes_groupchat,
        **FakeWeComJsApi.jsapi_routes,
    }
    welcome_ttl = 20.0

    def __init__(self, corp_id: str = WECOM_CORP_ID, secret: str = WECOM_SECRET) -> None:
        super().__init__()
        self.corp_id, self.secret = corp_id, secret
        #: external_userid → {"name", "unionid", "follow_users": [...], "tags": set of tag ids}
        self.contacts: dict[str, dict[str, Any]] = {}
        #: welcome_code → (external_userid, issued at)
        self.welcome_codes: dict[str, tuple[str, float]] = {}
        self.used_codes: set[str] = set()
        #: what customers received: (external_userid, how, text, attachments)
        self.delivered: list[tuple[str, str, str, list[Any]]] = []
        self.tasks: list[dict[str, Any]] = []
        self.tag_groups: list[dict[str, Any]] = []
        self._media_init()
        self.init_contact_ways()

    def add_contact(self, external_userid: str, user_id: str, name: str = "", unionid: str = "") -> str:
        """A customer who has ``user_id`` as a contact; the welcome_code of that add."""
        with self.lock:
            contact = self.contacts.setdefault(external_userid, {"name": name, "unionid": unionid,
                                                                 "follow_users": [], "tags": set()})
            if user_id not in contact["follow_users"]:
                contact["follow_users"].append(user_id)
            code = f"WELCOMECODE-{next(self._serial)}"
            self.welcome_codes[code] = (external_userid, self.now())
        return code

    # -- APIs -------------------------------------------------------------------------------------
    def api_gettoken(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        return {"errcode": 0, "errmsg": "ok", "access_token": self.new_token(), "expires_in": self.token_ttl}

    def _text_and_attachments(self, api: str, body: dict[str, Any]) -> tuple[str, list[Any]] | dict[str, Any]:
        text = body.get("text")
        attachments = body.get("attachments", [])
        if text is not None and not (isinstance(text, dict) and isinstance(text.get("content"), str)):
            self.problem(f"{api}: text must be {{'content': str}}, got {text!r}")
            return {"errcode": 40058, "errmsg": "invalid text"}
        if not isinstance(attachments, list) or len(attachments) > 9 or any(
                not isinstance(a, dict) or a.get("msgtype") not in ("image", "link", "miniprogram", "video", "file")
                or not isinstance(a.get(a.get("msgtype", "")), dict) for a in attachments):
            self.problem(f"{api}: malformed attachments {attachments!r}")
            return {"errcode": 40058, "errmsg": "invalid attachments"}
        if text is None and not attachments:
            self.problem(f"{api}: neither text nor attachments")
            return {"errcode": 41033, "errmsg": "missing content"}
        if (refused := self.attachment_problem(api, attachments)) is not None:
            return refused
        content = text["content"] if text else ""
        if len(content.encode()) > 4000:
            self.problem(f"{api}: text over 4000 bytes")
            return {"errcode": 45002, "errmsg": "content size out of limit"}
        return content, attachments

    def api_send_welcome_msg(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        code = body.get("welcome_code")
        if not isinstance(code, str) or not code:
            self.problem("send_welcome_msg: no welcome_code")
            return {"errcode": 40058, "errmsg": "welcome_code missing"}
        parsed = self._text_and_attachments("send_welcome_msg", body)
        if isinstance(parsed, dict):
            return parsed
        with self.lock:
            issued = self.welcome_codes.get(code)
            if issued is None or self.now() - issued[1] > self.welcome_ttl:
                return {"errcode": 41096, "errmsg": "invalid welcome_code"}
            if code in self.used_codes:
                return {"errcode": 41051, "errmsg": "externaluser has started chatting"}
            self.used_codes.add(code)
            self.delivered.append((issued[0], "welcome", parsed[0], parsed[1]))
        return {"errcode": 0, "errmsg": "ok"}

    def api_add_msg_template(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        if body.get("chat_type", "single") not in ("single", "group"):
            self.problem(f"add_msg_template: chat_type {body.get('chat_type')!r}")
        if body.get("chat_type") == "group":
            return self._group_msg_template(body)
        recipients = body.get("external_userid")
        if not isinstance(recipients, list) or not _string_list(recipients) or not 1 <= len(recipients) <= 10_000:
            self.problem(f"add_msg_template: external_userid must be a list of 1..10000 ids, got {recipients!r}")
            return {"errcode": 40058, "errmsg": "invalid external_userid"}
        sender = body.get("sender")
        if sender is not None and not isinstance(sender, str):
            self.problem("add_msg_template: sender must be a string")
        parsed = self._text_and_attachments("add_msg_template", body)
        if isinstance(parsed, dict):
            return parsed
        with self.lock:
            fail = [u for u in recipients if u not in self.contacts
                    or (sender and sender not in self.contacts[u]["follow_users"])]
            msgid = f"msg{next(self._serial)}"
            self.tasks.append({"msgid": msgid, "sender": sender, "external_userid": recipients, "text": parsed[0]})
            for u in recipients:
                if u not in fail:
                    self.delivered.append((u, f"task:{sender or '*'}", parsed[0], parsed[1]))
            self.register_template(msgid, "single", sender, recipients, fail, parsed[0], parsed[1])
        return {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": msgid}

    def _group_msg_template(self, body: dict[str, Any]) -> dict[str, Any]:
        checked = self.group_template(body)
        if "errcode" in checked:
            return checked
        parsed = self._text_and_attachments("add_msg_template", body)
        if isinstance(parsed, dict):
            return parsed
        with self.lock:
            msgid = f"msg{next(self._serial)}"
            self.register_template(msgid, "group", body["sender"], checked["recipients"], checked["fail_list"],
                                   parsed[0], parsed[1])
        return {"errcode": 0, "errmsg": "ok", "fail_list": checked["fail_list"], "msgid": msgid}

    def api_mark_tag(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        userid, external = body.get("userid"), body.get("external_userid")
        add, remove = body.get("add_tag", []), body.get("remove_tag", [])
        if not isinstance(userid, str) or not isinstance(external, str) or not (add or remove) or not all(
                _string_list(x) or x == [] for x in (add, remove)):
            self.problem(f"mark_tag: malformed body {body!r}")
            return {"errcode": 40058, "errmsg": "invalid parameter"}
        with self.lock:
            known = {t["id"] for g in self.tag_groups for t in g["tag"]}
            if any(t not in known for t in [*add, *remove]):
                return {"errcode": 40068, "errmsg": "invalid tagid"}
            contact = self.contacts.get(external)
            if contact is None or userid not in contact["follow_users"]:
                return {"errcode": 84061, "errmsg": "not external contact"}
            contact["tags"] = (contact["tags"] | set(add)) - set(remove)
        return {"errcode": 0, "errmsg": "ok"}

    def api_add_corp_tag(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        tags = body.get("tag")
        if not isinstance(tags, list) or not tags or any(not isinstance(t, dict) or not t.get("name") for t in tags):
            self.problem(f"add_corp_tag: tag must be a list of {{'name': …}}, got {tags!r}")
            return {"errcode": 40058, "errmsg": "invalid tag"}
        with self.lock:
            group = next((g for g in self.tag_groups if g["group_id"] == body.get("group_id")), None)
            if group is None:
                if not body.get("group_name"):
                    self.problem("add_corp_tag: a new group needs group_name")
                    return {"errcode": 40058, "errmsg": "group_name missing"}
                group = {"group_id": f"et-group-{next(self._serial)}", "group_name": body["group_name"],
                         "create_time": int(self.now()), "order": 0, "tag": []}
                self.tag_groups.append(group)
            created = [{"id": f"et-tag-{next(self._serial)}", "name": t["name"], "create_time": int(self.now()),
                        "order": 0} for t in tags]
            group["tag"].extend(created)
            return {"errcode": 0, "errmsg": "ok", "tag_group": {**group, "tag": created}}

    def api_get_corp_tag_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        with self.lock:
            return {"errcode": 0, "errmsg": "ok", "tag_group": json.loads(json.dumps(self.tag_groups))}

    def api_externalcontact_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        external = query.get("external_userid", "")
        with self.lock:
            contact = self.contacts.get(external)
            if contact is None:
                return {"errcode": 84061, "errmsg": "not external contact"}
            details: dict[str, Any] = {"external_userid": external, "name": contact["name"], "type": 1, "gender": 0}
            if contact["unionid"]:
                details["unionid"] = contact["unionid"]
            if contact.get("avatar"):
                details["avatar"] = contact["avatar"]
            return {"errcode": 0, "errmsg": "ok", "external_contact": details,
                    "follow_user": [{"userid": u, "createtime": int(self.now())} for u in contact["follow_users"]]}


class FakeWeChatOA(ParamQrFake, FakePlatform):
    """api.weixin.qq.com for one Official Account: stable_token, template and custom messages, user/info."""

    invalid_token_errcode = 40001
    routes = {
        **ParamQrFake.qrcode_routes,
        "/cgi-bin/stable_token": ("POST", "stable_token"),
        "/cgi-bin/message/template/send": ("POST", "message/template/send"),
        "/cgi-bin/message/custom/send": ("POST", "message/custom/send"),
        "/cgi-bin/user/info": ("GET", "user/info"),
    }

    def __init__(self, app_id: str = OA_APPID, secret: str = OA_SECRET) -> None:
        super().__init__()
        self.app_id, self.secret = app_id, secret
        self.current: str | None = None
        #: openid → {"unionid": str, "last_interaction": float}
        self.followers: dict[str, dict[str, Any]] = {}
        self.templates: set[str] = {"TEMPLATE-ORDER"}
        self.delivered: list[tuple[str, str, Any]] = []  # (openid, "template:<id>" | "custom", data or text)
        self._client_msg_ids: dict[tuple[str, str], tuple[float, int]] = {}
        self.init_qrcodes()

    def follow(self, openid: str, unionid: str = "") -> None:
        with self.lock:
            self.followers[openid] = {"unionid": unionid, "last_interaction": self.now()}

    def api_stable_token(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if body.get("grant_type") != "client_credential":
            self.problem(f"stable_token: grant_type {body.get('grant_type')!r}")
        if body.get("appid") != self.app_id:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if body.get("secret") != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            self.problem("stable_token: force_refresh must be a boolean")
        with self.lock:
            if force or self.current is None or self.check_token({"access_token": self.current}) is not None:
                if force and self.current:
                    self._tokens.pop(self.current, None)
                self.current = self.new_token()
            return {"access_token": self.current, "expires_in": self.token_ttl}

    def api_message_template_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        openid, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not isinstance(openid, str) or not isinstance(template_id, str):
            self.problem(f"template/send: touser and template_id must be strings: {body!r}")
            return {"errcode": 47001, "errmsg": "data format error"}
        if not isinstance(data, dict) or any(not isinstance(v, dict) or not isinstance(v.get("value"), str)
                                             for v in data.values()):
            self.problem(f"template/send: data must be {{key: {{'value': str}}}}, got {data!r}")
            return {"errcode": 47003, "errmsg": "argument invalid! data.value invalid"}
        with self.lock:
            if template_id not in self.templates:
                return {"errcode": 40037, "errmsg": "invalid template_id"}
            if openid not in self.followers:
                return {"errcode": 43004, "errmsg": "require subscribe"}
            client_msg_id = body.get("client_msg_id")
            if client_msg_id is not None:
                earlier = self._client_msg_ids.get((openid, client_msg_id))
                if earlier is not None and self.now() - earlier[0] < 600:
                    return {"errcode": 0, "errmsg": "ok", "msgid": earlier[1]}
            msgid = 200_000_000 + next(self._serial)
            if client_msg_id is not None:
                self._client_msg_ids[(openid, client_msg_id)] = (self.now(), msgid)
            self.delivered.append((openid, f"template:{template_id}", {k: v["value"] for k, v in data.items()}))
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def api_message_custom_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        openid, text = body.get("touser"), body.get("text")
        if body.get("msgtype") != "text" or not isinstance(openid, str) or not (
                isinstance(text, dict) and isinstance(text.get("content"), str)):
            self.problem(f"custom/send: expected a text message, got {body!r}")
            return {"errcode": 47001, "errmsg": "data format error"}
        with self.lock:
            follower = self.followers.get(openid)
            if follower is None:
                return {"errcode": 43004, "errmsg": "require subscribe"}
            if self.now() - follower["last_interaction"] > 48 * 3600:
                return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
            self.delivered.append((openid, "custom", text["content"]))
        return {"errcode": 0, "errmsg": "ok"}

    def api_user_info(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if (bad := self.check_token(query)) is not None:
            return bad
        openid = query.get("openid", "")
        with self.lock:
            follower = self.followers.get(openid)
        if follower is None:
            return {"subscribe": 0, "openid": openid}
        info: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN",
                                "subscribe_time": int(follower["last_interaction"])}
        if follower["unionid"]:
            info["unionid"] = follower["unionid"]
        return info


def _handler(fake: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type") or ""
            if raw and not content_type.startswith(("application/json", "multipart/form-data")):
                fake.problem(f"{url.path}: Content-Type {content_type!r}")
            status, answer, delay = fake.handle(self.command, url.path, query, raw, content_type)
            if delay:
                time.sleep(delay)
            payload = answer if isinstance(answer, bytes) else json.dumps(answer, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8" if not isinstance(answer, bytes)
                                 else "text/html")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout tests)
                pass

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


F = TypeVar("F", bound=FakePlatform)


def serve(fake: F) -> Iterator[F]:
    """Run ``fake`` on a free port of 127.0.0.1 in a background thread while the iterator is open."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def fake_wecom() -> Iterator[FakeWeCom]:
    """A fake qyapi.weixin.qq.com on a free port of 127.0.0.1 (fresh shared clients around it)."""
    from connectors.wecom.client import reset_shared_clients

    reset_shared_clients()
    fake = FakeWeCom()
    yield from serve(fake)
    reset_shared_clients()


@pytest.fixture
def fake_oa() -> Iterator[FakeWeChatOA]:
    """A fake api.weixin.qq.com on a free port of 127.0.0.1 (fresh shared clients around it)."""
    from connectors.wechat_oa.client import reset_shared_clients

    reset_shared_clients()
    fake = FakeWeChatOA()
    yield from serve(fake)
    reset_shared_clients()


# -- real-format pushes --------------------------------------------------------------------------------

def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def contact_event_xml(change_type: str, external_userid: str, user_id: str = "zhangsan", *,
                      create_time: int | None = None, state: str = "", welcome_code: str = "",
                      corp_id: str = WECOM_CORP_ID, extra: str = "") -> str:
    """A change_external_contact event as WeCom pushes it (客户联系 › 回调通知 › 事件格式)."""
    parts = [
        f"<ToUserName>{cdata(corp_id)}</ToUserName>",
        f"<FromUserName>{cdata('sys')}</FromUserName>",
        f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
        f"<MsgType>{cdata('event')}</MsgType>",
        f"<Event>{cdata('change_external_contact')}</Event>",
        f"<ChangeType>{cdata(change_type)}</ChangeType>",
        f"<UserID>{cdata(user_id)}</UserID>",
        f"<ExternalUserID>{cdata(external_userid)}</ExternalUserID>",
    ]
    if state:
        parts.append(f"<State>{cdata(state)}</State>")
    if welcome_code:
        parts.append(f"<WelcomeCode>{cdata(welcome_code)}</WelcomeCode>")
    return "<xml>" + "".join(parts) + extra + "</xml>"


@dataclass
class SignedPush:
    query: dict[str, str]
    body: bytes

    def url(self, path: str) -> str:
        return f"{path}?{urllib.parse.urlencode(self.query)}"


def wecom_callback(plaintext: str, *, token: str = WECOM_TOKEN, key: str = WECOM_KEY, corp_id: str = WECOM_CORP_ID,
                   agent_id: str = "1000002", timestamp: int | None = None, nonce: str = "1597212914") -> SignedPush:
    """The encrypted POST WeCom makes: ``msg_signature``/``timestamp``/``nonce`` and the XML envelope."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    encrypt, signature = WeComCrypto(token, key, corp_id).encrypt(plaintext, ts, nonce)
    body = (f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt>"
            f"<AgentID>{cdata(agent_id)}</AgentID></xml>").encode()
    return SignedPush({"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body)


def wecom_url_check(echo: str = "1288432023552776189", *, timestamp: int | None = None,
                    nonce: str = "47744683") -> tuple[dict[str, str], str]:
    """The GET WeCom makes when the callback URL is saved: the query and the plaintext to answer."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    encrypt, signature = WeComCrypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORP_ID).encrypt(echo, ts, nonce)
    return {"msg_signature": signature, "timestamp": ts, "nonce": nonce, "echostr": encrypt}, echo


def oa_event_xml(openid: str, event: str, *, event_key: str | None = None, create_time: int | None = None,
                 to_user: str = "gh_3f3c8e2ba9d1", extra: str = "") -> str:
    """An Official Account event push (接收事件推送)."""
    parts = [f"<ToUserName>{cdata(to_user)}</ToUserName>", f"<FromUserName>{cdata(openid)}</FromUserName>",
             f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
             f"<MsgType>{cdata('event')}</MsgType>", f"<Event>{cdata(event)}</Event>"]
    if event_key is not None:
        parts.append(f"<EventKey>{cdata(event_key)}</EventKey>")
    return "<xml>" + "".join(parts) + extra + "</xml>"


def oa_text_xml(openid: str, content: str, msg_id: str, *, create_time: int | None = None,
                to_user: str = "gh_3f3c8e2ba9d1") -> str:
    """An Official Account ordinary text message (接收普通消息)."""
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>"
            f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId></xml>")


def oa_plain_push(xml: str, *, token: str = OA_TOKEN, timestamp: int | None = None,
                  nonce: str = "1320562132") -> SignedPush:
    """A plain-mode (明文模式) push: the URL signature in the query, the XML as the body."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return SignedPush({"signature": compute_url_signature(token, ts, nonce), "timestamp": ts, "nonce": nonce,
                       "openid": "o"}, xml.encode())


def oa_safe_push(xml: str, *, token: str = OA_TOKEN, key: str = OA_KEY, app_id: str = OA_APPID,
                 timestamp: int | None = None, nonce: str = "1320562132") -> SignedPush:
    """A safe-mode (安全模式) push: URL signature + msg_signature, the XML encrypted in <Encrypt>."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    encrypt, msg_signature = WeComCrypto(token, key, app_id).encrypt(xml, ts, nonce)
    body = f"<xml><ToUserName>{cdata('gh_3f3c8e2ba9d1')}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
    return SignedPush({"signature": compute_url_signature(token, ts, nonce), "timestamp": ts, "nonce": nonce,
                       "openid": "o", "encrypt_type": "aes", "msg_signature": msg_signature}, body.encode())
