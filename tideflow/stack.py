"""The embedded stack behind ``tideflow up``: Temporal dev server (SQLite file, so state survives
restarts), a worker and the web app, each its own process, plus demo data."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from temporalio.client import Client

from engine import payload_codec
from engine.settings import Settings, get_settings
from engine.text import Msg

if TYPE_CHECKING:
    from designer.i18n import Language

log = logging.getLogger(__name__)


#: the Temporal dev server's web UI listens on the frontend port + this, when it is on
UI_PORT_OFFSET = 1000
#: where the web app serves the Temporal UI (behind its admin login) when ``TIDEFLOW_TEMPORAL_UI`` is on
UI_PUBLIC_PATH = "/admin/temporal"


def private_data_dir(path: Path) -> Path:
    """Make the data directory readable by its owner only: the directory 0700, every file in it 0600
    (databases, their WAL files, the instance key, demo credentials), and files created from now on by
    this process and its children (the Temporal dev server's database) private too (umask 077)."""
    os.umask(0o077)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for child in path.iterdir():
        if child.is_file() and not child.is_symlink():
            child.chmod(0o600)
    return path


def temporal_ui_port(settings: Settings) -> int:
    return int(settings.temporal_address.rsplit(":", 1)[1]) + UI_PORT_OFFSET


def temporal_dev_server_args(settings: Settings, data: Path) -> list[str]:
    """The dev server's command line: frontend on the configured (loopback) address; its web UI off,
    or — with ``TIDEFLOW_TEMPORAL_UI=true`` — on loopback only, under the path the web app proxies
    behind its admin login."""
    from engine.temporal_bin import dev_server_path, dev_server_tuning

    host, _, port = settings.temporal_address.rpartition(":")
    args = [dev_server_path(), "server", "start-dev", "--db-filename", str((data / "temporal.db").resolve()),
            "--ip", host, "--port", port, "--log-level", "warn", *dev_server_tuning()]
    if settings.temporal_ui:
        args += ["--ui-ip", "127.0.0.1", "--ui-port", str(temporal_ui_port(settings)),
                 "--ui-public-path", UI_PUBLIC_PATH, "--ui-disable-news-fetch"]
    else:
        args.append("--headless")
    return args


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
                  ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {what} log above")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


async def connect(settings: Settings, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await payload_codec.connect(settings)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_worker(stop: asyncio.Event | None = None) -> None:
    """A worker process: interpreter + activities, and schedules kept in sync with published flows."""
    from engine import tracing
    from engine.db.session import upgrade

    settings = get_settings()
    upgrade()
    tracing.configure("tideflow-worker")  # only when TIDEFLOW_OTEL_ENDPOINT is set
    client = await connect(settings)
    async with worker_running(client):
        await (stop.wait() if stop else asyncio.Event().wait())


@contextlib.asynccontextmanager
async def worker_running(client: Client) -> AsyncIterator[None]:
    """Everything a worker runs on a connected client, until the block ends: the interpreter and activities
    polling the task queue, schedules (and shop / workforce syncs) kept in sync with what is published, and
    the lag reports admission control reads. A ``tideflow worker`` process runs it on its own client; with
    ``TIDEFLOW_WORKER_IN_WEB`` the web process runs it on the client its router starts journeys with, so
    they start eagerly (:func:`embedded_app`)."""
    from activities.workforce.runtime import ensure_running as ensure_workforce_sync
    from activities.workforce.runtime import fail_stranded_mass_sends
    from engine.db.models import utcnow
    from engine.pipeline import follow_ups_routed, report_lag
    from engine.router import Router
    from engine.scheduling import sync_schedules
    from engine.shop_sync import ensure_running as ensure_shop_sync
    from engine.worker import build_worker

    settings = get_settings()
    url = settings.resolved_database_url()
    if settings.worker_metrics_port:  # this worker's Prometheus metrics (event → action latency, …)
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr="127.0.0.1")

    async def keep_schedules() -> None:
        last_purge = 0.0
        while True:
            with contextlib.suppress(Exception):
                await sync_schedules(client, url, settings.task_queue)
            with contextlib.suppress(Exception):  # one shop-sync workflow per enabled Taobao/JD connector
                await ensure_shop_sync(client, url, settings.task_queue)
            with contextlib.suppress(Exception):  # one workforce sync (archive, groups) per WeCom connector
                await ensure_workforce_sync(client, url, settings.task_queue)
            with contextlib.suppress(Exception):  # a mass send whose start and withdrawal both failed: failed
                await fail_stranded_mass_sends(client, url, utcnow())
            if not last_purge or time.monotonic() - last_purge > 86400:
                last_purge = time.monotonic()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(purge_archive_now, url, settings.archive_retention_days)
            await asyncio.sleep(60)

    sync = asyncio.create_task(keep_schedules())
    # the worst event → action latency of each second, for the web processes' admission control
    lag = asyncio.create_task(report_lag(url, f"{socket.gethostname()}:{os.getpid()}"))
    try:
        # the follow-up events its actions commit (points, tiers, referral progress) are routed at once
        async with follow_ups_routed(Router(client, url, settings.task_queue)), \
                build_worker(client, settings.task_queue, url):
            print(f"worker on task queue '{settings.task_queue}' ready", flush=True)
            yield
    finally:
        sync.cancel()
        lag.cancel()


def embedded_app() -> FastAPI:
    """The web app with a worker in its own process (``tideflow web`` with ``TIDEFLOW_WORKER_IN_WEB=true``,
    ``tideflow up --one-process``): the router starts journeys with eager workflow start, so Temporal hands the first
    workflow task back in the start's answer instead of through the task queue."""
    from designer.app import create_app

    return create_app(worker=worker_running)


def purge_archive_now(url: str, days: int) -> int:
    """Delete archived messages older than the retention setting (0 keeps everything)."""
    from activities.profile.archive import purge_archive
    from activities.workforce.chat_archive import purge as purge_chats
    from engine.db.models import utcnow
    from engine.db.session import transaction

    if not days:
        return 0
    with transaction(url) as db:
        return purge_archive(db, days, utcnow()) + purge_chats(db, days, utcnow())


class Stack:
    """``tideflow up``: the Temporal dev server, a worker and the web app — or, with ``TIDEFLOW_WORKER_IN_WEB``
    (``tideflow up --one-process``), the web app with the worker in its process (eager workflow start, one
    Python process fewer)."""

    def __init__(self, settings: Settings, seed: bool = True, lang: Language = "en") -> None:
        self.settings = settings
        self.seed = seed
        self.lang = lang  # of the banner (the CLI's language); the credentials file is for scripts, English
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        from engine.db.session import upgrade
        from tideflow.demo import seed

        data = private_data_dir(self.settings.data_dir)
        host, _, port = self.settings.temporal_address.rpartition(":")
        if port_open(host, int(port)):
            print(f"using the Temporal server already at {self.settings.temporal_address}")
        else:
            temporal = self._spawn("temporal", temporal_dev_server_args(self.settings, data))
            wait_for_port(host, int(port), 60, "temporal dev server", temporal)
            private_data_dir(data)  # the files the dev server just made
        upgrade()
        report = seed() if self.seed else {}
        python = sys.executable
        if not self.settings.worker_in_web:  # else `tideflow web` runs it (the environment passes through)
            self._spawn("worker", [python, "-m", "tideflow.cli", "worker"])
        web = self._spawn("web", [python, "-m", "tideflow.cli", "web"])
        wait_for_port(self.settings.web_host, self.settings.web_port, 60, "web", web)
        self._announce(report)

    def _announce(self, report: dict[str, object]) -> None:
        from designer.i18n import translate

        url = f"http://{self.settings.web_host}:{self.settings.web_port}"
        said: list[Msg] = [
            Msg("Tideflow is running: %(url)s  (API docs: %(docs)s)", url=url, docs=f"{url}/docs"),
            Msg("Temporal UI: %(url)s (admins only)", url=f"{url}{UI_PUBLIC_PATH}/") if self.settings.temporal_ui
            else Msg("Temporal UI: off (TIDEFLOW_TEMPORAL_UI=true serves it to admins)")]
        admin = report.get("admin")
        if isinstance(admin, dict):
            said += [Msg("demo admin: %(username)s / %(password)s", username=admin["username"],
                         password=admin["password"]), Msg("API token: %(token)s", token=report["token"])]
            token_file = self.settings.data_dir / "demo-credentials.txt"
            token_file.write_text(f"username={admin['username']}\npassword={admin['password']}\n"
                                  f"token={report['token']}\n", encoding="utf-8")
            token_file.chmod(0o600)
        else:
            said.append(Msg("demo credentials: see %(path)s",
                            path=str(self.settings.data_dir / "demo-credentials.txt")))
        published = report.get("published")
        if isinstance(published, list) and published:
            said.append(Msg("published demo flows: %(flows)s", flows=", ".join(str(p) for p in published)))
        said.append(Msg("press Ctrl-C to stop"))
        print("\n".join(["", *(translate(line, self.lang) for line in said)]), flush=True)

    def healthy(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def stop(self) -> None:
        for name in ("web", "worker", "temporal"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


