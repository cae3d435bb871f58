"""The drafter's fluency gate: a Kneser-Ney trigram model of the curators' delexicalised sentences.

A candidate sentence reaches a reader only if its SLOR (syntactic log-odds ratio, Kann et al. 2018: the mean
per-token log-probability under the trigram model minus that under word frequencies alone) is at least the
``threshold``: a low quantile of the SLOR of held-out curator sentences (the validation side), so the gate is
computed from the collection, never hard-coded. SLOR rather than perplexity, because perplexity mostly rewards
common words: a shuffled sentence of common words has a lower perplexity than a fluent one of rare words,
while its SLOR, which only counts what word order adds, falls. The model is the drafter's own; the evaluation measures
fluency with a different language model (critic.writer.reference), so no draft is scored by its own filter.

Interpolated Kneser-Ney (Chen & Goodman 1998) with one discount; tokens are lower-cased words, punctuation
and slot tokens of ``critic.writer.model.tokenize``. Counts are stored as integer-keyed arrays so a model of
the whole Walters collection is a few MB and loads in a blink.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from critic.atomic import write_atomically
from critic.records import Artwork
from critic.writer.lexicon import Lexicon
from critic.writer.model import tokenize
from critic.writer.slots import delexicalise, sentences

FLUENCY_FILE = "fluency.npz"
_START, _END, _UNK = "<s>", "</s>", "<unk>"
_DIGIT = re.compile(r"\d")


def lm_tokens(sentence: str) -> list[str]:
    """Lower-cased tokens, slot tokens kept (``<CREATOR>``), digits folded to 0.

    Example:
        >>> lm_tokens("<CREATOR> painted it in 1837.")
        ['<CREATOR>', 'painted', 'it', 'in', '0000', '.']
    """
    return [t if t.startswith("<") else _DIGIT.sub("0", t.lower()) for t in tokenize(sentence)]


def _lookup(keys: np.ndarray, values: np.ndarray, key: int) -> int:
    i = int(np.searchsorted(keys, key))
    return int(values[i]) if i < len(keys) and keys[i] == key else 0


@dataclass
class NgramModel:
    """A fitted trigram model; ``perplexity(sentence)`` is its per-token perplexity (end token included)."""

    vocab: list[str]
    tables: dict[str, np.ndarray]  # sorted int64 keys and int64 values per count table
    discount: float
    threshold: float = -math.inf

    def __post_init__(self):
        self._index = {t: i for i, t in enumerate(self.vocab)}
        self._v = len(self.vocab)
        self._sentences = self._get("ctx", 0)  # every sentence starts in the context (<s>, <s>)

    @classmethod
    def fit(cls, sentences: Iterable[str], min_count: int = 2, discount: float = 0.75) -> NgramModel:
        """Fit on sentences (delexicalised curator text); words seen fewer than ``min_count`` times are <unk>.

        Example:
            >>> lm = NgramModel.fit(["The bowl is bronze."] * 3 + ["The cup is silver."] * 3)
            >>> lm.perplexity("The bowl is bronze.") < lm.perplexity("bronze is bowl The.")
            True
        """
        rows = [lm_tokens(s) for s in sentences]
        counts = Counter(t for row in rows for t in row)
        vocab = [_START, _END, _UNK, *sorted(t for t, n in counts.items() if n >= min_count)]
        index = {t: i for i, t in enumerate(vocab)}
        v = len(vocab)
        tri: Counter[int] = Counter()
        for row in rows:
            ids = [0, 0, *(index.get(t, 2) for t in row), 1]
            tri.update((a * v + b) * v + c for a, b, c in zip(ids, ids[1:], ids[2:], strict=False))
        keys = np.fromiter(tri.keys(), dtype=np.int64, count=len(tri))
        values = np.fromiter(tri.values(), dtype=np.int64, count=len(tri))
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        a, b, c = keys // (v * v), (keys // v) % v, keys % v
        tables = {"tri": (keys, values)}
        # Context totals and distinct followers of each (a, b); continuation counts of (b, c), b and c.
        tables["ctx"] = _group(a * v + b, values)
        tables["ctx_types"] = _group(a * v + b, np.ones_like(values))
        bc = np.unique(b * v + c)  # distinct (b, c) pairs seen after some a: continuation count per pair
        tables["cont_bi"] = _group(b * v + c, np.ones_like(values))
        tables["cont_ctx"] = _group(bc // v, np.ones_like(bc))  # distinct c after b (over distinct bc)
        tables["cont_ctx_total"] = _group(b, np.ones_like(values))  # N1+(. b .)
        tables["cont_uni"] = _group(bc % v, np.ones_like(bc))  # N1+(. c)
        flat = {}
        for name, (k, val) in tables.items():
            flat[f"{name}_keys"], flat[f"{name}_values"] = k, val
        flat["cont_uni_total"] = np.array([len(bc)], dtype=np.int64)
        flat["uni_keys"], flat["uni_values"] = _group(c, values)  # plain frequency of each predicted token
        return cls(vocab, flat, discount)

    def _get(self, name: str, key: int) -> int:
        return _lookup(self.tables[f"{name}_keys"], self.tables[f"{name}_values"], key)

    def _prob(self, a: int, b: int, c: int) -> float:
        v, d = self._v, self.discount
        unigram = (self._get("cont_uni", c) + 1) / (int(self.tables["cont_uni_total"][0]) + v)
        total_b = self._get("cont_ctx_total", b)
        bigram = unigram
        if total_b:
            bigram = (max(self._get("cont_bi", b * v + c) - d, 0) + d * self._get("cont_ctx", b) * unigram) / total_b
        context = self._get("ctx", a * v + b)
        if not context:
            return bigram
        seen = self._get("tri", (a * v + b) * v + c)
        return (max(seen - d, 0) + d * self._get("ctx_types", a * v + b) * bigram) / context

    def perplexity(self, sentence: str) -> float:
        """Per-token perplexity of one sentence, its end included."""
        ids = [0, 0, *(self._index.get(t, 2) for t in lm_tokens(sentence)), 1]
        logs = [math.log(self._prob(a, b, c)) for a, b, c in zip(ids, ids[1:], ids[2:], strict=False)]
        return math.exp(-sum(logs) / len(logs))

    def slor(self, sentence: str) -> float:
        """Mean per-token log-probability under the trigram model minus that under word frequency alone.

        Example:
            >>> lm = NgramModel.fit(["The bowl is bronze."] * 3 + ["The cup is silver."] * 3)
            >>> lm.slor("The bowl is bronze.") > lm.slor("Bronze is bowl the.")
            True
        """
        ids = [0, 0, *(self._index.get(t, 2) for t in lm_tokens(sentence)), 1]
        total = int(self.tables["uni_values"].sum())
        gains = [
            math.log(self._prob(a, b, c)) - math.log((self._get("uni", c) + 1) / (total + self._v))
            for a, b, c in zip(ids, ids[1:], ids[2:], strict=False)
        ]
        return sum(gains) / len(gains)

    def frequency(self, word: str) -> float:
        """How often ``word`` (any case) occurs per 10,000 of the curator sentences the model was fitted on.

        Example:
            >>> NgramModel.fit(["The bowl is bronze."] * 3 + ["A cup."]).frequency("Bowl")
            7500.0
        """
        i = self._index.get(word.lower())
        return 0.0 if i is None or not self._sentences else 10_000 * self._get("uni", i) / self._sentences

    def fluent(self, sentence: str) -> bool:
        """Whether the gate lets ``sentence`` (delexicalised) through."""
        return self.slor(sentence) >= self.threshold

    def calibrate(self, held_out: Sequence[str], quantile: float = 0.9) -> float:
        """Set the threshold so that a share ``quantile`` of held-out curator sentences passes; returns it."""
        if not held_out:
            raise ValueError("calibrating the fluency gate needs held-out sentences")
        self.threshold = float(np.quantile([self.slor(s) for s in held_out], 1 - quantile))
        return self.threshold

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            vocab=np.array(self.vocab),
            settings=np.array([self.discount, self.threshold]),
            **self.tables,
        )
        write_atomically(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> NgramModel:
        with np.load(path, allow_pickle=False) as data:
            tables = {k: data[k] for k in data.files if k not in ("vocab", "settings")}
            discount, threshold = (float(x) for x in data["settings"])
            return cls([str(t) for t in data["vocab"]], tables, discount, threshold)


def _group(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` per distinct key: (sorted keys, sums)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=values).astype(np.int64)


def curator_sentences(records: Iterable[Artwork], lexicon: Lexicon) -> list[str]:
    """The delexicalised sentences of the records' descriptions (what the gate learns and is calibrated on)."""
    return [s for r in records if r.description.strip() for s in sentences(delexicalise(r.description, r, lexicon))]


def fit_fluency(
    fit: Sequence[Artwork], validation: Sequence[Artwork], lexicon: Lexicon, quantile: float = 0.9
) -> NgramModel:
    """The gate: fitted on the fit side's curator sentences, its threshold the ``quantile`` of the validation
    side's (so that this share of unseen curator sentences passes)."""
    model = NgramModel.fit(curator_sentences(fit, lexicon))
    model.calibrate(curator_sentences(validation, lexicon), quantile)
    return model
