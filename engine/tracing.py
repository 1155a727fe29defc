"""OpenTelemetry tracing from HTTP to message, across the web and worker processes.

Off unless ``TIDEFLOW_OTEL_ENDPOINT`` names an OTLP/HTTP collector (e.g. ``http://127.0.0.1:4318/v1/traces``;
``TIDEFLOW_OTEL_SERVICE`` names the process, default ``tideflow-web`` / ``tideflow-worker``). Then:

- the web app opens a server span per request (:class:`TraceRequests`, continuing a caller's W3C
  ``traceparent``);
- a routed event keeps that span's context through the routing pipeline's queue, so the router's
  ``StartWorkflow:Journey`` / ``SignalWithStartWorkflow`` span is its child;
- Temporal's :class:`~temporalio.contrib.opentelemetry.TracingInterceptor` (on the web's and the worker's
  client) carries the context in the workflow's headers: the worker's ``RunWorkflow:Journey`` and each action's
  ``StartActivity`` / ``RunActivity`` span (local activities too) join the same trace, down to the send.

docs/operations.md shows how to read a trace.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from functools import cache
from typing import Any

from opentelemetry import context, propagate, trace

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
_configured = False


def endpoint() -> str:
    return os.environ.get("TIDEFLOW_OTEL_ENDPOINT", "").strip()


def enabled() -> bool:
    """Whether spans are recorded: an exporter is configured, or a test installed an SDK provider."""
    return _configured or bool(endpoint())


def configure(service: str) -> bool:
    """Install the OTLP exporter for this process when ``TIDEFLOW_OTEL_ENDPOINT`` is set (once); True when on."""
    global _configured
    if _configured:
        return True
    url = endpoint()
    if not url:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
        "TIDEFLOW_OTEL_SERVICE", service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def use_provider(provider: Any) -> None:
    """Record spans with this (SDK) provider — tests give an in-memory one."""
    global _configured
    trace.set_tracer_provider(provider)
    _configured = True


def interceptors() -> list[Any]:
    """Temporal client interceptors: the tracing one when tracing is on."""
    if not enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


@cache
def tracer() -> trace.Tracer:
    return trace.get_tracer("tideflow")


@contextlib.contextmanager
def attached(ctx: context.Context) -> Iterator[None]:
    """Run the block in ``ctx`` (a context carried across a queue)."""
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def current() -> context.Context | None:
    """The active context, to carry across a queue (None when tracing is off)."""
    return context.get_current() if enabled() else None


class TraceRequests:
    """Pure ASGI middleware: one server span per HTTP request, named by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not enabled():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        parent = propagate.extract(headers)
        method = str(scope.get("method", "GET"))
        began = time.time_ns()
        span = tracer().start_span(f"{method} {scope.get('path', '')}", context=parent,
                                   kind=trace.SpanKind.SERVER, start_time=began,
                                   attributes={"http.request.method": method})
        status = 500

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "") or scope.get("path", ""))
            span.update_name(f"{method} {template}")
            span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            context.detach(token)
            span.end()
