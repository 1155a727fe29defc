"""action.webhook: call an outside URL, signed, idempotent on the receiver's side, retried by Temporal.

One attempt of the node is one HTTP request:

* ``Idempotency-Key: <workflow id>/<node id>/<visit>`` — the same on every retry of one visit, so the
  receiver can drop duplicates;
* ``X-Tideflow-Signature: t=<unix seconds>,v1=<hex>`` when ``secret_env`` names a secret (see
  :mod:`connectors.webhook.signing`; the signature covers the exact body bytes sent);
* ``User-Agent: Tideflow/0.1``, ``Content-Type: application/json`` (when there is a body),
  ``Accept: application/json``.

Outcomes: a 2xx response leaves by ``out`` with ``response_map`` applied to journey variables; a status
in ``retry_on_status`` (default 429 and 5xx), a connection error or a timeout raises a retryable error
(Temporal retries with backoff, then the node leaves by ``failed``); any other status, a bad rendered
URL/body/header or a missing secret raises :class:`~engine.actions.ActionFailed`: no retries, ``failed``
at once.

**The call runs outside any write transaction.** The node type is ``transactional = False``:
:func:`engine.actions.perform` gives :meth:`CallWebhook.run` a plain session (reads only: the customer for
templates and the default body), makes no write while the remote server takes its time, and records the
ledger row in a short transaction after the call returns.

Delivery is at-least-once: if the worker dies between the response and the commit, the retry sends
again with the same ``Idempotency-Key``, and the receiver is expected to dedupe on it. A recorded
result is never sent again.

The secret's value never leaves this module: it is not logged, not put into errors, details or
variables, and any text that would carry it (an error echoed by the receiver) is redacted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import Field, field_validator, model_validator

from connectors.webhook.signing import SIGNATURE_HEADER, sign_payload
from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Problem, Template
from engine.outbound import OutboundGuard, OutboundRefused, guarded_client, literal_ip
from engine.text import Msg, message_of

log = logging.getLogger(__name__)

USER_AGENT = "Tideflow/0.1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: headers a flow may not set: ours (they carry the guarantees) and those that describe the transport
RESERVED_HEADERS = frozenset(h.lower() for h in (
    SIGNATURE_HEADER, IDEMPOTENCY_HEADER, "Content-Length", "Host", "Transfer-Encoding", "Connection",
))
#: only environment variables with this prefix can be used as signing secrets, so a flow author cannot
#: make the worker sign with (and so expose a MAC of) an unrelated process secret
SECRET_ENV_PREFIX = "TIDEFLOW_WEBHOOK_"  # noqa: S105 (a name prefix, not a secret)
#: the largest response body read; bigger bodies are refused when ``response_map`` needs them
MAX_RESPONSE_BYTES = 1024 * 1024
#: the most JSON the mapped variables may add to the journey (they travel in every later activity call)
MAX_MAPPED_BYTES = 64 * 1024
#: how much of an error response is quoted in the failure message
ERROR_SNIPPET = 200
REDACTED = "[redacted]"

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VARIABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
_STATUS_CLASS = re.compile(r"^[45]xx$")
_ENV_NAME = re.compile(rf"^{SECRET_ENV_PREFIX}[A-Z0-9_]+$")


class WebhookRetryable(Exception):
    """A failure worth another attempt: 429/5xx (per ``retry_on_status``), a timeout, a network error."""


def _check_url_text(url: str, *, rendered: bool) -> str:
    """Refuse anything but an absolute http(s) URL with a host; return it stripped.

    A configured URL that still holds templates is checked for its literal ``http(s)://`` prefix only;
    the rendered URL is checked in full before it is called.
    """
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(Msg("the URL must start with http:// or https://"))
    if not rendered and ("{{" in url or "{%" in url):
        if url.split("//", 1)[1][:1] in ("", "/", "?", "#"):
            raise ValueError(Msg("the URL has no host"))
        return url
    if any(c.isspace() for c in url):
        raise ValueError(Msg("the URL must not contain spaces or line breaks (use the urlencode "
                             "filter)"))
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ValueError(Msg("the URL is not valid: %(exc)s", exc=exc)) from None
    if not parts.hostname:
        raise ValueError(Msg("the URL has no host"))
    return url


def _status_matches(status: int, rules: list[int | str]) -> bool:
    for rule in rules:
        if isinstance(rule, int) and rule == status:
            return True
        if isinstance(rule, str) and status // 100 == int(rule[0]):
            return True
    return False


class WebhookConfig(NodeConfig):
    url: Template = Field(min_length=1, max_length=2000,
                          description="http(s) URL to call; may use templates, e.g. {{ customer.id }}",
                          examples=["https://crm.example.com/hooks/tideflow"])
    method: Method = Field(default="POST", description="HTTP method; GET sends no body")
    headers: dict[str, Template] = Field(
        default={}, description="extra request headers; values may use templates",
        examples=[{"X-Shop": "{{ customer.shop }}"}])
    body: Template | None = Field(
        default=None, max_length=4000,
        description="a template that renders JSON (use | tojson for values); omitted sends "
                    "{customer: {id, name}, event, vars, journey}",
        examples=['{"member": {{ customer.id | tojson }}, "points": {{ vars.points | tojson }}}'])
    secret_env: str | None = Field(
        default=None, description=f"environment variable ({SECRET_ENV_PREFIX}…) holding the HMAC secret; "
                                  f"set it to sign the request with {SIGNATURE_HEADER}",
        examples=[f"{SECRET_ENV_PREFIX}SECRET_CRM"])
    timeout_seconds: float = Field(default=10, ge=1, le=60, description="request timeout in seconds (1–60)")
    response_map: dict[str, str] = Field(
        default={}, description="journey variable ← dotted path into the JSON response",
        examples=[{"points": "data.points"}])
    retry_on_status: list[int | str] = Field(
        default=[429, "5xx"],
        description="response statuses that are retried (numbers 400–599 or '4xx'/'5xx'); "
                    "other 4xx/5xx fail the node at once")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url_text(value, rendered=False)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER_NAME.match(name):
                raise ValueError(Msg("'%(name)s' is not a valid header name", name=name))
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(Msg("header '%(name)s' is set by Tideflow and cannot be configured",
                                     name=name))
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(Msg("must be the name of an environment variable starting with "
                                 "%(SECRET_ENV_PREFIX)s (upper case letters, digits, _), e.g. "
                                 "%(SECRET_ENV_PREFIX)sSECRET_CRM",
                                 SECRET_ENV_PREFIX=SECRET_ENV_PREFIX))
        return value

    @field_validator("response_map")
    @classmethod
    def _response_map(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if not _VARIABLE.match(name):
                raise ValueError(Msg("variable name '%(name)s' must be letters, digits and _, starting with "
                                     "a letter",
                                     name=name))
            if not _PATH.match(path):
                raise ValueError(Msg("path '%(path)s' for '%(name)s' must be dotted keys like 'data.points' "
                                     "or 'items.0.id'",
                                     path=path, name=name))
        return value

    @field_validator("retry_on_status")
    @classmethod
    def _retry_on_status(cls, value: list[int | str]) -> list[int | str]:
        out: list[int | str] = []
        for rule in value:
            if isinstance(rule, str) and rule.isdigit():
                rule = int(rule)
            if isinstance(rule, int) and not 400 <= rule <= 599:
                raise ValueError(Msg("status %(rule)s is not an error status (400–599)",
                                     rule=rule))
            if isinstance(rule, str) and not _STATUS_CLASS.match(rule.lower()):
                raise ValueError(Msg("'%(rule)s' must be a status 400–599, '4xx' or '5xx'",
                                     rule=rule))
            out.append(rule.lower() if isinstance(rule, str) else rule)
        return out

    @model_validator(mode="after")
    def _body_and_method(self) -> WebhookConfig:
        if self.method == "GET" and self.body is not None:
            raise ValueError(Msg("a GET request has no body: remove 'body' or use POST"))
        return self


def _safe_url(url: str) -> str:
    """The URL without user info, query or fragment: what may go into logs and details."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid url>"


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, REDACTED) if secret else text


def _scrub(value: Any, secret: str | None) -> Any:
    """``value`` with every occurrence of the secret replaced (strings, lists and dicts, recursively)."""
    if not secret:
        return value
    if isinstance(value, str):
        return _redact(value, secret)
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    if isinstance(value, dict):
        return {_redact(str(k), secret): _scrub(v, secret) for k, v in value.items()}
    return value


_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """Follow a dotted path (``data.items.0.id``) into parsed JSON; ``_MISSING`` when it is not there."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?[0-9]+", part):
            index = int(part)
            if not -len(current) <= index < len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class CallWebhook(NodeType):
    type = "action.webhook"
    category = "action"
    label = {"zh-CN": "调用 Webhook", "en": "Call webhook"}
    description = {"zh-CN": "调用外部 URL（签名、幂等键、失败重试），把响应写入旅程变量",
                   "en": "Call an outside URL (signed, idempotency key, retries); map the response into variables"}
    Config = WebhookConfig
    ports = ("out", "failed")
    failure_port = "failed"
    transactional = False  # an HTTP call: no write lock held while waiting; idempotent by key
    #: the activity's start-to-close timeout: the largest request timeout (60 s) for connecting and for
    #: reading, plus room for the ledger commit. The per-node ``timeout_seconds`` is enforced by httpx.
    timeout = timedelta(seconds=135)
    max_attempts = 5

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        problems = []
        for name, source in config.headers.items():
            try:
                expressions.compile_template(source)
            except expressions.ExpressionError as exc:
                problems.append(Problem(None, f"headers.{name}", Msg("template %(error)s", error=str(exc)),
                                        Msg("fix the template"), "bad_template"))
        return problems

    # -- request ---------------------------------------------------------------------------------
    @classmethod
    def _render(cls, ctx: ActionContext, what: str, source: str, scope: Mapping[str, Any]) -> str:
        try:
            return expressions.render(source, scope)
        except expressions.ExpressionError as exc:
            raise ActionFailed(Msg("webhook node '%(node)s': %(what)s: %(detail)s", node=ctx.node_id, what=what,
                                   detail=message_of(exc))) from None

    @classmethod
    def _body(cls, ctx: ActionContext, config: WebhookConfig, scope: Mapping[str, Any]) -> bytes | None:
        if config.method == "GET":
            return None
        if config.body is None:
            customer = ctx.customer
            document: Any = {
                "customer": {"id": customer.get("id", ctx.customer_id), "name": customer.get("name")},
                "event": ctx.event,
                "vars": ctx.variables,
                "journey": {"id": ctx.workflow_id, "flow": ctx.flow_id, "version": ctx.request.version,
                            "node": ctx.node_id},
            }
        else:
            text = cls._render(ctx, "body", config.body, scope)
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ActionFailed(Msg(
                    "webhook node '%(node)s': the body template did not render JSON (%(detail)s at line %(line)s "
                    "column %(column)s); put values in with the tojson filter, e.g. %(example)s",
                    node=ctx.node_id, detail=exc.msg, line=exc.lineno, column=exc.colno,
                    example="{{ customer.name | tojson }}")) from None
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    @classmethod
    def _secret(cls, ctx: ActionContext, config: WebhookConfig) -> str | None:
        if config.secret_env is None:
            return None
        secret = os.environ.get(config.secret_env)
        if not secret:
            raise ActionFailed(Msg(
                "webhook node '%(node)s': the signing secret environment variable %(name)s is not set (or empty) "
                "on the worker; set it and restart the worker", node=ctx.node_id, name=config.secret_env))
        return secret

    @classmethod
    def _headers(cls, ctx: ActionContext, config: WebhookConfig, scope: Mapping[str, Any],
                 body: bytes | None, secret: str | None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for name, source in config.headers.items():
            value = cls._render(ctx, f"header {name}", source, scope)
            if "\r" in value or "\n" in value:
                raise ActionFailed(Msg("webhook node '%(node)s': header %(name)s rendered a line break",
                                       node=ctx.node_id, name=name))
            if not value.isascii():
                raise ActionFailed(Msg("webhook node '%(node)s': header %(name)s rendered non-ASCII text; header "
                                       "values must be ASCII (use the urlencode filter)", node=ctx.node_id, name=name))
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value
        headers[IDEMPOTENCY_HEADER] = ctx.key
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign_payload(secret, body or b"", int(time.time()))
        return headers

    # -- the call ----------------------------------------------------------------------------------
    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        assert isinstance(config, WebhookConfig)
        scope = ctx.expression_context()
        rendered_url = cls._render(ctx, "url", config.url, scope)
        try:
            url = _check_url_text(rendered_url, rendered=True)
        except ValueError as exc:
            raise ActionFailed(Msg("webhook node '%(node)s': the rendered URL %(url)s: %(detail)s", node=ctx.node_id,
                                   url=repr(_safe_url(rendered_url)), detail=message_of(exc))) from None
        safe = _safe_url(url)
        body = cls._body(ctx, config, scope)
        host = urlsplit(url).hostname or ""
        if literal_ip(host) is not None:  # an address written out is refused before anything, preview included
            cls._refuse_unless_allowed(ctx, host, urlsplit(url).port or 80, safe)
        if ctx.simulate:  # preview: render everything, call nothing
            return ActionResult(port="out", detail={"status": "dry-run", "method": config.method, "url": safe})
        secret = cls._secret(ctx, config)
        headers = cls._headers(ctx, config, scope, body, secret)
        try:
            return cls._call(ctx, config, url, safe, headers, body, secret)
        except (ActionFailed, WebhookRetryable):
            raise
        except Exception as exc:  # never let a secret ride out on an unexpected error
            raise WebhookRetryable(_redact(f"{type(exc).__name__} calling {safe}: {exc}", secret)) from None

    @classmethod
    def _refuse_unless_allowed(cls, ctx: ActionContext, host: str, port: int, safe: str) -> None:
        try:
            OutboundGuard.from_settings().check(host, port)
        except OutboundRefused as exc:
            raise ActionFailed(Msg("webhook node '%(node)s': %(where)s refused: %(detail)s", node=ctx.node_id,
                                   where=safe, detail=message_of(exc))) from None

    @classmethod
    def _call(cls, ctx: ActionContext, config: WebhookConfig, url: str, safe: str, headers: dict[str, str],
              body: bytes | None, secret: str | None) -> ActionResult:
        started = time.monotonic()
        deadline = started + config.timeout_seconds
        where = f"{config.method} {safe}"
        try:
            # the guard resolves the host, refuses loopback/private/metadata addresses and connects to the
            # address it checked (engine/outbound.py)
            with guarded_client(timeout=httpx.Timeout(config.timeout_seconds), follow_redirects=False) as client, \
                    client.stream(config.method, url, headers=headers, content=body) as response:
                status = response.status_code
                content_type = response.headers.get("content-type", "")
                wants_body = bool(config.response_map) and 200 <= status < 300
                raw = cls._read(response, deadline, where, MAX_RESPONSE_BYTES if wants_body else ERROR_SNIPPET)
        except OutboundRefused as exc:  # not worth a retry: the address will not change its nature
            raise ActionFailed(Msg("webhook node '%(node)s': %(where)s refused: %(detail)s", node=ctx.node_id,
                                   where=where, detail=message_of(exc))) from None
        except httpx.TimeoutException as exc:
            raise WebhookRetryable(Msg("%(where)s timed out after %(seconds)s s (%(error)s)", where=where,
                                       seconds=format(config.timeout_seconds, "g"), error=type(exc).__name__)) from None
        except httpx.HTTPError as exc:
            raise WebhookRetryable(Msg("%(where)s failed: %(error)s: %(detail)s", where=_redact(where, secret),
                                       error=type(exc).__name__, detail=_redact(str(exc), secret))) from None
        elapsed_ms = round((time.monotonic() - started) * 1000)
        log.info("webhook %s at %s: HTTP %s in %d ms", where, ctx.key, status, elapsed_ms)

        if not 200 <= status < 300:
            snippet = _redact(raw[:ERROR_SNIPPET].decode("utf-8", "replace"), secret)
            said = f": {snippet!r}" if snippet.strip() else ""
            if _status_matches(status, config.retry_on_status):
                raise WebhookRetryable(Msg("%(where)s answered HTTP %(status)s (retryable)%(said)s", where=where,
                                           status=status, said=said))
            if 300 <= status < 400:
                raise ActionFailed(Msg(
                    "webhook node '%(node)s': %(where)s answered HTTP %(status)s redirecting to %(location)s; "
                    "redirects are not followed, configure the final URL", node=ctx.node_id, where=where,
                    status=status, location=repr(_safe_url(response.headers.get("location", "")))))
            raise ActionFailed(Msg("webhook node '%(node)s': %(where)s answered HTTP %(status)s%(said)s",
                                   node=ctx.node_id, where=where, status=status, said=said))

        detail: dict[str, Any] = {"status": status, "elapsed_ms": elapsed_ms, "method": config.method, "url": safe}
        variables: dict[str, Any] = {}
        if config.response_map:
            if not _is_json(content_type):
                raise ActionFailed(Msg(
                    "webhook node '%(node)s': %(where)s answered %(content_type)s, not JSON, so response_map cannot "
                    "be applied", node=ctx.node_id, where=where, content_type=repr(content_type or "no content type")))
            try:
                document = json.loads(raw)
            except ValueError as exc:
                raise ActionFailed(Msg("webhook node '%(node)s': %(where)s answered invalid JSON: %(detail)s",
                                       node=ctx.node_id, where=where, detail=str(exc))) from None
            missing = []
            for name, path in config.response_map.items():
                value = lookup(document, path)
                if value is _MISSING:
                    missing.append(name)
                else:
                    variables[name] = _scrub(value, secret)
            size = len(json.dumps(variables, ensure_ascii=False, default=str).encode("utf-8"))
            if size > MAX_MAPPED_BYTES:
                raise ActionFailed(Msg(
                    "webhook node '%(node)s': the mapped variables %(names)s come to %(count)s bytes of JSON; the "
                    "limit is %(limit)s: map smaller parts of the response", node=ctx.node_id,
                    names=", ".join(sorted(variables)), count=size, limit=MAX_MAPPED_BYTES))
            detail["mapped"] = sorted(variables)
            if missing:
                detail["missing"] = sorted(missing)
        return ActionResult(port="out", variables=variables, detail=detail)

    @staticmethod
    def _read(response: httpx.Response, deadline: float, where: str, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (refusing a larger JSON body), within the overall deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"{where}: the response body took longer than the timeout")
            if size > limit:
                if limit == MAX_RESPONSE_BYTES:
                    raise ActionFailed(Msg("%(where)s answered more than %(count)s bytes; response_map reads at "
                                           "most 1 MiB", where=where, count=MAX_RESPONSE_BYTES))
                break
        return b"".join(chunks)
