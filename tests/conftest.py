"""Session fixtures: one small real build (a slice of the bundled collection) shared by the whole suite."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The ONNX export of the embedder (critic.embed.model_cache_dir) is made once per test run, here, and shared by
# every test and subprocess instead of touching the user's cache.
os.environ.setdefault("CRITIC_MODEL_CACHE", tempfile.mkdtemp(prefix="critic-models-"))

SLICE = 300  # records: enough for every code path, small enough to embed in seconds


@pytest.fixture(scope="session")
def walters_slice():
    from critic.corpus import load_walters

    return load_walters(limit=SLICE)


@pytest.fixture(scope="session")
def writer_config():
    """A small description writer: the same code path as the default, trained in seconds."""
    from critic.writer.train import WriterTrainConfig

    return WriterTrainConfig(epochs=3, embed_dim=64, cond_dim=32, hidden_dim=96)


@pytest.fixture(scope="session")
def train_config():
    """The style VAE's default schedule with 500 optimiser steps instead of 1,500: on 210 fit records the VAE
    training was 51 of the build's 70 s, the longest part of the quick test loop."""
    from critic.train import TrainConfig

    return TrainConfig(min_steps=500)


@pytest.fixture(scope="session")
def built_home(tmp_path_factory, walters_slice, writer_config, train_config):
    """A home built from the first SLICE Walters records, as `critic build --limit SLICE` makes it."""
    from critic.build import build
    from critic.home import Home

    home = Home(tmp_path_factory.mktemp("home"))
    build(home, limit=SLICE, train_config=train_config, writer_config=writer_config, progress=False, log=lambda _: None)
    return home


class PostgresServer:
    """A throwaway PostgreSQL server from the machine's own binaries (Debian's ``postgresql`` package), on a free
    loopback port with trust authentication; as root it runs as the ``postgres`` user (initdb refuses root)."""

    def __init__(self):
        import shutil
        from pathlib import Path

        found = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
        if found is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb): scripts/install-postgresql.sh installs them")
        self.bin = Path(found).resolve().parent
        self.root = Path(tempfile.mkdtemp(prefix="critic-pg-"))  # not under pytest's 0700 root-owned folders
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            os.chown(self.root, *_postgres_ids())
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = 0

    def _run(self, *argv: str) -> None:
        import subprocess

        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresServer:
        from api.testing import free_port

        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self.port = free_port()
        # fsync off: the tests kill API nodes, never this server, and it spares the shared disk.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options,
                  "start")
        return self

    def database(self, name: str) -> str:
        """The URL of a new, empty database called ``name``."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        import shutil

        if self.port:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole run, started only when a test asks for it; each test module
    takes a database of its own (``postgres.database(name)``)."""
    server = PostgresServer().start()
    yield server
    server.stop()
