"""The text decoder: a word-level GRU conditioned on the VAE latent, the decoded attributes and the title.

The conditioning vector c = tanh(W [z; mean attribute embedding; mean title-word embedding]) sets the
initial state and is fed beside every input word. Output weights are tied to the input embeddings, which
keeps the model small (about 2.5 M parameters at the default sizes) and trainable on two CPU cores.
Weights are stored as safetensors beside a JSON config that carries the vocabularies and the lexicon.
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
import torch
from torch import nn

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


def padded(rows: Sequence[Sequence[int]], width: int | None = None) -> torch.Tensor:
    width = width or max((len(r) for r in rows), default=1) or 1
    out = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row[:width])] = torch.tensor(row[:width], dtype=torch.long)
    return out


def conditioning_inputs(
    config: WriterConfig, latents: np.ndarray, attributes: Sequence[dict[str, str]], titles: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tensors for ``DraftDecoder.conditioning`` from latents, decoded attribute dicts and titles."""
    if latents.ndim != 2 or latents.shape[1] != config.latent_dim:
        raise ValueError(f"latents must have shape (n, {config.latent_dim}), got {latents.shape}")
    attribute_index = {a: i + 1 for i, a in enumerate(config.attribute_vocab)}
    token_index = {t: i for i, t in enumerate(config.vocab)}
    attribute_rows = [[attribute_index[a] for a in attribute_tokens(d) if a in attribute_index] for d in attributes]
    title_rows = [title_ids(t, token_index) for t in titles]
    latent = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
    return latent, padded(attribute_rows), padded(title_rows)


class DraftDecoder(nn.Module):
    """GRU language model over delexicalised descriptions, conditioned per artwork."""

    def __init__(self, config: WriterConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        # Index 0 of the attribute table is padding, so an artwork with no attributes averages to zero.
        self.attribute_embedding = nn.Embedding(len(config.attribute_vocab) + 1, config.embed_dim, padding_idx=0)
        self.condition = nn.Linear(config.latent_dim + 2 * config.embed_dim, config.cond_dim)
        self.initial_state = nn.Linear(config.cond_dim, config.hidden_dim)
        self.gru = nn.GRU(config.embed_dim + config.cond_dim, config.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.to_embedding = nn.Linear(config.hidden_dim, config.embed_dim)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def conditioning(self, latent: torch.Tensor, attributes: torch.Tensor, title: torch.Tensor) -> torch.Tensor:
        """(batch, cond_dim) from latents (batch, latent_dim) and padded ids of attributes and title."""
        parts = [latent]
        for ids, table in ((attributes, self.attribute_embedding), (title, self.token_embedding)):
            mask = (ids > 0).unsqueeze(-1).float()
            parts.append((table(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        return torch.tanh(self.condition(torch.cat(parts, -1)))

    def logits(
        self,
        inputs: torch.Tensor,
        cond: torch.Tensor,
        state: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ):
        """Next-token logits for input ids (batch, steps); returns (logits, new GRU state).

        ``bias`` replaces the output bias (sampling passes one with banned tokens at -inf).
        """
        if state is None:
            state = torch.tanh(self.initial_state(cond)).unsqueeze(0)
        x = self.dropout(self.token_embedding(inputs))
        x = torch.cat([x, cond.unsqueeze(1).expand(-1, x.shape[1], -1)], -1)
        out, state = self.gru(x, state)
        projected = self.to_embedding(self.dropout(out))
        return projected @ self.token_embedding.weight.T + (self.output_bias if bias is None else bias), state

    @torch.inference_mode()
    def sample(
        self,
        cond: torch.Tensor,
        banned: torch.Tensor,
        generator: torch.Generator,
        temperature: float = 0.8,
        top_p: float = 0.9,
        max_tokens: int | None = None,
        prefix: Sequence[int] = (),
        top_k: int = 64,
    ) -> list[list[int]]:
        """Nucleus-sample one token sequence per row of ``cond``; ``banned`` is a (vocab,) bool mask.

        Sampling keeps the smallest set of tokens whose probability reaches ``top_p`` among the ``top_k``
        likeliest (a top-k cut first keeps each step cheap on a CPU). ``prefix`` (token ids) is read
        before sampling starts; the returned sequences continue it.
        """
        self.eval()
        batch = cond.shape[0]
        eos = self.config.vocab.index(EOS)
        start = [self.config.vocab.index(BOS), *prefix]
        tokens = torch.tensor([start] * batch, dtype=torch.long)
        bias = self.output_bias.masked_fill(banned, float("-inf"))
        state = None
        finished = [False] * batch
        sequences: list[list[int]] = [[] for _ in range(batch)]
        for _ in range(max(1, (max_tokens or self.config.max_tokens) - len(prefix))):
            logits, state = self.logits(tokens, cond, state, bias)
            top_logits, top_ids = (logits[:, -1] / max(temperature, 1e-3)).topk(min(top_k, logits.shape[-1]))
            probs = top_logits.softmax(-1)
            probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
            tokens = top_ids.gather(-1, torch.multinomial(probs, 1, generator=generator))
            for row, token in enumerate(tokens.squeeze(1).tolist()):
                if not finished[row]:
                    if token == eos:
                        finished[row] = True
                    else:
                        sequences[row].append(token)
            if all(finished):
                break
        return sequences


@dataclass
class WriterModel:
    """A trained decoder with its lexicon: what ``load_writer`` returns and the drafters use."""

    decoder: DraftDecoder
    lexicon: Lexicon

    @property
    def config(self) -> WriterConfig:
        return self.decoder.config

    def save(self, directory: str | Path) -> None:
        """Write weights, then the config naming their sha256; a crash in between leaves a checkpoint that
        ``load_writer`` refuses (never one that loads with the wrong weights)."""
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = save({k: v.contiguous() for k, v in self.decoder.state_dict().items()})
        payload = {
            "format": FORMAT_VERSION,
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
            "config": asdict(self.config),
            "lexicon": self.lexicon.to_dict(),
        }
        write_atomically(directory / WEIGHTS_FILE, weights)
        write_atomically(directory / CONFIG_FILE, json.dumps(payload, ensure_ascii=False).encode())
        fsync_dir(directory)


def load_writer(directory: str | Path, latent_dim: int | None = None, embedding_model: str | None = None):
    """Load a writer saved by ``WriterModel.save``; refuse a corrupt one or one trained for other inputs."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(directory)
    try:
        payload = json.loads((directory / CONFIG_FILE).read_text())
        if payload.get("format") != FORMAT_VERSION:
            raise WriterModelError(f"writer checkpoint format {payload.get('format')} is not {FORMAT_VERSION}")
        config = WriterConfig(**payload["config"])
        lexicon = Lexicon.from_dict(payload["lexicon"])
        weights = (directory / WEIGHTS_FILE).read_bytes()
        if hashlib.sha256(weights).hexdigest() != payload.get("weights_sha256"):
            raise ValueError("weights do not match the checksum in the config (torn or altered)")
        state = load(weights)
    except FileNotFoundError as exc:
        raise WriterModelError(f"no writer checkpoint in {directory} (run `critic train writer`)") from exc
    except (ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise WriterModelError(f"corrupt writer checkpoint in {directory}: {exc}") from exc
    if latent_dim is not None and latent_dim != config.latent_dim:
        raise WriterModelError(f"writer expects latent dim {config.latent_dim}, the style model gives {latent_dim}")
    if embedding_model and config.embedding_model and embedding_model != config.embedding_model:
        raise WriterModelError(f"writer was trained with embeddings of {config.embedding_model}, not {embedding_model}")
    decoder = DraftDecoder(config)
    try:
        decoder.load_state_dict(state)
    except RuntimeError as exc:
        raise WriterModelError(f"writer weights in {directory} do not match its config: {exc}") from exc
    decoder.eval()
    return WriterModel(decoder, lexicon)
