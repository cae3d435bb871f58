"""`critic build`: import -> store -> embed -> train the StyleVAE -> index. Each step reuses what it can."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from critic.corpus import CatalogError, import_catalog, load_walters
from critic.embed import MODEL_ID, EmbeddingCache, cached_embedder, embed_texts
from critic.home import Home
from critic.labels import label_of
from critic.lexical import LEXICAL_DIMS
from critic.records import LABEL_FIELDS, Artwork
from critic.split import three_way_split
from critic.store import ArtworkStore
from critic.style_model import (
    DATE_DIMS,
    DATE_SCALE,
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


def _log(message: str) -> None:
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


def embed_store(home: Home, records: Sequence[Artwork], progress: bool = True) -> tuple[np.ndarray, int]:
    """Embeddings of every record's text through the on-disk cache; returns (vectors, newly encoded)."""
    return embed_texts([r.text() for r in records], EmbeddingCache(home.cache_path), progress=progress)


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
    log: Callable[[str], None] = _log,
) -> dict:
    """Build (or refresh) everything under ``home``; returns the build info that `critic info` shows.

    Catalog records are upserted: artworks added through the API stay unless the catalog replaces them.
    ``writer=False`` skips training the description writer (the service then drafts by retrieval).
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    home.root.mkdir(parents=True, exist_ok=True)

    step = time.perf_counter()
    if catalog is None:
        imported, rejected, source = load_walters(limit), [], "walters"
    else:
        result = import_catalog(catalog, mapping)
        imported, rejected, source = result.records[:limit] if limit else result.records, result.rejected, str(catalog)
        log(f"import: {result.summary()}")
        for rejection in rejected[:20]:
            log(f"  rejected {rejection}")
    if not imported:
        raise CatalogError(f"{source}: no usable record to import ({len(rejected)} rejected): nothing to build")
    store = ArtworkStore(home.store_location)
    store.upsert_many(imported)
    records = store.all()
    if len(records) < MIN_ARTWORKS:
        raise CatalogError(
            f"{source}: {len(records)} usable record(s); a build needs at least {MIN_ARTWORKS} "
            "(a style model is fitted on one side of a creator split and measured on the others)"
        )
    timings["import_s"] = time.perf_counter() - step
    log(f"store: {len(imported)} records imported, {len(records)} in the collection")

    step = time.perf_counter()
    embeddings, encoded = embed_store(home, records, progress)
    timings["embed_s"] = time.perf_counter() - step
    log(f"embed: {encoded} new texts encoded, {len(records) - encoded} from the cache")

    step = time.perf_counter()
    split = three_way_split(records)
    rows = {r.id: i for i, r in enumerate(records)}
    fit_rows, validation_rows, test_rows = (
        np.array([rows[i] for i in ids], dtype=np.int64) for ids in (split.fit, split.validation, split.test)
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
    meta = style.meta
    timings["vae_s"] = time.perf_counter() - step

    step = time.perf_counter()
    index = VectorIndex.build(
        [r.id for r in records],
        style.index_vectors(embeddings, records),
        fingerprints=[r.text_hash() for r in records],
        identity=style.index_identity,
    )
    index.save(home.index_dir)
    timings["index_s"] = time.perf_counter() - step
    log(f"index: {len(index)} artworks, {index.kind} FAISS index")

    step = time.perf_counter()
    writer_info = None
    if writer:
        cache = EmbeddingCache(home.cache_path)
        try:
            writer_info = ensure_writer(
                home.writer_dir,
                records,
                style,
                data_hash,
                cached_embedder(cache),
                writer_config,
                log=log,
            )
            reused = "training data unchanged, checkpoint reused" if writer_info["reused"] else "trained"
            log(f"writer: {reused} ({writer_info['training_descriptions']} train-split descriptions)")
        except ValueError as exc:  # too few descriptions to learn from: the service drafts by retrieval
            log(f"writer: skipped ({exc})")
    timings["writer_s"] = time.perf_counter() - step

    timings["total_s"] = time.perf_counter() - started
    info = {
        "source": source,
        "artworks": len(records),
        "imported": len(imported),
        "rejected": len(rejected),
        "with_description": sum(bool(r.description.strip()) for r in records),
        "train": len(fit_rows),
        "validation": len(validation_rows),
        "test": len(test_rows),
        "embedding_model": MODEL_ID,
        "embedding_dim": int(embeddings.shape[1]),
        "newly_embedded": encoded,
        "latent_dim": style.latent_dim,
        "index_mix": {**style.meta.get("index", {}), "latent_weight": style.latent_weight,
                      "reason": style.index_reason},
        "index": {"kind": index.kind, "count": len(index)},
        "vae": {k: meta.get(k) for k in ("data_hash", "epochs", "train", "validation", "test")},
        "writer": writer_info,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    home.write_info(info)
    log(f"build: done in {timings['total_s']:.1f} s")
    return info


def _summarise(metrics: dict) -> str:
    accuracy = ", ".join(f"{k} {v:.2f}" for k, v in metrics["attribute_accuracy"].items())
    return (
        f"ELBO {metrics['elbo']:.1f}, recon {metrics['recon']:.1f}, KL {metrics['kl']:.1f}, "
        f"active units {metrics['active_units']}/{metrics['latent_dim']}, accuracy: {accuracy}"
    )
