"""The loopback sink both products send their messages to, and the load generator that drives both.

The sink is a small asyncio HTTP/1.1 server on 127.0.0.1 (keep-alive, any path) that answers 200 to every
POST and remembers, for each body, the arrival time of the marker it carries (``bench-<run>-<n>``: the event
number, put there by the flow's template). The load generator POSTs events over a pool of keep-alive
connections (httpx), open-loop at a pace or closed-loop as fast as answers come back, honouring 429/503 +
Retry-After; it records when each event left, so event → message latency is the sink's arrival time minus
the send time, on one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

MARKER = re.compile(rb"bench-([a-z0-9]+)-(\d+)")


class Sink:
    """An HTTP server on 127.0.0.1 recording when each marked message arrived (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, int], float] = {}
        self.duplicates = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/messages"

    async def __aenter__(self) -> Sink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def seen(self, run: str, n: int) -> float | None:
        return self.arrivals.get((run, n))

    def count(self, run: str) -> int:
        return sum(1 for r, _ in self.arrivals if r == run)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip() or b"0")
                body = await reader.readexactly(length) if length else b""
                now = time.perf_counter()
                self.requests += 1
                for found in MARKER.finditer(body):
                    key = (found.group(1).decode(), int(found.group(2)))
                    if key in self.arrivals:
                        self.duplicates += 1
                    else:
                        self.arrivals[key] = now
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                             b'{"ok":true}')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@dataclass
class Sent:
    """What the load generator did in one run."""

    run: str
    sent_at: dict[int, float] = field(default_factory=dict)  # event number → perf_counter at send
    acked: int = 0
    refused: int = 0  # 429/503 answers (the event was sent again after Retry-After)
    errors: int = 0
    first_error: str = ""


Post = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


class Load:
    """Drives one target: ``post(client, n)`` sends event number ``n`` of the run."""

    def __init__(self, base_url: str, post: Post, connections: int = 64, headers: dict[str, str] | None = None
                 ) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60, headers=headers or {})
        self.post = post

    async def close(self) -> None:
        await self.client.aclose()

    async def _one(self, sent: Sent, n: int, deadline: float) -> None:
        while True:
            sent.sent_at[n] = time.perf_counter()
            try:
                r = await self.post(self.client, n)
            except httpx.HTTPError as exc:
                # no answer (a connection reset or timed out): the event may or may not be stored, so it is sent
                # again with the same id, as a client should (duplicates are acknowledged, not stored twice);
                # past the deadline it was never acknowledged and is not counted as lost
                sent.errors += 1
                sent.first_error = sent.first_error or f"{type(exc).__name__}: {exc}"
                if time.perf_counter() + 1 > deadline:
                    sent.sent_at.pop(n, None)
                    return
                await asyncio.sleep(1)
                continue
            if r.status_code in (429, 503):
                sent.refused += 1
                wait = float(r.headers.get("Retry-After", "1") or 1)
                if time.perf_counter() + wait > deadline:
                    sent.sent_at.pop(n, None)
                    return
                await asyncio.sleep(wait)
                continue
            if r.status_code >= 300:
                sent.errors += 1
                sent.first_error = sent.first_error or f"HTTP {r.status_code}: {r.text[:200]}"
                sent.sent_at.pop(n, None)
                return
            sent.acked += 1
            return

    async def paced(self, run: str, rate: float, count: int, start: int = 0, give_up_after: float = 120) -> Sent:
        """Open loop: event ``start + i`` leaves at ``i / rate`` s, whatever the answers do. An event told to come
        back later is sent again after Retry-After, unless that is past ``give_up_after`` s from the start."""
        sent = Sent(run)
        began = time.perf_counter()
        deadline = began + count / rate + give_up_after
        tasks = []
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(sent, start + i, deadline)))
        await asyncio.gather(*tasks)
        return sent

    async def fire(self, run: str, rate: float, count: int, give_up_after: float = 10
                   ) -> tuple[Sent, list[asyncio.Task[None]]]:
        """:meth:`paced`, returning once the last event has left (its answer and retries go on in the tasks)."""
        sent = Sent(run)
        began = time.perf_counter()
        deadline = began + count / rate + give_up_after
        tasks = []
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(sent, i, deadline)))
        return sent, tasks

    async def saturate(self, run: str, workers: int, seconds: float) -> Sent:
        """Closed loop: ``workers`` senders, each sending its next event when the last was answered."""
        sent = Sent(run)
        stop = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def worker() -> None:
            while time.perf_counter() < stop:
                await self._one(sent, next(counter), stop + 30)

        await asyncio.gather(*(worker() for _ in range(workers)))
        return sent


async def drain(sink: Sink, sent: Sent, timeout: float, settle: float = 2.0) -> int:
    """Wait until every acknowledged event of the run reached the sink (or nothing arrived for ``settle`` s
    after ``timeout``); returns how many are missing."""
    wanted = set(sent.sent_at)
    deadline = time.perf_counter() + timeout
    last, moved = -1, time.perf_counter()
    while True:
        arrived = sum(1 for n in wanted if (sent.run, n) in sink.arrivals)
        if arrived >= len(wanted):
            return 0
        if arrived != last:
            last, moved = arrived, time.perf_counter()
        if time.perf_counter() > deadline and time.perf_counter() - moved > settle:
            return len(wanted) - arrived
        await asyncio.sleep(0.05)


def latencies(sink: Sink, sent: Sent) -> list[float]:
    """Event → message at the sink, seconds, for each event that arrived."""
    out = []
    for n, t in sent.sent_at.items():
        arrived = sink.seen(sent.run, n)
        if arrived is not None:
            out.append(arrived - t)
    return out


def window_rate(sink: Sink, run: str, since: float, until: float) -> float:
    """Messages of ``run`` that arrived at the sink per second within [since, until]."""
    n = sum(1 for (r, _), t in sink.arrivals.items() if r == run and since <= t <= until)
    return n / max(until - since, 1e-9)


def payload(run: str, n: int) -> dict[str, Any]:
    return {"marker": f"bench-{run}-{n}"}
