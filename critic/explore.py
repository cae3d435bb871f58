"""Helpers for the notebooks (``notebooks/``): a build's style space in arrays, 2-D maps and how well they keep
neighbourhoods, what each latent dimension tracks, interpolation, and the CLI called from Python.

Everything here reads a build (a ``Home``) and changes nothing in it.

Example:
    >>> space = StyleSpace.load(Home.resolve())                           # doctest: +SKIP
    >>> compare_maps(space.vectors, {"period": space.labels("period")})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from critic.embed import EmbeddingCache, embed_texts, encode_query
from critic.home import Home
from critic.labels import label_of
from critic.records import Artwork
from critic.vectors import normalise

#: The attribute heads of the StyleVAE, in the order the notebooks show them.
HEADS = ("classification", "period", "culture", "style", "object_type")
_PROGRESS = re.compile(r"\d+%\||\| *\d+/\d+ \[")  # a tqdm progress bar


# ---------------------------------------------------------------------------------------------------- the CLI


@dataclass
class CliRun:
    """One ``critic`` command run in-process: its exit code and what it printed."""

    command: str
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def log(self) -> str:
        """What the command reported on stderr, without progress bars."""
        lines = re.split(r"[\r\n]+", self.stderr)
        return "\n".join(line for line in lines if line.strip() and not _PROGRESS.search(line))


def critic_cli(*args: str, check: bool = True) -> CliRun:
    """Run ``critic ARGS`` in this process (models stay loaded between calls) and capture its output.

    Equivalent to the shell command ``critic ARGS``; ``check`` raises RuntimeError on a non-zero exit.
    """
    from critic.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help, or a usage error
            code = exc.code if isinstance(exc.code, int) else 1
    run = CliRun("critic " + shlex.join(str(a) for a in args), code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise RuntimeError(f"`{run.command}` exited {code}: {run.stderr.strip() or run.stdout.strip()}")
    return run


# ------------------------------------------------------------------------------------------ the style space


@dataclass
class StyleSpace:
    """A build's records with their MiniLM embeddings, raw latent means and index vectors, row-aligned."""

    home: Home
    service: Any  # critic.service.Service: store, style model, index and recommender of the build
    records: list[Artwork]
    embeddings: np.ndarray  # (n, 384) unit MiniLM vectors
    latents: np.ndarray  # (n, d) raw posterior means mu (what the attribute heads read)
    vectors: np.ndarray  # (n, index dim) what the index stores and searches (StyleModel.index_vectors)

    @classmethod
    def load(cls, home: Home) -> StyleSpace:
        from critic.service import Service

        service = Service.load(home, log=lambda _: None)
        records = service.store.all()
        texts = [r.text() for r in records]
        embeddings, _ = embed_texts(texts, EmbeddingCache(home.cache_path))
        latents, vectors = service.style.encode(embeddings, records)
        return cls(home, service, records, embeddings, latents, vectors)

    @property
    def style(self):
        return self.service.style

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def row_of(self, artwork_id: str) -> int:
        return self.ids.index(artwork_id)

    def labels(self, name: str) -> np.ndarray:
        """The evaluation's normalised label per record ("" where missing), as an object array."""
        return np.array([label_of(r, name) for r in self.records], dtype=object)

    def frame(self) -> pd.DataFrame:
        """One row per record: id, title, first creator and the normalised labels."""
        return pd.DataFrame(
            {
                "id": self.ids,
                "title": [r.title for r in self.records],
                "creator": [r.creators[0] if r.creators else "" for r in self.records],
                **{name: self.labels(name) for name in HEADS},
            }
        )


def top_labels(labels: np.ndarray, n: int = 10, other: str = "other") -> np.ndarray:
    """Labels with only the ``n`` most common kept; the rest (and missing ones) become ``other``."""
    values, counts = np.unique(labels[labels != ""], return_counts=True)
    keep = set(values[np.argsort(-counts, kind="stable")[:n]])
    return np.array([v if v in keep else other for v in labels], dtype=object)


# --------------------------------------------------------------------------------------------- 2-D maps


def project_2d(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """A 2-D map of unit vectors: ``pca`` (linear, global) or ``tsne`` (cosine, local neighbourhoods)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "pca":
        return PCA(2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        perplexity = float(min(30, max(5, (len(vectors) - 1) // 4)))
        tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
        return tsne.fit_transform(vectors)
    raise ValueError(f"unknown method {method!r}: pca or tsne")


def knn_label_agreement(points: np.ndarray, labels: np.ndarray, k: int = 10, metric: str = "euclidean") -> float:
    """Share of the ``k`` nearest neighbours (itself excluded) of each labelled point that carry its label.

    Unlabelled points ("") take part as neighbours (and count as misses) but do not query.
    """
    from sklearn.neighbors import NearestNeighbors

    labelled = labels != ""
    if labelled.sum() == 0:
        return float("nan")
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(points)
    _, idx = nn.kneighbors(points[labelled])
    neighbours = idx[:, 1:]  # the first is the point itself
    return float((labels[neighbours] == labels[labelled][:, None]).mean())


def compare_maps(
    vectors: np.ndarray,
    labels: Mapping[str, np.ndarray],
    methods: Sequence[str] = ("pca", "tsne"),
    k: int = 10,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Measure each 2-D method: trustworthiness (are 2-D neighbours true neighbours?) and kNN label agreement.

    The first row, ``latent (d-d)``, is the agreement of the full latent under cosine: what a map can at best
    keep. Returns the table and the 2-D points of each method.
    """
    from sklearn.manifold import trustworthiness

    rows = [{"map": f"latent ({vectors.shape[1]}-d)", "trustworthiness": 1.0}
            | {f"{name} kNN agreement": knn_label_agreement(vectors, v, k, "cosine") for name, v in labels.items()}]
    points = {}
    for method in methods:
        points[method] = xy = project_2d(vectors, method, seed)
        rows.append(
            {"map": method, "trustworthiness": float(trustworthiness(vectors, xy, n_neighbors=k, metric="cosine"))}
            | {f"{name} kNN agreement": knn_label_agreement(xy, v, k) for name, v in labels.items()}
        )
    return pd.DataFrame(rows).set_index("map"), points


# ------------------------------------------------------------------------------- what each dimension tracks


def active_dimensions(latents: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Dimensions whose posterior mean varies across the collection (variance > ``threshold``), most first."""
    variance = latents.var(0)
    order = np.argsort(-variance, kind="stable")
    return order[variance[order] > threshold]


def _head_probabilities(encoder, vocab, z: np.ndarray, keywords: bool) -> dict[str, np.ndarray]:
    probs = encoder.attribute_probabilities(z)
    return {name: p for name, p in probs.items() if name in vocab.classes or (keywords and name == "keywords")}


def dimension_effects(
    style, latents: np.ndarray, dims: Sequence[int], shift: float = 2.0, sample: int = 256, top: int = 3,
    keywords: bool = True, seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What moving along each latent dimension does to the decoded attributes.

    For ``sample`` artworks, dimension ``d`` is set to its mean minus and plus ``shift`` standard deviations
    (across the collection) and the attribute heads decode both points. Returns:

    - per dimension, the attribute values whose probability rises most (``+``) and falls most (``-``) going
      from the low to the high end, averaged over the sampled artworks;
    - per dimension and head, the mean total-variation distance between the two decoded distributions
      (how strongly the dimension moves that head; 0 = not at all, 1 = a complete switch).
    """
    vocab, encoder = style.vocab, style.encoder
    rng = np.random.default_rng(seed)
    base = latents[rng.choice(len(latents), size=min(sample, len(latents)), replace=False)]
    mean, std = latents.mean(0), latents.std(0)
    names = {name: list(classes) for name, classes in vocab.classes.items()}
    if keywords and vocab.keywords:
        names["keywords"] = list(vocab.keywords)
    rows, strength = [], {}
    for d in dims:
        low, high = base.copy(), base.copy()
        low[:, d], high[:, d] = mean[d] - shift * std[d], mean[d] + shift * std[d]
        p_low = _head_probabilities(encoder, vocab, low, keywords)
        p_high = _head_probabilities(encoder, vocab, high, keywords)
        changes = []
        strength[int(d)] = {}
        for head, classes in names.items():
            if head not in p_low:
                continue
            delta = (p_high[head] - p_low[head]).mean(0)
            if head != "keywords":
                strength[int(d)][head] = float(0.5 * np.abs(p_high[head] - p_low[head]).sum(-1).mean())
            changes += [(float(v), f"{head}={c}") for v, c in zip(delta, classes, strict=True)]
        changes.sort()
        rows.append({
            "dim": int(d),
            "variance": float(latents[:, d].var()),
            "up (low -> high)": ", ".join(f"{name} {v:+.2f}" for v, name in changes[::-1][:top] if v > 0),
            "down": ", ".join(f"{name} {v:+.2f}" for v, name in changes[:top] if v < 0),
        })
    return pd.DataFrame(rows).set_index("dim"), pd.DataFrame(strength).T.rename_axis("dim")


# ------------------------------------------------------------------------------------------- interpolation


def interpolate(
    space: StyleSpace, a_id: str, b_id: str, steps: int = 8, exclude_ends: bool = True
) -> pd.DataFrame:
    """Walk the straight line between two artworks' latent means; the nearest artwork and decoded attributes
    at each step (the nearest by the index's cosine over centred unit vectors, as recommendations rank).

    ``exclude_ends`` leaves the two artworks themselves out of the search, so each step names the artwork of
    the collection that lies closest to the path rather than, near either end, the end itself.
    """
    ends = [space.row_of(a_id), space.row_of(b_id)]
    ts = np.linspace(0.0, 1.0, steps)[:, None]
    (a, b), (va, vb) = space.latents[ends], space.vectors[ends]
    decoded = space.style.attributes(((1 - ts) * a + ts * b).astype(np.float32))
    queries = normalise((1 - ts) * va + ts * vb)
    by_id = dict(zip(space.ids, space.records, strict=True))
    rows = []
    for t, query, attrs in zip(ts[:, 0], queries, decoded, strict=True):
        exclude = (a_id, b_id) if exclude_ends else ()
        nearest, score = space.service.recommender.index.search(query, 1, exclude=exclude)[0]
        record = by_id[nearest]
        rows.append({
            "t": round(float(t), 3),
            "nearest": nearest,
            "score": round(score, 3),
            "title": record.title[:60],
            "classification": record.classification,
            "period": record.period,
            "decoded at this point": ", ".join(f"{k}={v}" for k, v in attrs.items()),
        })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ one query, two spaces


def side_by_side(space: StyleSpace, text: str, k: int = 10) -> pd.DataFrame:
    """The same text query answered by cosine over raw MiniLM embeddings and by the service (VAE latent)."""
    query = encode_query(text)
    scores = space.embeddings @ query
    top = np.argsort(-scores, kind="stable")[:k]
    latent = space.service.recommender.similar_to_text(text, k=k).results

    def cell(record: Artwork) -> str:
        facts = "; ".join(v for v in (record.classification, record.period or record.culture) if v)
        return f"{record.title[:50]} ({facts})" if facts else record.title[:50]

    by_id = dict(zip(space.ids, space.records, strict=True))
    return pd.DataFrame({
        "MiniLM (384-d)": [cell(space.records[i]) for i in top],
        "MiniLM score": [round(float(scores[i]), 3) for i in top],
        "VAE latent (index)": [cell(by_id[hit.id]) for hit in latent],
        "latent score": [round(hit.score, 3) for hit in latent],
    }, index=pd.RangeIndex(1, k + 1, name="rank"))



# ----------------------------------------------------------------------------------- keeping notebooks clean


def clear_outputs(paths: Sequence[str]) -> list[str]:
    """Strip outputs and execution counts from notebooks in place (they are committed clean); returns the
    paths that changed."""
    import nbformat

    changed = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        dirty = False
        for cell in notebook.cells:
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
                cell.outputs, cell.execution_count, dirty = [], None, True
            if "execution" in cell.metadata:
                del cell.metadata["execution"]
                dirty = True
        if dirty:
            nbformat.write(notebook, path)
            changed.append(str(path))
    return changed


if __name__ == "__main__":  # python -m critic.explore clear notebooks/*.ipynb
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "clear":
        sys.exit("usage: python -m critic.explore clear NOTEBOOK.ipynb ...")
    for name in clear_outputs(sys.argv[2:]):
        print(f"cleared {name}")
