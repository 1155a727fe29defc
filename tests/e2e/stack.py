"""Run the embedded stack as real subprocesses for end-to-end tests.

:class:`E2EStack` picks free ports (Temporal frontend ``p`` with ``p + 1000`` free for its UI, and the
web port), gives the processes a private ``TIDEFLOW_DATA_DIR`` and either runs ``tideflow up`` or the
pieces one by one (``temporal server start-dev``, ``tideflow worker``, ``tideflow web``) so a test can
kill one of them. Every process is started in its own session (its own process group) and is stopped
with :func:`os.killpg`, so nothing (in particular no Temporal dev server) outlives the test, even when
the test fails or pytest is interrupted (an :mod:`atexit` hook is the last resort).

Use it as a context manager, typically from a module-scoped fixture::

    @pytest.fixture(scope="module")
    def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
        with E2EStack(tmp_path_factory.mktemp("e2e")) as s:
            s.up()
            yield s
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from engine.temporal_bin import dev_server_path, dev_server_tuning
from tests.waiting import wait_until

HOST = "127.0.0.1"
#: ports are picked below the kernel's ephemeral range, so outgoing connections never take them
PORT_RANGE = (20000, 30000)
UI_OFFSET = 1000

_live: set[int] = set()  # process groups still running, for the atexit hook


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*offsets: int, taken: set[int] | None = None) -> int:
    """A free TCP port ``p`` on 127.0.0.1 such that ``p + o`` is free too for every offset ``o``."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    taken = taken or set()
    for _ in range(500):
        p = rng.randrange(*PORT_RANGE)
        wanted = [p, *(p + o for o in offsets)]
        if not taken.intersection(wanted) and all(_port_free(q) for q in wanted):
            return p
    raise RuntimeError("no free port pair found")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Every process's /proc/<pid>/stat fields after the command name: state, ppid, pgrp, session, tty_nr,
    tpgid, flags, minflt, cminflt, majflt, cmajflt, utime, stime, cutime, cstime, … (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        yield int(entry.name), stat[stat.rindex(")") + 2:].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in the process group ``pgid`` (Linux /proc)."""
    return [pid for pid, fields in process_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_leftovers() -> None:
    for pgid in list(_live):
        _killpg(pgid, signal.SIGKILL)
    _live.clear()


atexit.register(_kill_leftovers)


class E2EStack:
    """The Tideflow stack as subprocesses sharing one environment and data directory."""

    def __init__(self, root: Path, task_queue: str | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.logs = root / "logs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.temporal_port = free_port(UI_OFFSET)
        self.web_port = free_port(taken={self.temporal_port, self.temporal_port + UI_OFFSET})
        self.base_url = f"http://{HOST}:{self.web_port}"
        self.database_url = f"sqlite:///{(self.data_dir / 'tideflow.db').resolve()}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("TIDEFLOW_") and k not in ("TEMPORAL_ADDRESS", "PYTEST_CURRENT_TEST")}
        self.env.update({
            "TIDEFLOW_DATA_DIR": str(self.data_dir),
            "TEMPORAL_ADDRESS": f"{HOST}:{self.temporal_port}",
            "TIDEFLOW_WEB_HOST": HOST,
            "TIDEFLOW_WEB_PORT": str(self.web_port),
            "TIDEFLOW_TASK_QUEUE": task_queue or f"e2e-{secrets.token_hex(4)}",
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",  # the CLI's English, which this harness reads ("API token: …"), whatever the shell's
        })
        for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
            self.env.pop(variable, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token: str | None = None
        #: seconds an API call may take (generous: CI machines are small and shared)
        self.http_timeout = 180.0
        self._worker_log_offset = 0
        self._http: httpx.Client | None = None

    # -- processes ---------------------------------------------------------------------------------
    def tideflow(self) -> list[str]:
        beside = Path(sys.executable).parent / "tideflow"
        return [str(beside)] if beside.exists() else [sys.executable, "-m", "tideflow.cli"]

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new session (its own process group), output appended to logs/<name>.log."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {old.pid})")
        with (self.logs / f"{name}.log").open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            # the working directory is the test's own, so no stray .env file is read
            proc = subprocess.Popen(args, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        _live.add(proc.pid)
        return proc

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def logs_tail(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {p.stem} ---\n{self.log(p.stem, tail)}" for p in sorted(self.logs.glob("*.log")))

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with code {proc.returncode}:\n{self.log(name)}")

    def wait_log(self, name: str, text: str, timeout: float = 60, after: int = 0) -> None:
        """Wait until ``text`` appears in the log of ``name`` (past byte offset ``after``)."""
        path = self.logs / f"{name}.log"

        def seen() -> bool:
            self._check_alive(name)
            return path.exists() and text.encode() in path.read_bytes()[after:]

        wait_until(seen, timeout, f"'{text}' in the {name} log")

    def log_size(self, name: str) -> int:
        path = self.logs / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def wait_healthy(self, name: str = "web", timeout: float = 60) -> None:
        def healthy() -> bool:
            self._check_alive(name)
            try:
                return httpx.get(f"{self.base_url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, f"GET {self.base_url}/api/health")

    def up(self, demo: bool = True, timeout: float = 90, *, sigint_ignored: bool = False) -> subprocess.Popen[bytes]:
        """``tideflow up``: wait for the web app, the worker and (with demo data) the credentials file.

        With ``sigint_ignored`` it starts with SIGINT ignored, as a command started with ``&`` from a script
        (a non-interactive shell) does: the same process (an exec), only the inherited disposition differs."""
        args = [*self.tideflow(), "up", *([] if demo else ["--no-demo"])]
        if sigint_ignored:
            args = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                    "os.execv(sys.argv[1], sys.argv[1:])", *args]
        proc = self.spawn("up", args)
        self.wait_healthy("up", timeout)
        self.wait_log("up", "worker on task queue", timeout)
        if demo:
            wait_until(lambda: self.credentials_file.exists() and "token=" in self.credentials_file.read_text(),
                       timeout, "demo-credentials.txt")
            self.token = self.credentials()["token"]
        return proc

    def start_temporal(self, persist: bool = False, wait: bool = True, timeout: float = 60
                       ) -> subprocess.Popen[bytes]:
        """The Temporal dev server (in memory, or in <data_dir>/temporal.db with ``persist``)."""
        args = [dev_server_path(), "server", "start-dev", "--ip", HOST, "--port", str(self.temporal_port),
                "--ui-port", str(self.temporal_port + UI_OFFSET), "--headless", "--log-level", "error",
                *dev_server_tuning()]
        if persist:
            args += ["--db-filename", str((self.data_dir / "temporal.db").resolve())]
        proc = self.spawn("temporal", args)
        if wait:
            self.wait_temporal(timeout)
        return proc

    def wait_temporal(self, timeout: float = 60) -> None:
        def listening() -> bool:
            self._check_alive("temporal")
            return port_open(self.temporal_port)

        wait_until(listening, timeout, f"Temporal on port {self.temporal_port}")

    def start_worker(self, wait: bool = True, timeout: float = 60) -> subprocess.Popen[bytes]:
        """``tideflow worker``; with ``wait``, until it says it is ready (polling its task queue)."""
        self._worker_log_offset = self.log_size("worker")
        proc = self.spawn("worker", [*self.tideflow(), "worker"])
        if wait:
            self.wait_worker(timeout)
        return proc

    def wait_worker(self, timeout: float = 60) -> None:
        self.wait_log("worker", "worker on task queue", timeout, after=self._worker_log_offset)

    def start_web(self, wait: bool = True, timeout: float = 60) -> subprocess.Popen[bytes]:
        """``tideflow web``; start it once Temporal listens, or it routes events only after a reconnect."""
        proc = self.spawn("web", [*self.tideflow(), "web"])
        if wait:
            self.wait_healthy("web", timeout)
        return proc

    def start_pieces(self, timeout: float = 60, worker: bool = True) -> None:
        """Temporal, an admin with a token, web and worker: as separate processes, started in parallel
        where they can be (the admin is created, and the schema migrated, while Temporal boots). Without
        ``worker`` the web process runs the worker itself (``TIDEFLOW_WORKER_IN_WEB``)."""
        self.start_temporal(wait=False)
        self.create_admin()
        self.wait_temporal(timeout)
        if worker:
            self.start_worker(wait=False)
        else:
            self.env["TIDEFLOW_WORKER_IN_WEB"] = "true"
        self.start_web(wait=False)
        self.wait_healthy("web", timeout)
        if worker:
            self.wait_worker(timeout)
        else:
            self.wait_log("web", "worker on task queue", timeout)

    def create_admin(self, username: str = "e2e-admin") -> str:
        """Create an admin with an API token through the CLI (it also migrates the database)."""
        out = subprocess.run([*self.tideflow(), "users", "create", username, "--role", "admin",
                              # one argument: a generated password may begin with '-' (argparse would read an option)
                              f"--password={secrets.token_urlsafe(16)}", "--token"], env=self.env, cwd=self.root,
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        token = next(line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
                     if line.startswith("API token:"))
        self.token = token
        return token

    def send_signal(self, name: str, sig: int, group: bool = True) -> None:
        """Send ``sig`` to the process ``name`` (with ``group``: to its whole process group)."""
        proc = self.procs[name]
        if group:
            _killpg(proc.pid, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def kill(self, name: str) -> None:
        """kill -9 the process group of ``name`` and reap it."""
        proc = self.procs[name]
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        _live.discard(proc.pid)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Stop ``name`` (its process group) gracefully, then by force; returns its exit code."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            _killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        # the leader is gone; anything left in its group (a stuck child) goes too
        if group_members(proc.pid):
            _killpg(proc.pid, signal.SIGKILL)
        _live.discard(proc.pid)
        return proc.returncode

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        for name in ("up", "web", "worker", "temporal"):
            self.stop(name)
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> E2EStack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- credentials and HTTP ----------------------------------------------------------------------
    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "demo-credentials.txt"

    def credentials(self) -> dict[str, str]:
        """username, password and token from <data_dir>/demo-credentials.txt."""
        lines = self.credentials_file.read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    @property
    def http(self) -> httpx.Client:
        """A client for the web app, authenticated with the API token when there is one."""
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.http_timeout)
        return self._http

    def api(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kwargs: Any) -> Any:
        """Call the API and check the status; return the JSON body (see :meth:`request` for "come back later")."""
        wanted = (expect,) if isinstance(expect, int) else expect
        r = self.request(method, path, wanted, **kwargs)
        assert r.status_code in wanted, f"{method} {path} → {r.status_code}: {r.text[:2000]}"
        return r.json()

    def request(self, method: str, path: str, wanted: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        """Send a request to the web app. Told to come back later (admission control: 429/503 with Retry-After)
        when that is not the answer ``wanted``, it does — as every real sender (and a platform's push) does —
        for up to a minute."""
        started = time.monotonic()
        while True:
            try:
                r = self.http.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise AssertionError(f"{method} {path}: no answer within {time.monotonic() - started:.0f} s "
                                     f"({type(exc).__name__})") from exc
            if (r.status_code in (429, 503) and r.status_code not in wanted and "Retry-After" in r.headers
                    and time.monotonic() - started < 60):
                time.sleep(min(float(r.headers["Retry-After"]), 5.0))
                continue
            return r


@contextlib.contextmanager
def running(root: Path, **kwargs: Any) -> Iterator[E2EStack]:
    """An :class:`E2EStack` that is always cleaned up."""
    stack = E2EStack(root, **kwargs)
    try:
        yield stack
    finally:
        stack.close()
