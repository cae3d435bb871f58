"""A real API server in a subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from critic.home import Home


def copy_home(home: Home, target: str | Path) -> Home:
    """A private copy of a build (tests that write must not change a shared one)."""
    shutil.copytree(home.root, target)
    return Home(Path(target))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``critic serve`` for ``home`` as a child process (its own process group, so it can be killed whole).

    Settings go in as ``CRITIC_*`` environment variables (``env={"CRITIC_RATE_LIMIT": "5/minute"}``).

    Example:
        with LiveServer(home, workers=1) as server:
            urllib.request.urlopen(server.url("/api/v1/healthz"))
    """

    def __init__(self, home: Home | str | Path, workers: int = 1, threads: int = 4, env: dict[str, str] | None = None):
        self.home = home.root if isinstance(home, Home) else Path(home)
        self.workers = workers
        self.threads = threads
        self.env = dict(env or {})
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="critic-serve-", suffix=".log", delete=False)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 180.0) -> LiveServer:
        """Start and wait until /readyz says ready; raises RuntimeError with the log tail otherwise."""
        self.port = free_port()
        code = (
            "from api.serve import serve; "
            f"serve({str(self.home)!r}, '127.0.0.1', {self.port}, {self.workers}, {self.threads})"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/api/v1/readyz"), timeout=2) as response:
                return json.load(response).get("status") == "ready"
        except (OSError, urllib.error.URLError, ValueError):
            return False

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

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()  # committed writes survive a kill (test_api_crash), and it spares a slow graceful exit
        self.log.close()
        os.unlink(self.log.name)
