"""Serving the API with gunicorn (threaded workers) forked from a master that loaded the build.

The master loads the Service (store, style model, memory-mapped index, writer) before it forks (gunicorn's
``preload_app``), so the workers share those pages instead of each loading a copy, and a worker that crashed
comes back at once, caught up from the change feed by its first request. Nothing that breaks across a fork
crosses one: the serving path runs no torch, the master starts no thread (FAISS's OpenMP pool is held at one
thread, the tokenizer's pool is off), database connections are per process (critic.sql, critic.embed), and
each worker starts its own follower of other nodes' writes.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from critic.follow import Follower
from critic.home import Home, database_url
from critic.repair import check_database
from critic.service import Service


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


class _Preloaded:
    """The app factory the master calls before forking, and the hook each worker runs after the fork."""

    def __init__(self, home: Home, overrides: Mapping[str, Any], workers: int):
        self.home = home
        self.overrides = dict(overrides)
        self.workers = workers
        self.service: Service | None = None

    def app(self) -> Any:
        import faiss

        from api.app import create_app

        faiss.omp_set_num_threads(1)  # an OpenMP pool started in the master would hang its forked workers
        service = Service.load(self.home)
        service.encode_text("warm up")  # the sentence model
        service.writing  # noqa: B018 (the writer and the collection's lexicon, loaded now rather than per worker)
        # The loaded objects stay where they are: a collection that ran over them would copy their pages into
        # every worker.
        gc.collect()
        gc.freeze()
        self.service = service
        return create_app(self.overrides, service=service)

    def post_fork(self, server: Any, worker: Any) -> None:
        """Size the worker's thread pools to its share of the cores and follow other nodes' writes.

        A search over the index is a few hundred microseconds of work; FAISS's default OpenMP threads made it
        cost 3.66 ms of CPU and 11.6 ms wall on 2 busy cores against 0.26 ms and 0.61 ms with one
        (bench/api.py's run in docs/results.md). Requests already run side by side on the worker's threads.
        """
        import faiss
        from threadpoolctl import threadpool_limits

        threadpool_limits(max(1, (os.cpu_count() or 1) // self.workers), user_api="blas")
        faiss.omp_set_num_threads(1)
        if self.service is not None and self.service.store.shared:
            Follower(self.service).start()


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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its thread pool would not survive the fork
    preloaded = _Preloaded(home, {**(config or {}), "HOME": str(home.root)}, workers)
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
        "preload_app": True,
        "post_fork": preloaded.post_fork,
    }
    _Gunicorn(preloaded.app, options).run()
