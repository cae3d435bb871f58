"""The text decoder: a word-level GRU conditioned on the VAE latent, the decoded attributes and the title.

The conditioning vector c = tanh(W [z; mean attribute embedding; mean title-word embedding]) sets the
initial state and is fed beside every input word. Output weights are tied to the input embeddings, which
keeps the model small (about 2.5 M parameters at the default sizes) and trainable on two CPU cores.
Weights are stored as safetensors beside a JSON config that carries the vocabularies and the lexicon.

The model trains and samples in torch (critic.writer.decoder.DraftDecoder); this module holds its weights
as numpy arrays and scores sentences with them in numpy (``WriterModel.log_likelihood``), which is all
serving needs of it: an API worker does not load torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from critic.atomic import fsync_dir, write_atomically
from critic.writer.lexicon import Lexicon
from critic.writer.slots import OTHER_DATE, SLOTS

WEIGHTS_FILE = "writer.safetensors"
CONFIG_FILE = "writer.json"
FORMAT_VERSION = 1
PAD, BOS, EOS, UNK = "<PAD>", "<BOS>", "<EOS>", "<UNK>"
SPECIALS = (PAD, BOS, EOS, UNK, *(f"<{s}>" for s in (*SLOTS, OTHER_DATE)))
_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*>|\w+(?:[-'’.]\w+)*|['’]s\b|[^\w\s]")
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "'s", "’s"}
_NO_SPACE_AFTER = {"(", "["}


class WriterModelError(RuntimeError):
    """A writer checkpoint that is missing, corrupt or does not match the conditioning it is given."""


def tokenize(text: str) -> list[str]:
    """Words, punctuation and slot tokens, case kept.

    Example:
        >>> tokenize("<CREATOR> painted it (ca. <DATE>).")
        ['<CREATOR>', 'painted', 'it', '(', 'ca', '.', '<DATE>', ')', '.']
    """
    return _TOKEN.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens back into text with ordinary spacing around punctuation and quotes."""
    out: list[str] = []
    open_quote = False
    glue_next = True
    for token in tokens:
        if token == '"':
            open_quote = not open_quote
            if open_quote:
                out.append(("" if glue_next else " ") + token)
                glue_next = True
            else:
                out.append(token)
            continue
        glue = glue_next or token in _NO_SPACE_BEFORE
        out.append(token if glue else " " + token)
        glue_next = token in _NO_SPACE_AFTER
    return "".join(out).strip()


@dataclass
class WriterConfig:
    """Sizes and vocabularies of one trained writer (everything needed to rebuild it)."""

    latent_dim: int
    vocab: list[str]
    attribute_vocab: list[str]
    embed_dim: int = 192
    cond_dim: int = 128
    hidden_dim: int = 384
    dropout: float = 0.2
    max_tokens: int = 64
    embedding_model: str = ""
    provenance: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def build_vocab(token_lists: Iterable[Sequence[str]], min_count: int = 3, max_size: int = 12000) -> list[str]:
    """Special and slot tokens first, then words seen ``min_count`` times, most frequent first."""
    counts = Counter(t for tokens in token_lists for t in tokens if t not in SPECIALS)
    words = [w for w, n in counts.most_common(max_size - len(SPECIALS)) if n >= min_count]
    return [*SPECIALS, *words]


def attribute_tokens(attributes: dict[str, str]) -> list[str]:
    """'period=renaissance'-style tokens of a decoded attribute dict."""
    return [f"{name}={str(value).strip().lower()}" for name, value in sorted(attributes.items()) if value]


def title_ids(title: str, index: dict[str, int]) -> list[int]:
    """Vocabulary ids of the title's words (lower-cased form first: descriptions rarely capitalise them)."""
    ids = []
    for word in tokenize(title):
        token_id = index.get(word.lower(), index.get(word))
        if token_id is not None and word.isalpha():
            ids.append(token_id)
    return ids


def conditioning_ids(
    config: WriterConfig, latents: np.ndarray, attributes: Sequence[dict[str, str]], titles: Sequence[str]
) -> tuple[list[list[int]], list[list[int]]]:
    """Per artwork, the ids of its attribute tokens (from 1; 0 pads) and of its title's words; checks that
    the latents fit the writer."""
    if latents.ndim != 2 or latents.shape[1] != config.latent_dim:
        raise ValueError(f"latents must have shape (n, {config.latent_dim}), got {latents.shape}")
    attribute_index = {a: i + 1 for i, a in enumerate(config.attribute_vocab)}
    token_index = {t: i for i, t in enumerate(config.vocab)}
    attribute_rows = [[attribute_index[a] for a in attribute_tokens(d) if a in attribute_index] for d in attributes]
    return attribute_rows, [title_ids(t, token_index) for t in titles]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _mean_rows(table: np.ndarray, rows: Sequence[Sequence[int]]) -> np.ndarray:
    """The mean of ``table``'s rows at each list of ids (zeros for an empty list)."""
    out = np.zeros((len(rows), table.shape[1]), dtype=np.float32)
    for i, ids in enumerate(rows):
        if ids:
            out[i] = table[list(ids)].mean(0)
    return out


@dataclass
class WriterModel:
    """A trained decoder's weights (numpy arrays, named as in DraftDecoder's state) with its config and lexicon:
    what ``load_writer`` returns and the drafters use."""

    config: WriterConfig
    lexicon: Lexicon
    weights: dict[str, np.ndarray]

    def conditioning(
        self, latents: np.ndarray, attributes: Sequence[dict[str, str]], titles: Sequence[str]
    ) -> np.ndarray:
        """(n, cond_dim) conditioning vectors c from latents, decoded attribute dicts and titles."""
        w = self.weights
        attribute_rows, title_rows = conditioning_ids(self.config, latents, attributes, titles)
        parts = [
            np.asarray(latents, dtype=np.float32),
            _mean_rows(w["attribute_embedding.weight"], attribute_rows),
            _mean_rows(w["token_embedding.weight"], title_rows),
        ]
        return np.tanh(np.concatenate(parts, 1) @ w["condition.weight"].T + w["condition.bias"])

    def log_likelihood(self, rows: Sequence[Sequence[int]], cond: np.ndarray) -> np.ndarray:
        """Mean log-probability per predicted token of each token-id row (each starts with <BOS>), one
        conditioning row per token row: the GRU (torch's gate layout) unrolled in numpy."""
        w = self.weights
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)  # <PAD> is id 0
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        embedding = w["token_embedding.weight"]
        w_ih, w_hh, b_ih, b_hh = (w[f"gru.{n}_l0"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        hidden, embed_dim = w_hh.shape[1], embedding.shape[1]
        h = np.tanh(cond @ w["initial_state.weight"].T + w["initial_state.bias"])
        # The conditioning half of every step's input is the same: its input projection is computed once.
        cond_gates = cond @ w_ih[:, embed_dim:].T + b_ih
        word_in, state_in = np.ascontiguousarray(w_ih[:, :embed_dim].T), np.ascontiguousarray(w_hh.T)
        outputs = []
        for step in range(width - 1):
            gi = embedding[ids[:, step]] @ word_in + cond_gates
            gh = h @ state_in + b_hh
            r = _sigmoid(gi[:, :hidden] + gh[:, :hidden])
            z = _sigmoid(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
            n = np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
            h = (1.0 - z) * n + z * h
            outputs.append(h)
        projected = np.stack(outputs, 1) @ w["to_embedding.weight"].T + w["to_embedding.bias"]
        logits = projected @ embedding.T + w["output_bias"]
        top = logits.max(-1, keepdims=True)
        log_norm = top[..., 0] + np.log(np.exp(logits - top).sum(-1))
        targets = ids[:, 1:]
        chosen = np.take_along_axis(logits, targets[..., None], -1)[..., 0] - log_norm
        mask = (targets != 0).astype(np.float32)
        return (chosen * mask).sum(1) / np.maximum(mask.sum(1), 1.0)

    def save(self, directory: str | Path) -> None:
        """Write weights, then the config naming their sha256; a crash in between leaves a checkpoint that
        ``load_writer`` refuses (never one that loads with the wrong weights)."""
        from safetensors.numpy import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = save({k: np.ascontiguousarray(v) for k, v in self.weights.items()})
        payload = {
            "format": FORMAT_VERSION,
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
            "config": asdict(self.config),
            "lexicon": self.lexicon.to_dict(),
        }
        write_atomically(directory / WEIGHTS_FILE, weights)
        write_atomically(directory / CONFIG_FILE, json.dumps(payload, ensure_ascii=False).encode())
        fsync_dir(directory)


def _check_shapes(config: WriterConfig, weights: dict[str, np.ndarray]) -> None:
    e, c, h, v = config.embed_dim, config.cond_dim, config.hidden_dim, config.vocab_size
    expected = {
        "token_embedding.weight": (v, e),
        "attribute_embedding.weight": (len(config.attribute_vocab) + 1, e),
        "condition.weight": (c, config.latent_dim + 2 * e),
        "condition.bias": (c,),
        "initial_state.weight": (h, c),
        "initial_state.bias": (h,),
        "gru.weight_ih_l0": (3 * h, e + c),
        "gru.weight_hh_l0": (3 * h, h),
        "gru.bias_ih_l0": (3 * h,),
        "gru.bias_hh_l0": (3 * h,),
        "to_embedding.weight": (e, h),
        "to_embedding.bias": (e,),
        "output_bias": (v,),
    }
    got = {name: tuple(array.shape) for name, array in weights.items()}
    if got != expected:
        wrong = sorted(n for n in expected.keys() | got.keys() if got.get(n) != expected.get(n))
        raise ValueError(f"weights {', '.join(wrong)} do not match the config's sizes")


def load_writer(directory: str | Path, latent_dim: int | None = None, embedding_model: str | None = None):
    """Load a writer saved by ``WriterModel.save``; refuse a corrupt one or one trained for other inputs."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    directory = Path(directory)
    try:
        payload = json.loads((directory / CONFIG_FILE).read_text())
        if payload.get("format") != FORMAT_VERSION:
            raise WriterModelError(f"writer checkpoint format {payload.get('format')} is not {FORMAT_VERSION}")
        config = WriterConfig(**payload["config"])
        lexicon = Lexicon.from_dict(payload["lexicon"])
        data = (directory / WEIGHTS_FILE).read_bytes()
        if hashlib.sha256(data).hexdigest() != payload.get("weights_sha256"):
            raise ValueError("weights do not match the checksum in the config (torn or altered)")
        weights = load(data)
    except FileNotFoundError as exc:
        raise WriterModelError(f"no writer checkpoint in {directory} (run `critic train writer`)") from exc
    except (ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise WriterModelError(f"corrupt writer checkpoint in {directory}: {exc}") from exc
    if latent_dim is not None and latent_dim != config.latent_dim:
        raise WriterModelError(f"writer expects latent dim {config.latent_dim}, the style model gives {latent_dim}")
    if embedding_model and config.embedding_model and embedding_model != config.embedding_model:
        raise WriterModelError(f"writer was trained with embeddings of {config.embedding_model}, not {embedding_model}")
    try:
        _check_shapes(config, weights)
    except ValueError as exc:
        raise WriterModelError(f"writer weights in {directory} do not match its config: {exc}") from exc
    return WriterModel(config, lexicon, weights)
