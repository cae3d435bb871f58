"""`critic build --engine ray`: critic.build's steps with the per-record work spread over a Ray cluster.

Ray Data runs two stages over shards of ``shard_size`` records, each on an actor pool (one actor per CPU,
``map_batches`` with a callable class, so each actor loads its model once):

1. embed: record -> text (composed when there is no description) -> text hash and int8 ONNX embedding;
2. encode: record + embedding -> lexical projection, date block, StyleVAE latent and index vector.

The actors return their rows to the driver, which writes each shard, once complete, as a Parquet file under
``home.shards_dir`` (no file system shared with the workers is needed). A shard's file name carries the digest of
what it was computed from, so a rerun after an interrupted run skips the shards already written; a worker that
dies mid-shard is restarted by Ray and its batch retried. Between the stages the store and the embedding cache
ingest the embed shards, and the StyleVAE trains on the driver exactly as in critic.build, on a seeded sample of
at most ``sample_size`` records per side of the split. The index is built from the encode shards.

Example:
    >>> info = build_ray(Home(Path("/tmp/home")), limit=2000, writer=False, shard_size=500)  # a local Ray
    >>> info["engine"]["shards"]["embed"]
    {'total': 4, 'computed': 4}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from critic.atomic import write_atomically
from critic.build import (
    checked_collection,
    ensure_style_model,
    finish,
    import_records,
    log_stderr,
    train_writer,
)
from critic.embed import MODEL_ID, EmbeddingCache, embed_texts, load_encoder
from critic.home import Home
from critic.records import Artwork, text_hash
from critic.split import Split, three_way_split
from critic.store import ArtworkStore
from critic.style_model import StyleModel
from critic.train import TrainConfig
from critic.vae import VAEConfig
from critic.writer.train import WriterTrainConfig
from index.store import VectorIndex

#: Records per shard: the unit of resumption and of one actor call (about 30 s of embedding on one core).
SHARD_SIZE = 10_000
#: Records per side of the split the StyleVAE trains and is measured on (the driver holds their inputs).
SAMPLE_SIZE = 100_000
#: Rows per actor call: a killed worker loses at most this much work.
BATCH_SIZE = 500
EMBED, ENCODE = "embed", "encode"


@dataclass(frozen=True)
class Shard:
    """Shard ``number`` of a stage: the file it is written to and the table of its input rows."""

    number: int
    path: Path
    rows: pa.Table


def build_ray(
    home: Home,
    catalog: str | Path | None = None,
    mapping: dict[str, str] | None = None,
    limit: int | None = None,
    vae_config: VAEConfig | None = None,
    train_config: TrainConfig | None = None,
    writer_config: WriterTrainConfig | None = None,
    writer: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = log_stderr,
    *,
    address: str | None = None,
    shard_size: int = SHARD_SIZE,
    sample_size: int = SAMPLE_SIZE,
) -> dict:
    """critic.build.build with Ray: joins the cluster at ``address`` (None: starts a local Ray on this machine's
    cores, or uses the one this process is connected to); returns the build info, with an ``engine`` entry."""
    if shard_size < 1 or sample_size < 1:
        raise ValueError(f"shard size and sample size must be positive, got {shard_size} and {sample_size}")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    home.root.mkdir(parents=True, exist_ok=True)
    step = time.perf_counter()
    imported = import_records(catalog, mapping, limit, log)
    timings["import_s"] = time.perf_counter() - step

    with ray_connection(address, progress):
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        log(f"ray: {workers} worker(s) on {len(ray.nodes())} node(s)")

        step = time.perf_counter()
        embed_shards = _plan(home.shards_dir / EMBED, _record_tables(imported.records, shard_size))
        embedded, newly_embedded = run_stage(EMBED, embed_shards, EmbedActor, (), workers, log)
        store, cache = ArtworkStore(home.store_path), EmbeddingCache(home.cache_path)
        for shard in embed_shards:  # the store ingests in shard order: the order of the catalogue
            table = pq.read_table(shard.path)
            store.upsert_many(_records(table))
            cache.put_many(dict(zip(table["text_hash"].to_pylist(), _matrix(table["embedding"]), strict=True)))
        records = checked_collection(store, imported, log)
        timings["embed_s"] = time.perf_counter() - step

        step = time.perf_counter()
        split = three_way_split(records)
        sample = [r for r in records if r.id in sampled_ids(split, sample_size)]
        sample_embeddings, _ = embed_texts([r.text() for r in sample], cache)
        style, data_hash = ensure_style_model(
            home, sample, sample_embeddings, split, vae_config, train_config, progress, log
        )
        timings["vae_s"] = time.perf_counter() - step

        step = time.perf_counter()
        encode_shards = _plan(
            home.shards_dir / ENCODE,
            [(pq.read_table(s.path), s.path.stem + json.dumps(style.index_identity)) for s in embed_shards],
        )
        encoded, _ = run_stage(ENCODE, encode_shards, EncodeActor, (style,), workers, log)
        timings["encode_s"] = time.perf_counter() - step

    step = time.perf_counter()
    index = index_from_shards([s.path for s in encode_shards], records, style, cache)
    index.save(home.index_dir)
    timings["index_s"] = time.perf_counter() - step
    log(f"index: {len(index)} artworks, {index.kind} FAISS index")

    step = time.perf_counter()
    writer_info = train_writer(home, records, style, data_hash, writer_config, log) if writer else None
    timings["writer_s"] = time.perf_counter() - step
    engine = {
        "name": "ray",
        "workers": workers,
        "shard_size": shard_size,
        "sample_size": sample_size,
        "sampled": len(sample),
        "shards": {EMBED: {"total": len(embed_shards), "computed": embedded},
                   ENCODE: {"total": len(encode_shards), "computed": encoded}},
    }
    return finish(home, imported, records, split, style, index, newly_embedded, writer_info, timings, started, log,
                  engine=engine)


@contextlib.contextmanager
def ray_connection(address: str | None, progress: bool = True) -> Iterator[None]:
    """Connected to Ray for the block: the cluster at ``address``, the one this process already joined, or a
    local Ray limited to this process's cores (shut down afterwards)."""
    ray.data.DataContext.get_current().enable_progress_bars = progress
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local run reports nowhere
        ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def sampled_ids(split: Split, size: int, seed: int = 0) -> set[str]:
    """At most ``size`` ids of each side of ``split``, seeded: every id when a side holds no more.

    Example:
        >>> sorted(sampled_ids(Split(["a", "b", "c"], ["d"], []), 2))
        ['b', 'c', 'd']
    """
    chosen: set[str] = set()
    for side in (split.fit, split.validation, split.test):
        chosen.update(side if len(side) <= size else random.Random(seed).sample(side, size))
    return chosen


class EmbedActor:
    """Records (JSON) -> text hash and unit embedding; each actor loads the ONNX encoder once."""

    def __init__(self):
        self.encoder = load_encoder(threads=_assigned_cpus())

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = [r.text() for r in _records(batch)]
        vectors = self.encoder.encode(texts, normalize_embeddings=True)
        hashes = pa.array([text_hash(t) for t in texts], pa.string())
        return batch.append_column("text_hash", hashes).append_column("embedding", _vector_column(vectors))


class EncodeActor:
    """Records + embeddings -> StyleVAE latent and index vector, by the style model the driver trained."""

    def __init__(self, style: StyleModel):
        import torch  # the actor's own process: keep torch to the CPUs Ray gave it

        torch.set_num_threads(_assigned_cpus())
        self.style = style

    def __call__(self, batch: pa.Table) -> pa.Table:
        latents, vectors = self.style.encode(_matrix(batch["embedding"]), _records(batch))
        kept = batch.select(["shard", "row", "id", "text_hash"])
        return kept.append_column("latent", _vector_column(latents)).append_column("vector", _vector_column(vectors))


def run_stage(
    name: str,
    shards: Sequence[Shard],
    actor: type,
    args: tuple,
    workers: int,
    log: Callable[[str], None],
) -> tuple[int, int]:
    """Run ``actor`` over the rows of the shards not yet on disk and write each as it completes; returns how
    many shards and rows were computed."""
    todo = {s.number: s for s in shards if not s.path.exists()}
    log(f"{name}: {len(shards) - len(todo)} of {len(shards)} shard(s) already written")
    if not todo:
        return 0, 0
    data = ray.data.from_arrow([s.rows for s in todo.values()])
    batches = -(-sum(s.rows.num_rows for s in todo.values()) // BATCH_SIZE)  # more actors than batches would idle
    results = data.map_batches(
        actor,
        fn_constructor_args=args,
        batch_size=BATCH_SIZE,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=min(workers, batches)),
        num_cpus=1,
    )
    pending: dict[int, list[pa.Table]] = {n: [] for n in todo}
    for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
        for number in pc.unique(batch["shard"]).to_pylist():
            pending[number].append(batch.filter(pc.equal(batch["shard"], number)))
            if sum(t.num_rows for t in pending[number]) == todo[number].rows.num_rows:
                _write_shard(todo[number].path, pa.concat_tables(pending.pop(number)).sort_by("row"))
                log(f"{name}: shard {number + 1}/{len(shards)} written")
    if pending:  # a retried batch never double-counts: rows are counted per shard against what was sent
        raise RuntimeError(f"{name}: shards {sorted(pending)} came back incomplete")
    return len(todo), sum(s.rows.num_rows for s in todo.values())


def index_from_shards(
    paths: Sequence[Path], records: Sequence[Artwork], style: StyleModel, cache: EmbeddingCache
) -> VectorIndex:
    """The index of every record of the collection: vectors from the encode shards, and for records the
    catalogue does not hold (added through the API) encoded here."""
    tables = [pq.read_table(p, columns=["id", "text_hash", "vector"]) for p in paths]
    table = pa.concat_tables(tables)
    ids, hashes, vectors = table["id"].to_pylist(), table["text_hash"].to_pylist(), _matrix(table["vector"])
    sharded = set(ids)
    extra = [r for r in records if r.id not in sharded]
    if extra:
        extra_vectors = style.index_vectors(embed_texts([r.text() for r in extra], cache)[0], extra)
        ids, hashes = ids + [r.id for r in extra], hashes + [r.text_hash() for r in extra]
        vectors = np.concatenate([vectors, extra_vectors])
    return VectorIndex.build(ids, vectors, fingerprints=hashes, identity=style.index_identity)


def _record_tables(records: Sequence[Artwork], shard_size: int) -> list[tuple[pa.Table, str]]:
    """The embed stage's input: ``shard_size`` records a table, each with what its shard is computed from."""
    tables = []
    for start in range(0, len(records), shard_size):
        chunk = records[start : start + shard_size]
        rows = [json.dumps(r.to_dict(), sort_keys=True) for r in chunk]
        table = pa.table({"row": pa.array(range(len(rows)), pa.int32()), "id": pa.array([r.id for r in chunk]),
                          "record": pa.array(rows, pa.string())})
        tables.append((table, MODEL_ID + "\n".join(rows)))
    return tables


def _plan(folder: Path, inputs: Sequence[tuple[pa.Table, str]]) -> list[Shard]:
    """The shards of a stage, named by number and the digest of their input; files of other inputs go."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for number, (table, source) in enumerate(inputs):
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        rows = table.drop_columns([c for c in ("shard",) if c in table.column_names])
        rows = rows.add_column(0, "shard", pa.array([number] * table.num_rows, pa.int32()))
        shards.append(Shard(number, folder / f"part-{number:05d}-{digest}.parquet", rows))
    wanted = {s.path for s in shards}
    for stale in folder.glob("part-*.parquet"):
        if stale not in wanted:
            stale.unlink()
    return shards


def _write_shard(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomically(path, sink.getvalue().to_pybytes())


def _records(table: pa.Table) -> list[Artwork]:
    return [Artwork.from_dict(json.loads(r)) for r in table["record"].to_pylist()]


def _vector_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def _matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as a float32 (rows, width) matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = array.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(array), -1).astype(np.float32, copy=False)


def _assigned_cpus() -> int:
    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
