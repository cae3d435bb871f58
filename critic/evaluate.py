"""The recommendation protocol (docs/design.md): precision@k by label, four variants, every method, intervals.

Each labelled artwork of the evaluated side (validation while choosing, test once) queries the whole
collection; precision@k is the share of its k nearest (itself and identical texts excluded) that carry its
label. The variants say what a gallery's own catalogue meets:

- ``as-is``: the collection as built;
- ``other-creators``: candidates by any of the query's creators are skipped;
- ``label-blind``: the evaluated field is left out of every composed text (queries and candidates);
- ``metadata-only``: no descriptions and none of the evaluated labels anywhere, neither in a text nor in
  training, so the style model is trained again on that catalogue, as ``critic build`` would train it.

Intervals are 95% bootstrap intervals over queries; the macro average resamples each label's queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from critic.labels import label_of
from critic.records import Artwork, fold_case
from critic.vectors import normalise

EVAL_LABELS = ("period", "style", "culture", "classification")
BOOTSTRAP_REPS = 1000

#: query rows -> (len(rows), n) similarity scores against every record
Scorer = Callable[[np.ndarray], np.ndarray]
#: query rows -> (len(rows), n) booleans: True where a candidate may not be returned for that query
Blocker = Callable[[np.ndarray], np.ndarray]


def nearest_neighbours(
    scores_for: Scorer, queries: np.ndarray, text_ids: np.ndarray, k: int, blocked: Blocker | None = None
) -> np.ndarray:
    """Top-``k`` rows for each query row, skipping rows with the query's own text (itself and duplicates) and,
    with ``blocked``, the candidates it rules out.

    Example:
        >>> vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> nearest_neighbours(dense_scorer(vectors), np.array([0, 2]), np.arange(4), k=1).tolist()
        [[1], [3]]
    """
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 512):
        rows = queries[start : start + 512]
        scores = np.array(scores_for(rows), dtype=np.float32)
        scores[text_ids[rows][:, None] == text_ids[None, :]] = -np.inf
        if blocked is not None:
            scores[blocked(rows)] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + len(rows)] = np.take_along_axis(top, order, axis=1)
    return out


def query_precision(neighbours: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Per labelled query, the share of its neighbours whose label equals its own (unlabelled queries dropped).

    Example:
        >>> values = np.array(["a", "a", "b", ""], dtype=object)
        >>> query_precision(np.array([[1, 2], [0, 1], [0, 1]]), values, np.array([0, 2, 3])).tolist()
        [0.5, 0.0]
    """
    own = values[queries]
    labelled = own != ""
    return (values[neighbours[labelled]] == own[labelled][:, None]).mean(axis=1)


def precision_at_k(
    scores_for: Scorer,
    records: Sequence[Artwork],
    queries: np.ndarray,
    k: int = 10,
    labels: Sequence[str] = EVAL_LABELS,
    blocked: Blocker | None = None,
) -> dict[str, np.ndarray]:
    """Per label, the precision@k of each labelled query (its k nearest among all of ``records``)."""
    neighbours = nearest_neighbours(scores_for, queries, text_ids_of(records), k, blocked)
    return {name: query_precision(neighbours, label_values(records, name), queries) for name in labels}


def text_ids_of(records: Sequence[Artwork]) -> np.ndarray:
    """One integer per distinct embedded text, so that duplicates of a query's text are never its neighbours."""
    return np.unique(np.array([r.text() for r in records], dtype=object), return_inverse=True)[1]


def label_values(records: Sequence[Artwork], name: str) -> np.ndarray:
    return np.array([label_of(r, name) for r in records], dtype=object)


def dense_scorer(vectors: np.ndarray) -> Scorer:
    """Cosine similarity of query rows against all rows of ``vectors``."""
    unit = normalise(vectors)
    return lambda rows: unit[rows] @ unit.T


def tfidf_scorer(texts: Sequence[str]) -> Scorer:
    """Cosine similarity of TF-IDF vectors (fitted on ``texts``, as a search engine over them would be)."""
    matrix = TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english").fit_transform(texts)
    return lambda rows: (matrix[rows] @ matrix.T).toarray()


def other_creators(records: Sequence[Artwork]) -> Blocker:
    """Rules out, for each query, the candidates that share any of its creators (case and spacing ignored)."""
    keys = [{fold_case(c) for c in r.creators if c.strip()} for r in records]
    rows_of: dict[str, list[int]] = {}
    for row, names in enumerate(keys):
        for name in names:
            rows_of.setdefault(name, []).append(row)

    def blocked(rows: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(rows), len(records)), dtype=bool)
        for i, row in enumerate(rows):
            for name in keys[row]:
                mask[i, rows_of[name]] = True
        return mask

    return blocked


def label_blind(record: Artwork, names: Sequence[str]) -> Artwork:
    """The record as the evaluation composes it with the fields ``names`` unknown (a described record's text,
    its title and description, is unchanged)."""
    return replace(record, **{name: "" for name in names})


def metadata_only(record: Artwork, names: Sequence[str] = EVAL_LABELS) -> Artwork:
    """The record of a catalogue exported without descriptions and without the fields ``names``."""
    return replace(label_blind(record, names), description="")


def bootstrap_means(values: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> np.ndarray:
    """``reps`` means of ``values`` resampled with replacement (the same seed resamples the same queries, so
    two methods' draws are paired)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(reps, len(values)))
    return np.asarray(values, dtype=np.float64)[picks].mean(axis=1)


def summarise(per_label: dict[str, np.ndarray], seed: int = 0) -> dict[str, dict[str, float]]:
    """Mean and 95% bootstrap interval per label and for the macro average over labels."""
    out, draws = {}, []
    for index, (name, values) in enumerate(per_label.items()):
        means = bootstrap_means(values, seed=seed + index)
        draws.append(means)
        out[name] = _estimate(float(np.mean(values)), means, len(values))
    macro = np.mean(draws, axis=0)
    out["macro"] = _estimate(float(np.mean([np.mean(v) for v in per_label.values()])), macro, None)
    return out


def paired_difference(
    ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], seed: int = 0
) -> dict[str, float]:
    """Macro precision of ``ours`` minus ``theirs`` on the same queries, with a paired 95% bootstrap interval."""
    draws = [
        bootstrap_means(ours[name], seed=seed + i) - bootstrap_means(theirs[name], seed=seed + i)
        for i, name in enumerate(ours)
    ]
    point = float(np.mean([np.mean(ours[n]) - np.mean(theirs[n]) for n in ours]))
    lo, hi = np.percentile(np.mean(draws, axis=0), [2.5, 97.5])
    return {"difference": round(point, 4), "low": round(float(lo), 4), "high": round(float(hi), 4)}


def _estimate(point: float, draws: np.ndarray, queries: int | None) -> dict[str, float]:
    lo, hi = np.percentile(draws, [2.5, 97.5])
    out = {"p": round(point, 4), "low": round(float(lo), 4), "high": round(float(hi), 4)}
    if queries is not None:
        out["queries"] = queries
    return out
