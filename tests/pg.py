"""A throwaway PostgreSQL 15 cluster for tests, run straight from the server binaries.

No system service is involved: ``initdb`` creates a cluster in a temporary directory, ``pg_ctl`` starts it on
127.0.0.1 and a free port (its unix socket lives in the same directory), and ``stop()`` kills it with
``pg_ctl stop -m immediate`` and removes the directory. Durability is switched off (fsync, synchronous_commit,
full_page_writes), since the data is thrown away.

``initdb`` refuses to run as root. When the tests run as root (as they do in CI), the cluster belongs to an
unprivileged system user (``tideflow-pg``, created with ``useradd --system`` if missing) and every server
command runs through ``runuser -u tideflow-pg --`` (or ``setpriv`` when ``runuser`` is missing).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

#: Where Debian/Ubuntu's ``postgresql-15`` package puts the server binaries; override with TIDEFLOW_PG_BINDIR.
DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
#: The unprivileged OS user that owns the cluster when the tests run as root; override with TIDEFLOW_PG_OS_USER.
DEFAULT_OS_USER = "tideflow-pg"
#: The database superuser created by initdb; every test connects as this role (trust authentication).
SUPERUSER = "postgres"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "install the PostgreSQL 15 server binaries, e.g. `apt-get install postgresql-15` "
    "(or point TIDEFLOW_PG_BINDIR at a directory holding initdb, pg_ctl and postgres)"
)

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "16MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_timeout": "1h",
    "max_wal_size": "1GB",
    "autovacuum": "off",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
}

PG_HBA = """\
# Throwaway test cluster: trust the unix socket and IPv4 loopback only.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
"""


class PostgresError(RuntimeError):
    """The throwaway cluster could not be created, started or used."""


def bindir() -> Path:
    return Path(os.environ.get("TIDEFLOW_PG_BINDIR") or DEFAULT_BINDIR)


def missing_binaries(directory: Path | None = None) -> list[Path]:
    directory = directory or bindir()
    return [directory / name for name in REQUIRED_BINARIES if not os.access(directory / name, os.X_OK)]


def available() -> bool:
    """True when initdb, pg_ctl and postgres are installed (see DEFAULT_BINDIR / TIDEFLOW_PG_BINDIR)."""
    return not missing_binaries()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_os_user(name: str) -> pwd.struct_passwd:
    """Look up (creating it if needed) the unprivileged system user that owns the cluster when we are root."""
    for attempt in range(5):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
        if shutil.which("useradd") is None:
            raise PostgresError(f"running as root, OS user {name!r} is missing and `useradd` is not installed; "
                                f"create an unprivileged user {name!r} or set TIDEFLOW_PG_OS_USER")
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", name],
            capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            continue
        # 9: created meanwhile by a concurrent test process; 10: /etc/passwd locked by one. Look again.
        if proc.returncode not in (9, 10) or attempt == 4:
            raise PostgresError(f"`useradd {name}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
        time.sleep(0.2)
    return pwd.getpwnam(name)


class PostgresCluster:
    """One private PostgreSQL server: ``start()``, ``create_database()``/``url()``, ``stop()``."""

    def __init__(self, binaries: Path | None = None, os_user: str | None = None,
                 base_dir: Path | None = None) -> None:
        self.bindir = binaries or bindir()
        self.os_user_name = os_user or os.environ.get("TIDEFLOW_PG_OS_USER") or DEFAULT_OS_USER
        self.base_dir = base_dir
        self.user = SUPERUSER
        self.host = "127.0.0.1"
        self.port = 0
        self.root: Path | None = None
        self._os_user: pwd.struct_passwd | None = None
        self._running = False

    # -- paths -----------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if self.root is None:
            raise PostgresError("the cluster has not been started")
        return self.root / name

    @property
    def datadir(self) -> Path:
        return self._path("data")

    @property
    def socket_dir(self) -> Path:
        return self._path("sock")

    @property
    def logfile(self) -> Path:
        return self._path("postgres.log")

    # -- running server commands -------------------------------------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        """Prefix a command so it runs as the cluster's owner (the unprivileged user when we are root)."""
        if self._os_user is None:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", self._os_user.pw_name, "--", *argv]
        if shutil.which("setpriv"):
            return ["setpriv", f"--reuid={self._os_user.pw_uid}", f"--regid={self._os_user.pw_gid}",
                    "--clear-groups", "--", *argv]
        raise PostgresError("running as root, but neither `runuser` nor `setpriv` is available to drop privileges "
                            "(initdb refuses to run as root)")

    def _run(self, binary: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = self._as_owner([str(self.bindir / binary), *args])
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                                  env=env, cwd=self.root)
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{binary} timed out after {timeout:.0f}s: {' '.join(argv)}\n"
                                f"{self._log_tail()}") from exc
        except OSError as exc:
            raise PostgresError(f"could not run {argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            raise PostgresError(f"{binary} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                                f"stdout:\n{proc.stdout.strip()}\nstderr:\n{proc.stderr.strip()}\n"
                                f"{self._log_tail()}")
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        if self.root is None or not self.logfile.exists():
            return ""
        tail = self.logfile.read_text(errors="replace").splitlines()[-lines:]
        return f"server log ({self.logfile}):\n" + "\n".join(tail)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> PostgresCluster:
        """initdb a fresh cluster in a temporary directory and start it. Takes about a second."""
        if self._running:
            return self
        missing = missing_binaries(self.bindir)
        if missing:
            raise PostgresError(f"PostgreSQL server binaries not found: {', '.join(map(str, missing))}; "
                                f"{INSTALL_HINT}")
        if os.geteuid() == 0:
            self._os_user = _ensure_os_user(self.os_user_name)
        # /tmp keeps the unix socket path short (108 bytes at most) and is reachable by the unprivileged user.
        base = self.base_dir or Path(os.environ.get("TIDEFLOW_PG_TMPDIR") or tempfile.gettempdir())
        self.root = Path(tempfile.mkdtemp(prefix="tideflow-pg-", dir=base))
        atexit.register(self.stop)
        try:
            self.socket_dir.mkdir()
            if self._os_user is not None:
                for path in (self.root, self.socket_dir):
                    os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
            self._run("initdb", "-D", str(self.datadir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
            self._write(self.datadir / "pg_hba.conf", PG_HBA)
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _write(self, path: Path, text: str) -> None:
        """Write a server config file that the cluster's owner can read, whatever our umask."""
        path.write_text(text)
        path.chmod(0o600)
        if self._os_user is not None:
            os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

    def _start_on_free_port(self, attempts: int = 5) -> None:
        for attempt in range(attempts):
            self.port = free_port()
            settings = {**SERVER_SETTINGS, "port": str(self.port),
                        "unix_socket_directories": f"'{self.socket_dir}'"}
            # Later lines win, so rewriting the whole override file on a retry is enough.
            self._write(self.datadir / "postgresql.tideflow.conf",
                        "".join(f"{key} = {value}\n" for key, value in settings.items()))
            conf = self.datadir / "postgresql.conf"
            if "postgresql.tideflow.conf" not in conf.read_text():
                with conf.open("a") as fh:
                    fh.write("\ninclude = 'postgresql.tideflow.conf'\n")
            try:
                self._run("pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "30")
            except PostgresError:
                # Another process may have grabbed the port between free_port() and the bind: try another one.
                if attempt == attempts - 1 or "already in use" not in self._log_tail():
                    raise
                continue
            self._running = True
            return

    def stop(self) -> None:
        """Kill the server (no clean shutdown: the data is thrown away) and remove its directory. Idempotent."""
        if self.root is None:
            return
        try:
            if self._running or (self.datadir / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30")
                except PostgresError:
                    self._kill_postmaster()
        finally:
            self._running = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            atexit.unregister(self.stop)

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)

    # -- databases ---------------------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of one database of this cluster."""
        if not self._running:
            raise PostgresError("the cluster is not running")
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def _admin(self, statement: sql.Composed) -> None:
        if not self._running:
            raise PostgresError("the cluster is not running")
        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (lower-case identifier), a copy of the database ``template`` if given (which
        nobody may be connected to), and return its URL."""
        for given in (name, template or name):
            if not _DB_NAME.match(given):
                raise ValueError(f"invalid database name {given!r}: use [a-z_][a-z0-9_]*, at most 63 characters")
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                       sql.Identifier(template))
        self._admin(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ``name``, terminating any connection still open to it."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
