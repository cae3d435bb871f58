"""Real servers in subprocesses on free loopback ports, for tests and benchmarks: the API, and a throwaway
PostgreSQL."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from api.config import ENV_PREFIX, RATE_SETTINGS
from critic.home import Home

#: Every rate limit off: settings for create_app, and the same as environment variables for a server. For tests
#: and benchmarks that are not about limits (they send more than any one client would).
NO_LIMITS = dict.fromkeys(RATE_SETTINGS, "off")
NO_LIMITS_ENV = {ENV_PREFIX + name: value for name, value in NO_LIMITS.items()}


def copy_home(home: Home, target: str | Path) -> Home:
    """A private copy of a build (tests that write must not change a shared one)."""
    shutil.copytree(home.root, target)
    return Home(Path(target))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server command run as its own process group (so it can be killed whole), ready once
    ``/api/v1/readyz`` says so; a server that reports a failed load stops the wait at once.

    Example:
        with ServerProcess([sys.executable, "-m", "critic.cli", "serve", "--port", "8123"], 8123) as server:
            urllib.request.urlopen(server.url("/api/v1/healthz"))
    """

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None, name: str = "server"):
        self.argv, self.port, self.name = argv, port, name
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"critic-{name}-", suffix=".log", delete=False)
        self.started_s = 0.0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 600.0) -> ServerProcess:
        """Start and wait until ready; raises RuntimeError with the log tail otherwise."""
        began = time.monotonic()
        self.process = subprocess.Popen(
            self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            status = self._status()
            if status == "ready":
                self.started_s = time.monotonic() - began
                return self
            if status == "failed":
                self.kill()
                raise RuntimeError(f"{self.name} failed to load the build:\n{self.log_tail()}")
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _status(self) -> str | None:
        try:
            with urllib.request.urlopen(self.url("/api/v1/readyz"), timeout=2) as response:
                return json.load(response).get("status")
        except urllib.error.HTTPError as exc:  # 503 while loading or after a failed load
            try:
                return json.load(exc).get("status")
            except ValueError:
                return None
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        """The server's processes (its process group: a gunicorn master and its workers)."""
        if self.process is None:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) == self.process.pid:
                        found.append(int(entry))
                except OSError:
                    continue
        return sorted(found)

    def rss_bytes(self) -> int:
        """Resident memory of all the server's processes together."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/statm") as statm:
                    total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except OSError:
                continue
        return total

    def kill(self) -> None:
        """SIGKILL the master and its workers at once: a crash, no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()  # committed writes survive a kill (test_api_crash), and it spares a slow graceful exit
        self.log.close()
        os.unlink(self.log.name)


class LiveServer(ServerProcess):
    """``critic serve`` for ``home`` in this interpreter, on a free loopback port.

    Settings go in as ``CRITIC_*`` environment variables (``env={"CRITIC_RATE_LIMIT": "5/minute"}``).

    Example:
        with LiveServer(home, workers=1) as server:
            urllib.request.urlopen(server.url("/api/v1/healthz"))
    """

    def __init__(self, home: Home | str | Path, workers: int = 1, threads: int = 4, env: dict[str, str] | None = None):
        root = home.root if isinstance(home, Home) else Path(home)
        port = free_port()
        code = f"from api.serve import serve; serve({str(root)!r}, '127.0.0.1', {port}, {workers}, {threads})"
        super().__init__([sys.executable, "-c", code], port, env, name="serve")
        self.home = root

    def start(self, timeout: float = 180.0) -> LiveServer:
        super().start(timeout)
        return self


class PostgresServer:
    """A throwaway PostgreSQL server from the machine's own binaries (Debian's ``postgresql`` package), on a free
    loopback port with trust authentication; as root it runs as the ``postgres`` user (initdb refuses root).

    ``fsync=False`` (the tests: they kill API nodes, never this server) spares the shared disk; a benchmark of write
    rates wants ``fsync=True``, PostgreSQL's own default, so that a commit waits for the disk as SQLite's does.

    Example:
        server = PostgresServer().start()
        store = ArtworkStore(server.database("art"))
        server.stop()
    """

    def __init__(self, fsync: bool = False):
        found = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
        if found is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb): scripts/install-postgresql.sh installs them")
        self.bin = Path(found).resolve().parent
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="critic-pg-"))  # not under pytest's 0700 root-owned folders
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = 0

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresServer:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self.port = free_port()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   f"-c fsync={'on' if self.fsync else 'off'}")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options,
                  "start")
        return self

    def database(self, name: str) -> str:
        """The URL of a new, empty database called ``name``."""
        import psycopg  # only PostgreSQL setups install the driver

        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.port:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def post_until_down(url: str, key: str, acknowledged: list[str], stop: threading.Event, batch: str = "crash") -> None:
    """POST artworks to the server at ``url`` one after another until it dies (or ``stop``); record the ids
    answered 201. For the durability tests, which kill the server mid-stream.
    """
    import requests

    session = requests.Session()
    n = 0
    while not stop.is_set():
        artwork = {
            "id": f"{batch}-{n}",
            "title": f"Study of waves number {n}",
            "description": f"Sketch {n} of breaking waves on a pebble beach, in grey and white chalk.",
            "metadata": {"batch": batch},
        }
        try:
            response = session.post(f"{url}/api/v1/artworks", json=artwork, headers={"X-API-Key": key}, timeout=10)
        except requests.RequestException:
            return  # the server is gone
        if response.status_code == 201:
            acknowledged.append(artwork["id"])
        n += 1
