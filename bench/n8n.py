"""n8n as the peer of the ingest benchmark: installed from npm into a cache outside the repository, given a
workflow equivalent to the Tideflow flow (Webhook in, respond immediately → HTTP Request to the sink),
imported and published through its CLI, and started on a free loopback port with its default SQLite
database and settings (telemetry, version checks and the personalisation survey off).

``BENCH_N8N_DIR`` (default ``~/.cache/tideflow-bench/n8n``) holds ``node_modules``; ``BENCH_N8N_VERSION``
(default :data:`VERSION`) is installed with ``npm install`` when missing. n8n pulls ``xlsx`` from a CDN that
is not the npm registry; the install overrides it with the registry's ``xlsx`` (used only by n8n's
spreadsheet nodes, which this workflow does not use).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.common import free_port
from bench.ingest import Target
from bench.sink import Sink, payload

VERSION = "2.8.4"


def home() -> Path:
    return Path(os.environ.get("BENCH_N8N_DIR") or Path.home() / ".cache" / "tideflow-bench" / "n8n")


def binary() -> Path:
    return home() / "node_modules" / ".bin" / "n8n"


def install(log: object = print) -> Path:
    """``npm install n8n@<version>`` into :func:`home` unless it is there; returns the n8n binary."""
    version = os.environ.get("BENCH_N8N_VERSION", VERSION)
    where = home()
    installed = where / "node_modules" / "n8n" / "package.json"
    if binary().exists() and installed.exists() and json.loads(installed.read_text())["version"] == version:
        return binary()
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed: n8n cannot be installed (apt-get install nodejs npm)")
    where.mkdir(parents=True, exist_ok=True)
    (where / "package.json").write_text(json.dumps({"name": "tideflow-bench-n8n", "private": True,
                                                    "overrides": {"xlsx": "0.18.5"}}))
    print(f"installing n8n {version} into {where} (once; takes a few minutes)", flush=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"n8n@{version}"], cwd=where,
                   check=True, timeout=1800)
    return binary()


def workflow(sink_url: str) -> dict[str, object]:
    webhook_id = str(uuid.uuid4())
    return {
        "id": "tfBench0000000001", "name": "bench: webhook → HTTP request", "active": True, "settings": {},
        "nodes": [
            {"id": str(uuid.uuid4()), "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
             "position": [0, 0], "webhookId": webhook_id,
             "parameters": {"httpMethod": "POST", "path": "bench", "responseMode": "onReceived", "options": {}}},
            {"id": str(uuid.uuid4()), "name": "Send to sink", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2,
             "position": [300, 0],
             "parameters": {"method": "POST", "url": sink_url, "sendBody": True, "specifyBody": "json",
                            "jsonBody": "={{ JSON.stringify({ marker: $json.body.payload.marker }) }}",
                            "options": {}}},
        ],
        "connections": {"Webhook": {"main": [[{"node": "Send to sink", "type": "main", "index": 0}]]}},
    }


@contextlib.asynccontextmanager
async def n8n(root: Path, sink: Sink) -> AsyncIterator[Target]:
    """n8n started on a free port with the bench workflow published."""
    import asyncio

    exe = install()
    folder = root / "n8n-home"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "N8N_USER_FOLDER": str(folder), "N8N_PORT": str(port), "N8N_LISTEN_ADDRESS": "127.0.0.1",
           "N8N_HOST": "127.0.0.1", "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
           "N8N_PERSONALIZATION_ENABLED": "false", "N8N_HIRING_BANNER_ENABLED": "false",
           "N8N_TEMPLATES_ENABLED": "false", "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
           "N8N_LOG_LEVEL": "warn", "N8N_SECURE_COOKIE": "false", "WEBHOOK_URL": f"http://127.0.0.1:{port}/"}
    document = root / "n8n-workflow.json"
    document.write_text(json.dumps(workflow(sink.url)))
    for argv in ([str(exe), "import:workflow", f"--input={document}"],
                 [str(exe), "publish:workflow", "--id=tfBench0000000001"]):
        done = await asyncio.to_thread(subprocess.run, argv, env=env, cwd=root, capture_output=True, text=True,
                                       timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:2])} failed: {done.stdout[-800:]} {done.stderr[-800:]}")
    log = (root / "n8n.log").open("ab")
    proc = subprocess.Popen([str(exe), "start"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"n8n exited ({proc.returncode}): {(root / 'n8n.log').read_text()[-1500:]}")
                try:
                    r = await probe.post("/webhook/bench", json={"payload": {"marker": "probe"}})
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"n8n did not answer on {base}: {(root / 'n8n.log').read_text()[-1500:]}")
                await asyncio.sleep(0.5)

        async def post(client: httpx.AsyncClient, run: str, n: int) -> httpx.Response:
            return await client.post("/webhook/bench", json={"id": f"{run}-{n}", "payload": payload(run, n)})

        yield Target(f"n8n {json.loads((home() / 'node_modules/n8n/package.json').read_text())['version']}", base, post,
                     pids={"n8n": proc.pid})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
