"""`critic eval recommend`: the protocol of critic.evaluate on a build, every variant and method in one run.

Methods: TF-IDF and MiniLM on each variant's texts, the style model's own input (MiniLM and LSA side by side)
by cosine, its PCA to the latent's size, the latent the index holds, and a rank fusion of TF-IDF with the
latent. The texts of the label-blind and metadata-only variants are embedded through a cache of their own
(``Home.eval_dir``), so they never enter the build's embedding cache; the metadata-only variant's style model
is trained once per collection and kept there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from critic.embed import MODEL_ID, EmbeddingCache, embed_texts
from critic.evaluate import (
    EVAL_LABELS,
    Scorer,
    dense_scorer,
    label_blind,
    metadata_only,
    nearest_neighbours,
    other_creators,
    paired_difference,
    query_precision,
    summarise,
    text_ids_of,
    tfidf_scorer,
)
from critic.home import Home
from critic.labels import label_of
from critic.records import Artwork
from critic.split import three_way_split
from critic.store import ArtworkStore
from critic.style_model import StyleModel, StyleModelError, load_style_model, save_style_model

UNSUPERVISED = ("tfidf", "minilm", "input", "pca")
SHIPPED = "index"  # what `critic similar` searches: latent and input mixed (StyleModel.index_vectors)
RRF_K = 60  # reciprocal-rank fusion's damping constant (Cormack et al. 2009)


@dataclass
class Catalogue:
    """The collection as one variant sees it: its records (fields possibly blanked), their embeddings and the
    style model that encodes them."""

    records: list[Artwork]
    embeddings: np.ndarray
    style: StyleModel


def method_scorers(catalogue: Catalogue, fit_rows: np.ndarray) -> dict[str, Scorer]:
    """Every method's scorer over one catalogue; PCA is fitted on the fit side only."""
    style = catalogue.style
    inputs = style.inputs(catalogue.embeddings, catalogue.records)
    centred = inputs - inputs[fit_rows].mean(0)
    _, _, axes = np.linalg.svd(centred[fit_rows], full_matrices=False)
    latents, shipped = style.encode(catalogue.embeddings, catalogue.records)
    lexical = tfidf_scorer([r.text() for r in catalogue.records])
    latent = dense_scorer(latents - np.asarray(style.meta["latent_center"], dtype=np.float32))
    return {
        "tfidf": lexical,
        "minilm": dense_scorer(catalogue.embeddings),
        "input": dense_scorer(inputs),
        "pca": dense_scorer(centred @ axes[: style.latent_dim].T),
        "latent": latent,
        "rrf(tfidf, latent)": rank_fusion(lexical, latent),
        SHIPPED: dense_scorer(shipped),
    }


def rank_fusion(*scorers: Scorer, k: int = RRF_K) -> Scorer:
    """Reciprocal-rank fusion: each candidate scores sum(1 / (k + its rank under each scorer))."""

    def fused(rows: np.ndarray) -> np.ndarray:
        total = None
        for scorer in scorers:
            ranks = np.argsort(np.argsort(-np.asarray(scorer(rows)), axis=1, kind="stable"), axis=1)
            part = 1.0 / (k + 1.0 + ranks)
            total = part if total is None else total + part
        return total

    return fused


def evaluate_recommendations(
    home: Home, side: str = "test", k: int = 10, log: Callable[[str], None] = lambda _: None
) -> dict:
    """Run every variant and method on ``side`` ("validation" while choosing, "test" to report)."""
    if side not in ("validation", "test"):
        raise ValueError(f"side must be validation or test, not {side!r}")
    records = ArtworkStore(home.store_path).all()
    style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})
    split = three_way_split(records)
    row_of = {r.id: i for i, r in enumerate(records)}
    fit_rows = np.array([row_of[i] for i in split.fit], dtype=np.int64)
    queries = np.array([row_of[i] for i in getattr(split, side)], dtype=np.int64)
    values = {name: np.array([label_of(r, name) for r in records], dtype=object) for name in EVAL_LABELS}
    build_cache, eval_cache = EmbeddingCache(home.cache_path), EmbeddingCache(home.eval_dir / "embeddings.sqlite")

    def embedded(variant: list[Artwork], cache: EmbeddingCache) -> np.ndarray:
        return embed_texts([r.text() for r in variant], cache, progress=True)[0]

    def run(catalogue: Catalogue, labels: Sequence[str], blocked=None) -> dict[str, dict[str, np.ndarray]]:
        text_ids = text_ids_of(catalogue.records)
        hits = {}
        for method, scorer in method_scorers(catalogue, fit_rows).items():
            neighbours = nearest_neighbours(scorer, queries, text_ids, k, blocked)
            hits[method] = {name: query_precision(neighbours, values[name], queries) for name in labels}
        return hits

    per_query: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    log("as-is and other-creators")
    catalogue = Catalogue(records, embedded(records, build_cache), style)
    per_query["as-is"] = run(catalogue, EVAL_LABELS)
    per_query["other-creators"] = run(catalogue, EVAL_LABELS, other_creators(records))
    per_query["label-blind"] = {}
    for name in EVAL_LABELS:
        log(f"label-blind: {name}")
        blind = [label_blind(r, [name]) for r in records]
        for method, hits in run(Catalogue(blind, embedded(blind, eval_cache), style), [name]).items():
            per_query["label-blind"].setdefault(method, {}).update(hits)
    log("metadata-only")
    stripped = [metadata_only(r) for r in records]
    stripped_embeddings = embedded(stripped, eval_cache)
    stripped_style = _metadata_only_style(home, stripped, stripped_embeddings, fit_rows, log)
    per_query["metadata-only"] = run(Catalogue(stripped, stripped_embeddings, stripped_style), EVAL_LABELS)

    precision = {v: {m: summarise(hits) for m, hits in methods.items()} for v, methods in per_query.items()}
    margins = {}
    for variant, methods in per_query.items():
        best = max(UNSUPERVISED, key=lambda m: precision[variant][m]["macro"]["p"])
        margins[variant] = {"baseline": best, **paired_difference(methods[SHIPPED], methods[best])}
    return {
        "k": k,
        "side": side,
        "artworks": len(records),
        "queries": {name: int((values[name][queries] != "").sum()) for name in EVAL_LABELS},
        "shipped": SHIPPED,
        "precision": precision,
        "shipped_minus_best_unsupervised": margins,
    }


def _metadata_only_style(
    home: Home, records: list[Artwork], embeddings: np.ndarray, fit_rows: np.ndarray, log: Callable[[str], None]
) -> StyleModel:
    """The style model `critic build` would train on the metadata-only catalogue, trained once and kept."""
    from critic.build import training_data_hash  # training code: only the evaluation trains here
    from critic.train import TrainConfig, train_style_model
    from critic.vae import VAEConfig

    directory = home.eval_dir / "metadata-only-style"
    data_hash = training_data_hash([records[i] for i in fit_rows], [VAEConfig(), TrainConfig()])
    try:
        return load_style_model(directory, expect={"embedding_model": MODEL_ID, "data_hash": data_hash})
    except StyleModelError:
        log("metadata-only: training its style model")
        provenance = {"embedding_model": MODEL_ID, "data_hash": data_hash}
        style = train_style_model(records, embeddings, fit_rows, {}, provenance, progress=True)
        save_style_model(directory, style)
        return style


def format_tables(result: dict) -> str:
    """One Markdown table per variant: a row per method, a column per label and the macro average, each
    precision with its 95% interval; then the shipped index against the best unsupervised baseline."""
    labels = [*EVAL_LABELS, "macro"]
    lines = [f"precision@{result['k']} on the {result['side']} side; queries: "
             + ", ".join(f"{n} {q}" for n, q in result["queries"].items())]
    for variant, methods in result["precision"].items():
        lines += ["", f"### {variant}", "", "| method | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for method, row in methods.items():
            cells = [_interval(row[n]) if n in row else "" for n in labels]
            shipped = " (shipped)" if method == result["shipped"] else ""
            lines.append(f"| {method}{shipped} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | best unsupervised baseline | shipped minus baseline (macro) | 95% interval |",
              "|---|---|---|---|"]
    for variant, m in result["shipped_minus_best_unsupervised"].items():
        lines.append(f"| {variant} | {m['baseline']} | {m['difference']:+.3f} | [{m['low']:+.3f}, {m['high']:+.3f}] |")
    return "\n".join(lines)


def _interval(estimate: dict[str, float]) -> str:
    return f"{estimate['p']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]"
