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

from temporalio.client import Client

from engine.settings import Settings, get_settings

log = logging.getLogger(__name__)


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
    from engine import tracing

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                        interceptors=tracing.interceptors())
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_worker(stop: asyncio.Event | None = None) -> None:
    """A worker process: interpreter + activities, and schedules kept in sync with published flows."""
    from activities.workforce.runtime import ensure_running as ensure_workforce_sync
    from engine import tracing
    from engine.db.session import upgrade
    from engine.scheduling import sync_schedules
    from engine.shop_sync import ensure_running as ensure_shop_sync
    from engine.worker import build_worker

    settings = get_settings()
    upgrade()
    tracing.configure("tideflow-worker")  # only when TIDEFLOW_OTEL_ENDPOINT is set
    client = await connect(settings)
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
            if not last_purge or time.monotonic() - last_purge > 86400:
                last_purge = time.monotonic()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(purge_archive_now, url, settings.archive_retention_days)
            await asyncio.sleep(60)

    from engine.pipeline import report_lag

    sync = asyncio.create_task(keep_schedules())
    # the worst event → action latency of each second, for the web processes' admission control
    lag = asyncio.create_task(report_lag(url, f"{socket.gethostname()}:{os.getpid()}"))
    try:
        async with build_worker(client, settings.task_queue, url):
            print(f"worker on task queue '{settings.task_queue}' ready", flush=True)
            await (stop.wait() if stop else asyncio.Event().wait())
    finally:
        sync.cancel()
        lag.cancel()


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
    def __init__(self, settings: Settings, seed: bool = True) -> None:
        self.settings = settings
        self.seed = seed
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        from engine.db.session import upgrade
        from engine.temporal_bin import dev_server_path
        from tideflow.demo import seed

        data = self.settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        host, _, port = self.settings.temporal_address.partition(":")
        if port_open(host, int(port)):
            print(f"using the Temporal server already at {self.settings.temporal_address}")
        else:
            temporal = self._spawn("temporal", [
                dev_server_path(), "server", "start-dev", "--db-filename", str((data / "temporal.db").resolve()),
                "--ip", host, "--port", port, "--ui-port", str(int(port) + 1000), "--log-level", "warn",
                "--ui-disable-news-fetch"])
            wait_for_port(host, int(port), 60, "temporal dev server", temporal)
        upgrade()
        report = seed() if self.seed else {}
        python = sys.executable
        self._spawn("worker", [python, "-m", "tideflow.cli", "worker"])
        web = self._spawn("web", [python, "-m", "tideflow.cli", "web"])
        wait_for_port(self.settings.web_host, self.settings.web_port, 60, "web", web)
        self._announce(report)

    def _announce(self, report: dict[str, object]) -> None:
        url = f"http://{self.settings.web_host}:{self.settings.web_port}"
        lines = ["", f"Tideflow is running: {url}  (API docs: {url}/docs)",
                 f"Temporal UI: http://{self.settings.temporal_address.split(':')[0]}:"
                 f"{int(self.settings.temporal_address.split(':')[1]) + 1000}"]
        admin = report.get("admin")
        if isinstance(admin, dict):
            lines += [f"demo admin: {admin['username']} / {admin['password']}", f"API token: {report['token']}"]
            token_file = self.settings.data_dir / "demo-credentials.txt"
            token_file.write_text(f"username={admin['username']}\npassword={admin['password']}\n"
                                  f"token={report['token']}\n", encoding="utf-8")
            token_file.chmod(0o600)
        else:
            lines.append(f"demo credentials: see {self.settings.data_dir / 'demo-credentials.txt'}")
        published = report.get("published")
        if isinstance(published, list) and published:
            lines.append(f"published demo flows: {', '.join(str(p) for p in published)}")
        lines.append("press Ctrl-C to stop")
        print("\n".join(lines), flush=True)

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


