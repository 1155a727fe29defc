"""Request bodies are bounded while they are read, and JSON is parsed within limits (issue 18, item 5).

:class:`BodyLimit` is pure ASGI middleware: a request whose ``Content-Length`` is over the limit of its
path is answered 413 before a byte of the body is read; a body without a length (chunked) is counted
as it streams in and answered 413 the moment it passes the limit, so no route ever holds more than the
limit in memory. Limits by path (settings, see docs/security.md):

- ``/api/events`` — ``TIDEFLOW_MAX_BATCH_BYTES`` (10 MB; each event's payload is checked again against
  ``TIDEFLOW_MAX_EVENT_BYTES``)
- ``/hooks/…`` — ``TIDEFLOW_MAX_HOOK_BYTES`` (1 MB)
- everything else — ``TIDEFLOW_MAX_REQUEST_BYTES`` (10 MB)

Routes read JSON with :func:`json_body`, which uses engine/bounded_json.py (depth, string length,
UTF-8, surrogates) and turns its refusals into the API's error shape.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from designer.errors import ApiError
from engine import bounded_json
from engine.settings import Settings


class BodyTooLarge(Exception):
    pass


def limit_for(path: str, settings: Settings) -> tuple[int, str]:
    """The body limit of a path, and the setting that raises it."""
    if path == "/api/events" or path.startswith("/api/events/"):
        return settings.max_batch_bytes, "TIDEFLOW_MAX_BATCH_BYTES"
    if path.startswith("/hooks/"):
        return settings.max_hook_bytes, "TIDEFLOW_MAX_HOOK_BYTES"
    return settings.max_request_bytes, "TIDEFLOW_MAX_REQUEST_BYTES"


def _too_large_body(limit: int, setting: str) -> bytes:
    return json.dumps({"detail": {
        "message": f"the request body is larger than the limit of {limit} bytes", "field": "body",
        "fix": f"send less at a time (split a batch), or ask the operator to raise {setting}",
        "limit": limit, "setting": setting}}).encode()


#: where a JSON string may be as long as the body (a DMN document sent as {"xml": "..."})
LONG_STRING_PATHS = ("/api/decisions",)
#: the state key routes read the already parsed JSON body from (``request.state.json_body``)
PARSED = "json_body"


def _is_json(scope: Any) -> bool:
    media = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"").split(b";", 1)[0]
    media = media.strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class BodyLimit:
    """Bounds every request body while it is read; a JSON body (by its Content-Type) is also parsed
    within the JSON limits before any route sees it, so FastAPI's own body parsing never meets a body
    that would make it recurse or fail, and the parsed value is left in ``request.state.json_body``."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = limit_for(scope.get("path", ""), self.settings)
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await self._answer(send, 400, json.dumps({"detail": {
                    "message": "Content-Length is not a number", "field": "Content-Length",
                    "fix": "send a valid Content-Length or none"}}).encode())
                return
            if declared > limit:  # answered before a byte of the body is read
                await self._answer(send, 413, _too_large_body(limit, setting))
                return
        if scope.get("method") in ("POST", "PUT", "PATCH") and _is_json(scope) \
                and not scope.get("path", "").startswith("/hooks/"):  # /hooks checks after the connector's own
            await self._json(scope, receive, send, limit, setting)
            return
        seen = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._answer(send, 413, _too_large_body(limit, setting))

    async def _json(self, scope: Any, receive: Any, send: Any, limit: int, setting: str) -> None:
        """Read the whole body (never more than ``limit``), parse it within the JSON limits, then hand the
        route the same bytes."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._answer(send, 413, _too_large_body(limit, setting))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        path = scope.get("path", "")
        limits = bounded_json.Limits.from_settings(limit, setting)
        if path.startswith(LONG_STRING_PATHS):
            limits = bounded_json.Limits(limit, limits.max_depth, limit, setting)
        if body.strip():
            try:
                scope.setdefault("state", {})[PARSED] = bounded_json.parse(body, limits)
            except bounded_json.InputRejected as exc:
                if exc.syntax:  # not JSON at all: no limit was hit; the route answers in its own words
                    return await self.app(scope, self._replay(body, receive), send)
                detail = {"message": str(exc), "fix": exc.fix, "field": "body"}
                if exc.setting:
                    detail["setting"] = exc.setting
                await self._answer(send, exc.status, json.dumps({"detail": detail}).encode())
                return
        await self.app(scope, self._replay(body, receive), send)

    @staticmethod
    def _replay(body: bytes, receive: Any) -> Any:
        """A ``receive`` that hands the route the body already read, then the connection's own messages."""
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    async def _answer(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def rejected(exc: bounded_json.InputRejected, field: str = "body") -> ApiError:
    """The API's error for a body outside the limits."""
    extra: dict[str, Any] = {"setting": exc.setting} if exc.setting else {}
    return ApiError.of(exc, field, **extra)


async def json_body(request: Request, max_bytes: int | None = None, setting: str = "TIDEFLOW_MAX_REQUEST_BYTES"
                    ) -> Any:
    """The request's JSON body, parsed within the limits (a 4xx :class:`ApiError` otherwise); the value
    the middleware already parsed when the request said it was JSON."""
    state = request.scope.get("state") or {}
    if PARSED in state:
        return state[PARSED]
    body = await request.body()
    limits = bounded_json.Limits.from_settings(max_bytes, setting)
    try:
        return bounded_json.parse(body, limits)
    except bounded_json.InputRejected as exc:
        raise rejected(exc) from None
