"""`critic critique --all`: critiques of the whole collection written ahead into the critiques table
(critic.critiques), for the API and `critic critique ID` to serve without writing.

Resumable: an artwork whose critique for a tone and seed is stored and current (critic.critiques.Stamp) is
skipped; a stale one (its record, a neighbour it drew on, or the writer changed) is written again in place; the
critiques of deleted artworks are removed. Finished critiques are committed a batch at a time, so an interrupted
run loses at most the batches in flight.

Each worker loads the build and the writer once (CritiqueWorker) and writes batches of (id, tone). Engines:

* ``LocalEngine(1)``: in this process; ``LocalEngine(n)``: n spawned processes (a process pool);
* ``RayEngine``: one Ray actor per worker, on a local Ray or a cluster (``address``; every node needs the home
  at the same path, and ``CRITIC_DATABASE_URL`` is passed on to the actors).

Only this process writes to the table, so an SQLite home never sees two writers.

Example:
    >>> report = pregenerate(Home.resolve(), ["critique"], seed=0, engine=LocalEngine())   # doctest: +SKIP
    >>> report.written, report.current                                                       # doctest: +SKIP
    (15000, 0)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from critic.critiques import Pregenerated, open_critiques
from critic.home import Home, database_url
from critic.service import Service
from critic.store import ArtworkStore
from critic.writer.inputs import check_seed, check_tone
from critic.writing import Writing


class PregenerationError(RuntimeError):
    """The workers of a run disagree on what they write with (nodes holding different builds)."""


LOAD_TIMEOUT_S = 900  # a worker process that cannot load the build within this fails the run instead of hanging
BATCH = 8  # (id, tone) pairs per task: small enough for a smooth progress bar, large enough to hide dispatch
Job = tuple[str, str]  # (artwork id, tone)


@dataclass(frozen=True)
class Written:
    """What a worker returns for one batch: the finished critiques and the jobs that failed, with the reason."""

    jobs: int  # the batch's size (artworks deleted meanwhile are in neither list)
    critiques: list[Pregenerated]
    failed: list[tuple[str, str, str]]


class CritiqueWorker:
    """One worker's writer: the build and the writing service, loaded once, writing batches of critiques."""

    def __init__(self, root: str):
        self.writing = Writing(Service.load(Home(Path(root)), log=lambda _: None))

    def writer_version(self) -> str:
        return self.writing.writer_version

    def write(self, jobs: Sequence[Job], seed: int) -> Written:
        """Critiques of ``jobs`` as their records stand now (an artwork deleted meanwhile is left out)."""
        critiques, failed = [], []
        for artwork_id, tone in jobs:
            record = self.writing.service.store.get(artwork_id)
            if record is None:
                continue
            try:
                critiques.append(self.writing.pregenerate(record, tone, seed))
            except Exception as exc:  # one artwork the writer cannot handle must not stop the collection
                failed.append((artwork_id, tone, f"{type(exc).__name__}: {exc}"))
        return Written(len(jobs), critiques, failed)


class Engine(Protocol):
    """Where the workers run: ``start`` yields a pool once its workers are loaded."""

    name: str

    def start(self, home: Home) -> contextlib.AbstractContextManager[Pool]: ...


class Pool(Protocol):
    workers: int

    def writer_version(self) -> str: ...

    def write(self, batches: Sequence[Sequence[Job]], seed: int) -> Iterator[Written]:
        """Each batch's result as it completes, in any order."""
        ...


@dataclass
class Report:
    """What a run did: counts of (artwork, tone) critiques, and its speed."""

    engine: str
    workers: int
    tones: list[str]
    seed: int
    artworks: int
    current: int  # stored and current: skipped
    written: int
    failed: int
    removed: int  # artworks deleted from the collection whose critiques were removed
    load_seconds: float  # starting the workers (each loads the build) and finding what is current
    seconds: float  # writing

    @property
    def per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "per_second": round(self.per_second, 2)}

    def summary(self) -> str:
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        return (
            f"critiques: {self.artworks} artworks x {len(self.tones)} tone(s) ({', '.join(self.tones)}; seed "
            f"{self.seed}): {self.written} written, {self.current} already current, {self.failed} failed, "
            f"critiques of {self.removed} deleted artworks removed; {self.per_second:.2f} critiques/s ({self.engine}, "
            f"{workers}: {self.load_seconds:.1f} s loading, {self.seconds:.1f} s writing)"
        )


def pregenerate(
    home: Home,
    tones: Sequence[str],
    seed: int,
    engine: Engine,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> Report:
    """Write the missing and stale critiques of ``home``'s collection in each of ``tones`` with ``seed``."""
    tones = [check_tone(tone) for tone in tones]
    seed = check_seed(seed)
    began = time.monotonic()
    store = ArtworkStore(home.store_location)
    critiques = open_critiques(home, store)
    with engine.start(home) as pool:
        writer_version = pool.writer_version()
        versions = {r.id: r.version() for r in store.all()}
        removed = critiques.keep_only(set(versions))
        stamps = critiques.stamps(seed)
        todo = [
            (artwork_id, tone)
            for artwork_id, version in versions.items()
            for tone in tones
            if not ((stamp := stamps.get((artwork_id, tone))) and stamp.current(version, writer_version, versions.get))
        ]
        total = len(versions) * len(tones)
        log(f"critiques: {total - len(todo)} of {total} current, {len(todo)} to write ({pool.workers} worker(s))")
        started = time.monotonic()
        written = failed = 0
        batches = [todo[i : i + BATCH] for i in range(0, len(todo), BATCH)]
        with tqdm(total=len(todo), desc="critiques", unit="critique", disable=not progress) as bar:
            for result in pool.write(batches, seed):
                critiques.put_many(result.critiques)
                for artwork_id, tone, reason in result.failed:
                    log(f"critiques: {artwork_id} ({tone}) failed: {reason}")
                written += len(result.critiques)
                failed += len(result.failed)
                bar.update(result.jobs)
    return Report(
        engine.name, pool.workers, list(tones), seed, len(versions), total - len(todo), written, failed, removed,
        load_seconds=started - began, seconds=time.monotonic() - started,
    )


class LocalEngine:
    """In this process (``workers=1``) or in that many spawned processes, each loading the build once."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    @contextlib.contextmanager
    def start(self, home: Home) -> Iterator[Pool]:
        if self.workers == 1:
            yield _InProcess(CritiqueWorker(str(home.root)))
            return
        # Spawned, not forked: the parent may hold OpenMP and torch threads, which a fork does not carry safely.
        context = multiprocessing.get_context("spawn")
        threads = max(1, len(os.sched_getaffinity(0)) // self.workers)
        loaded = context.Barrier(self.workers)  # no process takes work before every one has loaded the build
        with concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_load_worker, initargs=(str(home.root), threads, loaded)
        ) as executor:
            try:
                yield _Processes(executor, self.workers)
            except BaseException:
                executor.shutdown(cancel_futures=True)
                raise


class _InProcess:
    workers = 1

    def __init__(self, worker: CritiqueWorker):
        self.worker = worker

    def writer_version(self) -> str:
        return self.worker.writer_version()

    def write(self, batches: Sequence[Sequence[Job]], seed: int) -> Iterator[Written]:
        return (self.worker.write(batch, seed) for batch in batches)


_worker: CritiqueWorker | None = None  # a pool process's own worker, loaded by _load_worker


def _load_worker(root: str, threads: int, loaded: Any) -> None:
    import torch

    global _worker
    torch.set_num_threads(threads)  # the processes share the cores rather than each claiming all of them
    try:
        _worker = CritiqueWorker(root)
    except BaseException:
        loaded.abort()  # the others stop waiting: the pool breaks at once instead of hanging
        raise
    loaded.wait(timeout=LOAD_TIMEOUT_S)


def _writer_version() -> str:
    assert _worker is not None
    return _worker.writer_version()


def _write(jobs: Sequence[Job], seed: int) -> Written:
    assert _worker is not None
    return _worker.write(jobs, seed)


class _Processes:
    def __init__(self, executor: concurrent.futures.ProcessPoolExecutor, workers: int):
        self.executor, self.workers = executor, workers

    def writer_version(self) -> str:
        # One call per worker: the pool starts its processes as calls wait, and each waits for all to load.
        return _one_version([f.result() for f in [self.executor.submit(_writer_version) for _ in range(self.workers)]])

    def write(self, batches: Sequence[Sequence[Job]], seed: int) -> Iterator[Written]:
        futures = [self.executor.submit(_write, batch, seed) for batch in batches]
        return (future.result() for future in concurrent.futures.as_completed(futures))


def _one_version(versions: list[str]) -> str:
    """The writer version every worker reports; they must agree, or their critiques would carry different stamps."""
    if len(set(versions)) != 1:
        raise PregenerationError(f"the workers load different builds ({', '.join(sorted(set(versions)))}): "
                                 "give every node the same copy of the home")
    return versions[0]


class RayEngine:
    """One Ray actor per worker (default: one per CPU of the cluster), each loading the build once.

    Without ``address`` it starts a local Ray for the run (unless this process has joined one already); with
    one it joins that cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None):
        self.address, self.workers = address, workers

    @contextlib.contextmanager
    def start(self, home: Home) -> Iterator[Pool]:
        import ray
        from ray.util import ActorPool

        from critic.ray_cluster import ray_connection  # only this engine needs Ray installed

        with ray_connection(self.address):
            workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            url = database_url()
            options: dict[str, Any] = {"num_cpus": 1}
            if url:
                options["runtime_env"] = {"env_vars": {"CRITIC_DATABASE_URL": url}}
            actor = ray.remote(CritiqueWorker).options(**options)
            actors = [actor.remote(str(home.root)) for _ in range(workers)]
            yield _RayActors(ray, ActorPool(actors), actors)


class _RayActors:
    def __init__(self, ray: Any, pool: Any, actors: list):
        self.ray, self.pool, self.actors, self.workers = ray, pool, actors, len(actors)

    def writer_version(self) -> str:
        return _one_version(self.ray.get([a.writer_version.remote() for a in self.actors]))

    def write(self, batches: Sequence[Sequence[Job]], seed: int) -> Iterator[Written]:
        return self.pool.map_unordered(lambda actor, batch: actor.write.remote(batch, seed), batches)

