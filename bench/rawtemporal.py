"""The hand-written Temporal pipeline of the ingest benchmark, and the dev server's ceiling.

``python -m bench.rawtemporal --port P --temporal HOST:PORT --sink URL --queue Q [--eager]`` runs, in one
process, what someone would write by hand without Tideflow: a minimal HTTP endpoint (``POST /events``) that
starts one workflow per event, and a worker whose workflow's only step POSTs the event's marker to the sink.
No database, no web framework, no routing, no policies. Plain: a regular activity, started with a plain
start. ``--eager``: eager workflow start and a local activity — the fewest Temporal tasks an event can cost
(one start, one workflow task), i.e. the dev server's ceiling for this pipeline on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import timedelta
from functools import cache
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import httpx


@cache
def _http() -> httpx.Client:
    return httpx.Client(timeout=10)


@activity.defn(name="bench.raw_send")
def send(sink: str, marker: str) -> str:
    _http().post(sink, json={"marker": marker}).raise_for_status()
    return marker


@workflow.defn(name="BenchRawPipeline")
class RawPipeline:
    @workflow.run
    async def run(self, sink: str, marker: str, local: bool) -> str:
        if local:
            return str(await workflow.execute_local_activity(send, args=[sink, marker],
                                                             start_to_close_timeout=timedelta(seconds=30)))
        return str(await workflow.execute_activity(send, args=[sink, marker],
                                                   start_to_close_timeout=timedelta(seconds=30)))


async def serve(port: int, address: str, sink: str, queue: str, eager: bool) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=queue, workflows=[RawPipeline], activities=[send],
                    activity_executor=__import__("concurrent.futures").futures.ThreadPoolExecutor(64),
                    max_concurrent_activities=64)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line[15:].strip()) for line in head.split(b"\r\n")
                               if line[:15].lower() == b"content-length:"), 0)
                body: dict[str, Any] = json.loads(await reader.readexactly(length)) if length else {}
                marker = str(body.get("payload", {}).get("marker", ""))
                await client.start_workflow(RawPipeline.run, args=[sink, marker, eager],
                                            id=f"raw/{body.get('id') or uuid.uuid4().hex}", task_queue=queue,
                                            request_eager_start=eager)
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with worker:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        print("raw pipeline ready", flush=True)
        async with server:
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rawtemporal")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--temporal", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--eager", action="store_true")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.temporal, args.sink, args.queue, args.eager))


if __name__ == "__main__":
    main()
