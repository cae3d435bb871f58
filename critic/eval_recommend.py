"""`critic eval recommend`: the protocol of critic.evaluate on a build, every variant and method in one run.

Methods: TF-IDF and MiniLM on each variant's texts, the style model's own input (MiniLM, LSA and the date
block side by side) by cosine, its PCA to the latent's size, the latent, a rank fusion of TF-IDF with the
latent, and the index `critic similar` searches (latent and input mixed). The texts of the label-blind and
metadata-only variants are embedded through a cache of their own (``Home.eval_dir``), so they never enter the
build's embedding cache; the metadata-only variant's style model is trained once per collection and kept there
too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from critic.embed import MODEL_ID, EmbeddingCache, embed_texts
from critic.evaluate import (
    EVAL_LABELS,
    Blocker,
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
from critic.records import Artwork, text_hash
from critic.split import three_way_split
from critic.store import ArtworkStore
from critic.style_model import StyleModel, StyleModelError, load_style_model, mix_vectors, save_style_model

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
    parts = style.index_parts(catalogue.embeddings, catalogue.records)
    centred = parts.inputs - parts.inputs[fit_rows].mean(0)
    _, _, axes = np.linalg.svd(centred[fit_rows], full_matrices=False)
    lexical = tfidf_scorer([r.text() for r in catalogue.records])
    latent = dense_scorer(parts.latent_block)
    return {
        "tfidf": lexical,
        "minilm": dense_scorer(catalogue.embeddings),
        "input": dense_scorer(parts.inputs),
        "pca": dense_scorer(centred @ axes[: style.latent_dim].T),
        "latent": latent,
        "rrf(tfidf, latent)": rank_fusion(lexical, latent),
        SHIPPED: dense_scorer(mix_vectors(parts.latent_block, parts.input_block, style.latent_weight)),
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


@dataclass
class Protocol:
    """What every variant shares: the collection, its sides and the true labels of every record."""

    home: Home
    records: list[Artwork]
    style: StyleModel
    fit_rows: np.ndarray
    queries: np.ndarray
    values: dict[str, np.ndarray]
    k: int = 10

    @classmethod
    def load(cls, home: Home, side: str = "test", k: int = 10) -> Protocol:
        if side not in ("validation", "test"):
            raise ValueError(f"side must be validation or test, not {side!r}")
        records = ArtworkStore(home.store_location).all()
        style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})
        split = three_way_split(records)
        row_of = {r.id: i for i, r in enumerate(records)}
        fit_rows = np.array([row_of[i] for i in split.fit], dtype=np.int64)
        queries = np.array([row_of[i] for i in getattr(split, side)], dtype=np.int64)
        values = {name: np.array([label_of(r, name) for r in records], dtype=object) for name in EVAL_LABELS}
        return cls(home, records, style, fit_rows, queries, values, k)

    def variants(self, log: Callable[[str], None] = lambda _: None) -> Iterator[Variant]:
        """Each variant's catalogue, the labels it scores and the candidates it rules out."""
        self.home.eval_dir.mkdir(parents=True, exist_ok=True)
        build_cache = EmbeddingCache(self.home.cache_path)
        eval_cache = EmbeddingCache(self.home.eval_dir / "embeddings.sqlite")

        def embedded(variant: list[Artwork]) -> np.ndarray:
            """The build's cache answers the collection's own texts (read only); the evaluation's the rest."""
            texts = [r.text() for r in variant]
            hashes = [text_hash(t) for t in texts]
            known = build_cache.get_many(hashes)
            rest = list(dict.fromkeys(t for t, h in zip(texts, hashes, strict=True) if h not in known))
            if rest:
                vectors, _ = embed_texts(rest, eval_cache, progress=True)
                known.update(zip((text_hash(t) for t in rest), vectors, strict=True))
            return np.stack([known[h] for h in hashes])

        log("as-is and other-creators")
        catalogue = Catalogue(self.records, embedded(self.records), self.style)
        yield Variant("as-is", catalogue, EVAL_LABELS)
        yield Variant("other-creators", catalogue, EVAL_LABELS, other_creators(self.records))
        for name in EVAL_LABELS:
            log(f"label-blind: {name}")
            blind = [label_blind(r, [name]) for r in self.records]
            yield Variant("label-blind", Catalogue(blind, embedded(blind), self.style), (name,))
        log("metadata-only")
        stripped = [metadata_only(r) for r in self.records]
        embeddings = embedded(stripped)
        style = _metadata_only_style(self.home, stripped, embeddings, self.fit_rows, log)
        yield Variant("metadata-only", Catalogue(stripped, embeddings, style), EVAL_LABELS)

    def precision(self, variant: Variant, scorer: Scorer) -> dict[str, np.ndarray]:
        """Per scored label, each query's precision@k under ``scorer``."""
        text_ids = text_ids_of(variant.catalogue.records)
        neighbours = nearest_neighbours(scorer, self.queries, text_ids, self.k, variant.blocked)
        return {name: query_precision(neighbours, self.values[name], self.queries) for name in variant.labels}


@dataclass
class Variant:
    name: str
    catalogue: Catalogue
    labels: Sequence[str]
    blocked: Blocker | None = None


def evaluate_recommendations(
    home: Home, side: str = "test", k: int = 10, log: Callable[[str], None] = lambda _: None
) -> dict:
    """Run every variant and method on ``side`` ("validation" while choosing, "test" to report)."""
    protocol = Protocol.load(home, side, k)
    per_query: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for variant in protocol.variants(log):
        methods = per_query.setdefault(variant.name, {})
        for method, scorer in method_scorers(variant.catalogue, protocol.fit_rows).items():
            methods.setdefault(method, {}).update(protocol.precision(variant, scorer))

    precision = {v: {m: summarise(hits) for m, hits in methods.items()} for v, methods in per_query.items()}
    margins = {}
    for variant, methods in per_query.items():
        best = max(UNSUPERVISED, key=lambda m: precision[variant][m]["macro"]["p"])
        margins[variant] = {"baseline": best, **paired_difference(methods[SHIPPED], methods[best])}
    return {
        "k": k,
        "side": side,
        "artworks": len(protocol.records),
        "queries": {name: int((protocol.values[name][protocol.queries] != "").sum()) for name in EVAL_LABELS},
        "shipped": SHIPPED,
        "index_mix": {"latent_weight": protocol.style.latent_weight, "reason": protocol.style.index_reason},
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
