"""Serving the API with gunicorn (threaded workers), each worker loading its own Service.

Workers load the build after the fork rather than sharing one loaded in the master (``preload_app``):
torch's thread pools and the SQLite connections must not cross a fork, and a crashed worker comes back
on its own with a fresh load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from critic.home import Home, database_url
from critic.repair import check_database


class ServeError(ValueError):
    """The server cannot start as asked (nothing built, bad worker counts)."""


class _Gunicorn(BaseApplication):
    def __init__(self, factory: Callable[[], Any], options: Mapping[str, Any]):
        self.factory = factory
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return self.factory()


def _share_cores(workers: int) -> Callable[[Any, Any], None]:
    """A post-fork hook sizing each worker's torch thread pool to its share of the cores, and FAISS's to one.

    A search over the index is a few hundred microseconds of work; FAISS's default OpenMP threads made it cost
    3.66 ms of CPU and 11.6 ms wall on 2 busy cores against 0.26 ms and 0.61 ms with one (bench/api.py's run in
    docs/results.md). Requests already run side by side on the worker's threads.
    """

    def post_fork(server: Any, worker: Any) -> None:
        import faiss
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        faiss.omp_set_num_threads(1)

    return post_fork


def serve(
    home: Home | str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 2,
    threads: int = 4,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Run the API on ``host:port`` until stopped (for ``critic serve [--host] [--port] [--workers]``).

    ``workers`` processes with ``threads`` threads each; ``config`` overrides settings as in create_app
    (the environment's ``CRITIC_*`` variables apply too). Raises ServeError when nothing is built.
    """
    home = home if isinstance(home, Home) else Home.resolve(home)
    if not home.vae_dir.exists() or not (database_url() or home.store_path.exists()):
        raise ServeError(f"nothing built in {home.root}: run `critic build` first")
    check_database(home.store_location)  # a damaged or unreachable database stops here
    if workers < 1 or threads < 1:
        raise ServeError(f"workers and threads must be >= 1, got {workers} and {threads}")
    if not 0 < port < 65536:
        raise ServeError(f"port must be in 1..65535, got {port}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    overrides = {**(config or {}), "HOME": str(home.root)}

    # Imported before the fork, so the workers share these pages and skip the slow imports (the loaded
    # models and any threads come after it, in each worker).
    import sentence_transformers  # noqa: F401

    from api.app import create_app

    def factory() -> Any:
        return create_app(overrides)

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 20,
        "keepalive": 5,
        "accesslog": None,  # the app logs one JSON line per request itself
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "critic-api",
        "post_fork": _share_cores(workers),
    }
    _Gunicorn(factory, options).run()
