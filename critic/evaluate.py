"""The recommendation protocol of docs/design.md: precision@10 by label for TF-IDF, raw MiniLM and the VAE latent."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from critic.embed import MODEL_ID, EmbeddingCache, embed_texts
from critic.home import Home
from critic.labels import label_of
from critic.records import Artwork
from critic.split import split_by_creator
from critic.store import ArtworkStore
from critic.style_model import load_style_model
from critic.vectors import normalise

EVAL_LABELS = ("period", "style", "culture", "classification")


def nearest_neighbours(
    scores_for: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, text_ids: np.ndarray, k: int
) -> np.ndarray:
    """Top-``k`` rows for each query row, skipping rows with the query's own text (itself and duplicates)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 512):
        rows = queries[start : start + 512]
        scores = scores_for(rows)
        scores[text_ids[rows][:, None] == text_ids[None, :]] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + len(rows)] = np.take_along_axis(top, order, axis=1)
    return out


def precision_at_k(
    scores_for: Callable[[np.ndarray], np.ndarray],
    records: Sequence[Artwork],
    test_rows: np.ndarray,
    k: int = 10,
    labels: Sequence[str] = EVAL_LABELS,
) -> dict[str, float]:
    """Share of each labelled test artwork's k nearest that carry its label, per label and overall."""
    texts = [r.text() for r in records]
    text_ids = np.unique(np.array(texts, dtype=object), return_inverse=True)[1]
    neighbours = nearest_neighbours(scores_for, test_rows, text_ids, k)
    result, hits, total = {}, 0, 0
    for name in labels:
        values = np.array([label_of(r, name) for r in records], dtype=object)
        query_values = values[test_rows]
        labelled = query_values != ""
        if not labelled.any():
            continue
        same = values[neighbours[labelled]] == query_values[labelled][:, None]
        result[name] = float(same.mean())
        result[f"{name}_queries"] = int(labelled.sum())
        hits, total = hits + int(same.sum()), total + same.size
    result["overall"] = hits / total if total else float("nan")
    return result


def dense_scorer(vectors: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Cosine similarity of query rows against all rows of ``vectors``."""
    unit = normalise(vectors)
    return lambda rows: unit[rows] @ unit.T


def tfidf_scorer(records: Sequence[Artwork]) -> Callable[[np.ndarray], np.ndarray]:
    matrix = TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english").fit_transform(
        [r.text() for r in records]
    )
    return lambda rows: (matrix[rows] @ matrix.T).toarray()


def compare_methods(
    records: Sequence[Artwork], test_rows: np.ndarray, embeddings: np.ndarray, latents: np.ndarray, k: int = 10
) -> dict[str, dict[str, float]]:
    """Precision@k of the three methods in one run, on the same queries."""
    return {
        "tfidf": precision_at_k(tfidf_scorer(records), records, test_rows, k),
        "minilm": precision_at_k(dense_scorer(embeddings), records, test_rows, k),
        "vae": precision_at_k(dense_scorer(latents), records, test_rows, k),
    }


def evaluate_recommendations(home: Home, k: int = 10) -> dict:
    """Run the recommendation protocol on a build: the test split queries the whole collection."""
    records = ArtworkStore(home.store_path).all()
    embeddings, _ = embed_texts([r.text() for r in records], EmbeddingCache(home.cache_path), progress=True)
    style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})
    _, test_ids = split_by_creator(records)
    rows = {r.id: i for i, r in enumerate(records)}
    test_rows = np.array([rows[i] for i in test_ids], dtype=np.int64)
    latents = style.index_vectors(style.latents(embeddings, [r.text() for r in records]))
    return {
        "k": k,
        "artworks": len(records),
        "test_queries": len(test_rows),
        "dims": {"tfidf": "sparse", "minilm": int(embeddings.shape[1]), "vae": style.latent_dim},
        "precision": compare_methods(records, test_rows, embeddings, latents, k),
    }


def format_precision_table(result: dict) -> str:
    """A Markdown table: one row per label (with its query count), one column per method."""
    methods = list(result["precision"])
    first = result["precision"][methods[0]]
    labels = [name for name in (*EVAL_LABELS, "overall") if name in first]
    header = f"| label | queries | {' | '.join(methods)} |"
    lines = [header, "|" + "---|" * (len(methods) + 2)]
    for name in labels:
        queries = first.get(f"{name}_queries", result["test_queries"])
        cells = " | ".join(f"{result['precision'][m][name]:.3f}" for m in methods)
        lines.append(f"| {name} | {queries} | {cells} |")
    return "\n".join(lines)
