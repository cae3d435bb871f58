"""`critic build`: import -> store -> embed -> train the StyleVAE -> index. Each step reuses what it can."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from critic.corpus import CatalogError, import_catalog, load_walters
from critic.embed import DIM, MODEL_ID, EmbeddingCache, cached_embedder, embed_texts
from critic.home import Home
from critic.labels import label_of
from critic.lexical import LEXICAL_DIMS
from critic.records import LABEL_FIELDS, Artwork
from critic.split import Split, three_way_split
from critic.store import ArtworkStore
from critic.style_model import (
    DATE_DIMS,
    DATE_SCALE,
    StyleModel,
    StyleModelError,
    load_style_model,
    save_style_model,
)
from critic.train import TrainConfig, train_style_model
from critic.vae import VAEConfig
from critic.writer.protocol import ensure_writer
from critic.writer.train import WriterTrainConfig
from index.store import VectorIndex

#: The smallest collection that builds (measured: with fewer, the creator split leaves no text to fit the
#: lexical projection on). Collections this small have no label frequent enough to learn, so their index holds
#: the unsupervised input vectors, and `critic info` says so.
MIN_ARTWORKS = 3


def log_stderr(message: str) -> None:
    """Build progress goes to stderr (stdout carries `--json`)."""
    print(message, file=sys.stderr, flush=True)


def training_data_hash(records: Sequence[Artwork], configs: Sequence[object]) -> str:
    """What the style model was trained on: texts, labels, keywords and dates of the fit side, plus the settings."""
    digest = hashlib.sha256(MODEL_ID.encode())
    for r in sorted(records, key=lambda r: r.id):
        labels = [label_of(r, name) for name in LABEL_FIELDS]
        digest.update(json.dumps([r.id, r.text_hash(), labels, r.keywords, r.year_start, r.year_end]).encode())
    settings = [LEXICAL_DIMS, DATE_DIMS, DATE_SCALE, *(asdict(c) for c in configs)]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def build(
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
    engine: Engine | None = None,
) -> dict:
    """Build (or refresh) everything under ``home``; returns the build info that `critic info` shows.

    Catalog records are upserted: artworks added through the API stay unless the catalog replaces them.
    ``writer=False`` skips training the description writer (the service then drafts by retrieval). ``engine``
    runs the per-record steps: this process by default, a Ray cluster with critic.build_ray.RayEngine.
    """
    engine = engine or LocalEngine()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    home.root.mkdir(parents=True, exist_ok=True)

    step = time.perf_counter()
    imported = import_records(catalog, mapping, limit, log)
    timings["import_s"] = time.perf_counter() - step
    with engine.session(progress, log):
        step = time.perf_counter()
        records, encoded = engine.embed(home, imported, progress, log)
        timings["embed_s"] = time.perf_counter() - step

        step = time.perf_counter()
        split = three_way_split(records)
        sample = engine.training_sample(records, split)
        style, data_hash = _style_model(
            home, sample, engine.embeddings(home, sample), split, vae_config, train_config, progress, log
        )
        timings["vae_s"] = time.perf_counter() - step

        step = time.perf_counter()
        index = engine.index(home, records, style, log)
    index.save(home.index_dir)
    timings["index_s"] = time.perf_counter() - step
    log(f"index: {len(index)} artworks, {index.kind} FAISS index")

    step = time.perf_counter()
    writer_info = _writer(home, records, style, data_hash, writer_config, log) if writer else None
    timings["writer_s"] = time.perf_counter() - step

    timings["total_s"] = time.perf_counter() - started
    meta = style.meta
    info = {
        "source": imported.source,
        "artworks": len(records),
        "imported": len(imported.records),
        "rejected": len(imported.rejected),
        "with_description": sum(bool(r.description.strip()) for r in records),
        "train": len(split.fit),
        "validation": len(split.validation),
        "test": len(split.test),
        "embedding_model": MODEL_ID,
        "embedding_dim": DIM,
        "newly_embedded": encoded,
        "latent_dim": style.latent_dim,
        "index_mix": {**meta.get("index", {}), "latent_weight": style.latent_weight,
                      "reason": style.index_reason},
        "index": {"kind": index.kind, "count": len(index)},
        "vae": {k: meta.get(k) for k in ("data_hash", "epochs", "train", "validation", "test")},
        "writer": writer_info,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        **engine.describe(),
    }
    home.write_info(info)
    log(f"build: done in {timings['total_s']:.1f} s")
    return info


@dataclass(frozen=True)
class Imported:
    """What an import gave: the usable records, the rejected rows, and where they came from."""

    records: list[Artwork]
    rejected: list
    source: str


class Engine(Protocol):
    """Where a build's per-record steps run: storing and embedding the collection, and its index vectors."""

    def session(self, progress: bool, log: Callable[[str], None]) -> AbstractContextManager[None]:
        """The span in which the steps below run (a connection to a cluster, say)."""
        ...

    def embed(
        self, home: Home, imported: Imported, progress: bool, log: Callable[[str], None]
    ) -> tuple[list[Artwork], int]:
        """Store ``imported``, embed the collection; returns its records (checked_collection) and how many
        texts were newly encoded."""
        ...

    def training_sample(self, records: Sequence[Artwork], split: Split) -> list[Artwork]:
        """The records the style model trains and is measured on, in collection order."""
        ...

    def embeddings(self, home: Home, records: Sequence[Artwork]) -> np.ndarray:
        """The embeddings of ``records``, embedded before."""
        ...

    def index(self, home: Home, records: Sequence[Artwork], style: StyleModel, log: Callable[[str], None]
              ) -> VectorIndex:
        """The index of every record of the collection by ``style``."""
        ...

    def describe(self) -> dict:
        """Entries the build info adds for this engine."""
        ...


class LocalEngine:
    """This process: embeddings through the on-disk cache, kept in memory for the training and the index."""

    def __init__(self) -> None:
        self._embeddings = np.zeros((0, DIM), np.float32)
        self._rows: dict[str, int] = {}

    def session(self, progress: bool, log: Callable[[str], None]) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def embed(
        self, home: Home, imported: Imported, progress: bool, log: Callable[[str], None]
    ) -> tuple[list[Artwork], int]:
        store = ArtworkStore(home.store_location)
        store.upsert_many(imported.records)
        records = checked_collection(store, imported, log)
        cache = EmbeddingCache(home.cache_path)
        self._embeddings, encoded = embed_texts([r.text() for r in records], cache, progress=progress)
        self._rows = {r.id: i for i, r in enumerate(records)}
        log(f"embed: {encoded} new texts encoded, {len(records) - encoded} from the cache")
        return records, encoded

    def training_sample(self, records: Sequence[Artwork], split: Split) -> list[Artwork]:
        return list(records)

    def embeddings(self, home: Home, records: Sequence[Artwork]) -> np.ndarray:
        return self._embeddings[[self._rows[r.id] for r in records]]

    def index(self, home: Home, records: Sequence[Artwork], style: StyleModel, log: Callable[[str], None]
              ) -> VectorIndex:
        return VectorIndex.build(
            [r.id for r in records],
            style.index_vectors(self.embeddings(home, records), records),
            fingerprints=[r.text_hash() for r in records],
            identity=style.index_identity,
        )

    def describe(self) -> dict:
        return {}


def import_records(
    catalog: str | Path | None, mapping: dict[str, str] | None, limit: int | None, log: Callable[[str], None]
) -> Imported:
    """The bundled Walters collection (``catalog`` None) or a catalogue file, its first ``limit`` records;
    CatalogError when nothing is usable."""
    if catalog is None:
        imported = Imported(load_walters(limit), [], "walters")
    else:
        result = import_catalog(catalog, mapping)
        imported = Imported(result.records[:limit] if limit else result.records, result.rejected, str(catalog))
        log(f"import: {result.summary()}")
        for rejection in imported.rejected[:20]:
            log(f"  rejected {rejection}")
    if not imported.records:
        raise CatalogError(
            f"{imported.source}: no usable record to import ({len(imported.rejected)} rejected): nothing to build"
        )
    return imported


def checked_collection(store: ArtworkStore, imported: Imported, log: Callable[[str], None]) -> list[Artwork]:
    """Every record of the collection once ``imported`` is in ``store``; CatalogError when too few to build."""
    records = store.all()
    if len(records) < MIN_ARTWORKS:
        raise CatalogError(
            f"{imported.source}: {len(records)} usable record(s); a build needs at least {MIN_ARTWORKS} "
            "(a style model is fitted on one side of a creator split and measured on the others)"
        )
    log(f"store: {len(imported.records)} records imported, {len(records)} in the collection")
    return records


def _style_model(
    home: Home,
    records: Sequence[Artwork],
    embeddings: np.ndarray,
    split: Split,
    vae_config: VAEConfig | None,
    train_config: TrainConfig | None,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[StyleModel, str]:
    """The style model of ``split``'s fit side, reused from ``home`` when its training data is unchanged, else
    trained and saved; returns it with its data hash.

    ``records`` (rows of ``embeddings``) may be a sample of the collection: split ids outside it are left out,
    and the model is what the full build would train whenever the sample holds every fit record.
    """
    rows = {r.id: i for i, r in enumerate(records)}
    fit_rows, validation_rows, test_rows = (
        np.array([rows[i] for i in ids if i in rows], dtype=np.int64)
        for ids in (split.fit, split.validation, split.test)
    )
    vc, tc = vae_config or VAEConfig(), train_config or TrainConfig()
    data_hash = training_data_hash([records[i] for i in fit_rows], [vc, tc])
    try:
        style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID, "data_hash": data_hash})
        log("vae: training data unchanged, checkpoint reused")
    except StyleModelError:
        held_out = {"validation": validation_rows, "test": test_rows}
        provenance = {"embedding_model": MODEL_ID, "data_hash": data_hash}
        style = train_style_model(records, embeddings, fit_rows, held_out, provenance, vc, tc, progress)
        save_style_model(home.vae_dir, style)
        measured = f", validation {_summarise(style.meta['validation'])}" if "validation" in style.meta else ""
        log(f"vae: trained on {len(fit_rows)} artworks{measured}; index: {style.index_reason}")
    return style, data_hash


def _writer(
    home: Home,
    records: Sequence[Artwork],
    style: StyleModel,
    data_hash: str,
    writer_config: WriterTrainConfig | None,
    log: Callable[[str], None],
) -> dict | None:
    """The description writer, reused when its training data is unchanged; None when too few descriptions."""
    try:
        writer_info = ensure_writer(
            home.writer_dir,
            records,
            style,
            data_hash,
            cached_embedder(EmbeddingCache(home.cache_path)),
            writer_config,
            log=log,
        )
    except ValueError as exc:  # too few descriptions to learn from: the service drafts by retrieval
        log(f"writer: skipped ({exc})")
        return None
    reused = "training data unchanged, checkpoint reused" if writer_info["reused"] else "trained"
    log(f"writer: {reused} ({writer_info['training_descriptions']} train-split descriptions)")
    return writer_info


def _summarise(metrics: dict) -> str:
    accuracy = ", ".join(f"{k} {v:.2f}" for k, v in metrics["attribute_accuracy"].items())
    return (
        f"ELBO {metrics['elbo']:.1f}, recon {metrics['recon']:.1f}, KL {metrics['kl']:.1f}, "
        f"active units {metrics['active_units']}/{metrics['latent_dim']}, accuracy: {accuracy}"
    )
