"""The ``sms`` connector: text messages through a configurable HTTP gateway (channel ``sms``).

Outbound only. One delivery is one HTTP request to ``settings.url``: the body template rendered with
the customer's phone, the message and the idempotency key, the API key in the header named by
``auth_header``, and an ``Idempotency-Key`` header. The gateway's answer decides:

* 2xx and (when ``success_path`` is set) the value there is truthy / equals ``success_value`` →
  sent; the provider id is read at ``message_id_path`` (else the idempotency key is returned);
* 408, 425, 429, 5xx, a timeout or a connection error → :class:`SmsDeliveryError` with
  ``retryable=True`` (the retry carries the same ``{key}``: let the gateway dedupe on it);
* any other status, a redirect, or a 2xx whose success check fails → ``retryable=False``.

Phone numbers are masked and the API key is redacted in every error message.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.base import Connector, OutboundMessage
from connectors.sms.gateway import (
    MissingRecipient,
    SmsDeliveryError,
    classify,
    lookup,
    mask,
    matches,
    national,
    parse_template,
    render,
)
from wording import Msg

DEFAULT_TEMPLATE = '{"phone": "{phone}", "content": "{content}", "id": "{key}"}'
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED = {"host", "content-length", "transfer-encoding", "connection", "idempotency-key", "content-type"}
USER_AGENT = "Tideflow/0.1"
SNIPPET = 200


@lru_cache(maxsize=2)
def http_client(verify_tls: bool) -> httpx.Client:
    """One pooled client per TLS mode for the process (loading the CA bundle per send is slow); thread-safe."""
    return httpx.Client(verify=verify_tls, follow_redirects=False, headers={"User-Agent": USER_AGENT})


class SmsSettings(BaseModel):
    """The gateway: where to send, how to shape the request and how to read the answer."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, examples=["https://sms.example.com/v1/send"],
                     description="the gateway's send endpoint (http:// or https://)")
    method: Literal["POST", "PUT", "GET"] = Field(
        default="POST", description="POST/PUT send the rendered template as a JSON body; GET sends its (flat) "
                                    "fields as query parameters")
    body_template: str = Field(default=DEFAULT_TEMPLATE, max_length=10_000,
                               description="JSON with {phone}, {content} and {key} inside its strings")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (not secret)")
    auth_header: str = Field(default="Authorization", max_length=100,
                             description="header that carries the API key; empty: send no key")
    auth_scheme: str = Field(default="", max_length=40, examples=["Bearer"],
                             description="written before the key in that header (e.g. Bearer); empty: the key alone")
    success_path: str = Field(default="", max_length=200, examples=["code"],
                              description="dotted path into the JSON answer that must be truthy (or equal "
                                          "success_value); empty: any 2xx is success")
    success_value: str | None = Field(default=None, max_length=100, examples=["OK", "0"],
                                      description="the value expected at success_path, compared as text")
    message_id_path: str = Field(default="", max_length=200, examples=["data.msgid"],
                                 description="dotted path of the gateway's message id in the JSON answer")
    phone_format: Literal["e164", "national"] = Field(
        default="e164", description="e164: +8613800138000; national: 13800138000 for mainland numbers")
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="per request")
    verify_tls: bool = Field(default=True, description="check the gateway's certificate (off only for tests)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^\s/?#]+", value) or any(c.isspace() for c in value):
            raise ValueError(Msg("must be an absolute http:// or https:// URL without spaces"))
        return value

    @field_validator("body_template")
    @classmethod
    def _template(cls, value: str) -> str:
        parse_template(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name) or name.lower() in _RESERVED:
                raise ValueError(Msg("header %(name)s is not allowed (not a header name, or set by Tideflow)",
                                     name=repr(name)))
            if any(c in text for c in "\r\n") or not text.isascii():
                raise ValueError(Msg("header %(name)s must be ASCII without line breaks", name=repr(name)))
        return value

    @field_validator("auth_header")
    @classmethod
    def _auth_header(cls, value: str) -> str:
        if value and (not _TOKEN.match(value) or value.lower() in _RESERVED):
            raise ValueError(Msg("must be a header name such as Authorization or X-Api-Key"))
        return value

    @field_validator("auth_scheme")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value and not _TOKEN.match(value):
            raise ValueError(Msg("must be one word such as Bearer"))
        return value

    @model_validator(mode="after")
    def _get_is_flat(self) -> SmsSettings:
        if self.method == "GET":
            parsed = parse_template(self.body_template)
            if not isinstance(parsed, dict) or any(isinstance(v, dict | list) for v in parsed.values()):
                raise ValueError(Msg("with method GET, body_template must be a flat JSON object (its fields become "
                                     "query parameters)"))
        if self.success_value is not None and not self.success_path:
            raise ValueError(Msg("success_value needs success_path (where to find the value in the answer)"))
        return self


class SmsSecrets(BaseModel):
    """The gateway's API key; write-only, encrypted at rest."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    api_key: SecretStr = Field(default=SecretStr(""), description="sent in the auth_header header")


class SmsConnector(Connector):
    kind = "sms"
    label = {"zh-CN": "短信（HTTP 网关）", "en": "SMS (HTTP gateway)"}
    Settings = SmsSettings
    Secrets = SmsSecrets
    channels = ("sms",)

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        phone = str(message.identities.get("phone") or "").strip()
        if not phone:
            raise MissingRecipient(Msg("the customer has no phone identity, so there is nowhere to send this text; "
                                       "collect a phone number (events with customer.phone) or use another channel"))
        number = national(phone) if settings.phone_format == "national" else phone
        body = render(parse_template(settings.body_template),
                      {"phone": number, "content": message.content, "key": message.key})
        api_key = secrets.api_key.get_secret_value() if secrets.api_key else ""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **settings.headers,
                   "Idempotency-Key": message.key}
        if api_key and settings.auth_header:
            headers[settings.auth_header] = f"{settings.auth_scheme} {api_key}" if settings.auth_scheme else api_key

        def clean(text: str) -> str:
            for secret in (api_key, phone, number):
                if secret:
                    text = text.replace(secret, mask(secret) if secret in (phone, number) else "[redacted]")
            return text

        where = f"{settings.method} {settings.url.split('?')[0]}"
        try:
            client = http_client(settings.verify_tls)
            if settings.method == "GET":
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
                url = httpx.URL(settings.url).copy_merge_params(params)
                response = client.request("GET", url, headers=headers, timeout=settings.timeout_seconds)
            else:
                headers["Content-Type"] = "application/json; charset=utf-8"
                content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                response = client.request(settings.method, settings.url, content=content, headers=headers,
                                          timeout=settings.timeout_seconds)
        except httpx.TimeoutException as exc:
            raise SmsDeliveryError(Msg("%(where)s timed out after %(timeout_seconds)s s (%(name)s); will retry with "
                                       "the same key", where=where,
                                       timeout_seconds=format(settings.timeout_seconds,
                                                              'g'), name=type(exc).__name__), retryable=True) from None
        except httpx.TransportError as exc:
            raise SmsDeliveryError(Msg("%(where)s failed: %(name)s: %(exc)s; will retry", where=clean(where),
                                       name=type(exc).__name__, exc=clean(str(exc))), retryable=True) from None
        said = clean(" ".join(response.text[:SNIPPET].split()))
        verdict = classify(response.status_code)
        if verdict is not None:
            hint = Msg("will retry") if verdict else \
                Msg("retrying will not help: check the gateway settings and the number")
            raise SmsDeliveryError(Msg("%(where)s answered HTTP %(status_code)s: %(said)s (%(hint)s)", where=where,
                                       status_code=response.status_code, said=repr(said), hint=hint),
                                   retryable=verdict, status=response.status_code)
        if not (settings.success_path or settings.message_id_path):
            return message.key
        try:
            data = response.json()
        except ValueError:
            if settings.success_path:
                raise SmsDeliveryError(Msg("%(where)s answered HTTP %(status_code)s but not JSON (%(said)s), so "
                                           "success_path %(success_path)s cannot be checked; not retried, the text "
                                           "may have been sent", where=where, status_code=response.status_code,
                                           said=repr(said), success_path=repr(settings.success_path)),
                                       status=response.status_code) from None
            return message.key
        if settings.success_path:
            found, value = lookup(data, settings.success_path)
            if not found or not matches(value, settings.success_value):
                want = "truthy" if settings.success_value is None else repr(settings.success_value)
                raise SmsDeliveryError(Msg("%(where)s did not confirm the send: %(success_path)s is %(value)s, "
                                           "expected %(want)s; the gateway said %(said)s", where=where,
                                           success_path=repr(settings.success_path),
                                           value=clean(json.dumps(value, ensure_ascii=False)) if found else 'missing',
                                           want=want, said=repr(said)), status=response.status_code)
        if settings.message_id_path:
            found, value = lookup(data, settings.message_id_path)
            if found and isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return message.key
