"""n8n as the peer of the ingest benchmark: installed from npm into a cache outside the repository, given a
workflow equivalent to the Tideflow flow (Webhook in, respond immediately → HTTP Request to the sink),
imported and published through its CLI, and started on a free loopback port with its default SQLite
database and settings (telemetry, version checks and the personalisation survey off).

``BENCH_N8N_DIR`` (default ``~/.cache/tideflow-bench/n8n``) holds ``node_modules``; ``BENCH_N8N_VERSION``
(default :data:`VERSION`) is installed with ``npm install`` when missing. The import and the publishing (each
CLI call boots n8n: some 4 s of CPU, the first also creates the database) are done once per version and
workflow, into a user folder kept beside ``node_modules`` with a placeholder for the sink's address; each run
copies that folder and writes the sink's address into the copy's database. n8n pulls ``xlsx`` from a CDN that
is not the npm registry; the install overrides it with the registry's ``xlsx`` (used only by n8n's
spreadsheet nodes, which this workflow does not use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
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


#: the sink's address in the prepared user folder, replaced by the real one in each run's copy
PLACEHOLDER = "http://127.0.0.1:9/tideflow-bench-sink-placeholder"
WORKFLOW_ID = "tfBench0000000001"


def _id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tideflow-bench/{name}"))


def workflow(sink_url: str) -> dict[str, object]:
    webhook_id = _id("webhook")
    return {
        "id": WORKFLOW_ID, "name": "bench: webhook → HTTP request", "active": True, "settings": {},
        "nodes": [
            {"id": _id("node/webhook"), "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
             "position": [0, 0], "webhookId": webhook_id,
             "parameters": {"httpMethod": "POST", "path": "bench", "responseMode": "onReceived", "options": {}}},
            {"id": _id("node/send"), "name": "Send to sink", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2,
             "position": [300, 0],
             "parameters": {"method": "POST", "url": sink_url, "sendBody": True, "specifyBody": "json",
                            "jsonBody": "={{ JSON.stringify({ marker: $json.body.payload.marker }) }}",
                            "options": {}}},
        ],
        "connections": {"Webhook": {"main": [[{"node": "Send to sink", "type": "main", "index": 0}]]}},
    }


def environment(folder: Path, port: int) -> dict[str, str]:
    """n8n's settings: its user folder, a loopback port, telemetry, version checks and the survey off."""
    return {**os.environ, "N8N_USER_FOLDER": str(folder), "N8N_PORT": str(port), "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1", "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false", "N8N_HIRING_BANNER_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false", "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "N8N_LOG_LEVEL": "warn", "N8N_SECURE_COOKIE": "false", "WEBHOOK_URL": f"http://127.0.0.1:{port}/"}


def prepared(exe: Path) -> Path:
    """A user folder with the bench workflow imported and published through n8n's CLI, its sink address
    :data:`PLACEHOLDER`: made once per n8n version and workflow (beside ``node_modules``), copied by every run."""
    document = json.dumps(workflow(PLACEHOLDER), sort_keys=True)
    version = json.loads((home() / "node_modules" / "n8n" / "package.json").read_text())["version"]
    folder = home() / f"prepared-{version}-{hashlib.sha256(document.encode()).hexdigest()[:12]}"
    if folder.exists():
        return folder
    making = home() / f".{folder.name}-{uuid.uuid4().hex[:6]}"
    (making / "n8n-home").mkdir(parents=True)
    try:
        (making / "workflow.json").write_text(document)
        env = environment(making / "n8n-home", free_port())
        for argv in ([str(exe), "import:workflow", f"--input={making / 'workflow.json'}"],
                     [str(exe), "publish:workflow", f"--id={WORKFLOW_ID}"]):
            done = subprocess.run(argv, env=env, cwd=making, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[1:2])} failed: {done.stdout[-800:]} {done.stderr[-800:]}")
        making.rename(folder)
    finally:
        shutil.rmtree(making, ignore_errors=True)
    return folder


def point_at(database: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in every text value of an SQLite database; returns the rows changed."""
    changed = 0
    with contextlib.closing(sqlite3.connect(database)) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")').fetchall()]:
                changed += db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                                      f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                                      (old, new, old)).rowcount
        db.commit()
    return changed


@contextlib.asynccontextmanager
async def n8n(root: Path, sink: Sink) -> AsyncIterator[Target]:
    """n8n started on a free port with the bench workflow published."""
    import asyncio

    exe = install()
    template = await asyncio.to_thread(prepared, exe)
    folder = root / "n8n-home"
    await asyncio.to_thread(shutil.copytree, template / "n8n-home", folder)
    if not point_at(folder / ".n8n" / "database.sqlite", PLACEHOLDER, sink.url):
        raise RuntimeError(f"the sink's placeholder is not in {template}'s database: remove that folder")
    port = free_port()
    env = environment(folder, port)
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
        await asyncio.to_thread(stop, proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to n8n's process group; SIGKILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
