"""Training the decoder on delexicalised train-split descriptions (``critic train writer``)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from critic.records import Artwork
from critic.writer.decoder import DraftDecoder, conditioning_inputs, decoder_weights, padded
from critic.writer.lexicon import Lexicon, build_lexicon
from critic.writer.model import BOS, EOS, PAD, WriterConfig, WriterModel, attribute_tokens, build_vocab, tokenize
from critic.writer.slots import delexicalise, sentences


@dataclass
class WriterTrainConfig:
    """Training settings; the defaults train on the Walters train split in about 15 minutes on 2 cores."""

    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    min_count: int = 3
    max_tokens: int = 64
    embed_dim: int = 192
    cond_dim: int = 128
    hidden_dim: int = 384
    dropout: float = 0.2
    #: share of examples conditioned on the latent of their metadata-only text (when those latents are given),
    #: so that the decoder also works for artworks known only by their fields
    metadata_latent_share: float = 0.5
    validation_share: float = 0.05


def training_tokens(record: Artwork, lexicon: Lexicon, max_tokens: int) -> list[str]:
    """The record's delexicalised description as tokens: whole sentences up to ``max_tokens``, then <EOS>.

    A first sentence longer than ``max_tokens`` is cut and gets no <EOS>, so the model never learns to stop
    mid-sentence.
    """
    tokens: list[str] = []
    for sentence in sentences(delexicalise(record.description, record, lexicon)):
        words = tokenize(sentence)
        if tokens and len(tokens) + len(words) > max_tokens:
            break
        tokens.extend(words)
        if len(tokens) >= max_tokens:
            return tokens[:max_tokens]
    return [*tokens, EOS] if tokens else []


def train_writer(
    records: Sequence[Artwork],
    latents: np.ndarray,
    attributes: Sequence[dict[str, str]],
    *,
    metadata_latents: np.ndarray | None = None,
    lexicon: Lexicon | None = None,
    config: WriterTrainConfig | None = None,
    embedding_model: str = "",
    log: Callable[[str], None] | None = None,
) -> tuple[WriterModel, dict]:
    """Train the decoder on the descriptions of ``records`` (the train split); seeded and reproducible.

    ``latents[i]`` is the VAE posterior mean of record i's embedded text, ``attributes[i]`` its decoded
    attributes (label -> value), ``metadata_latents[i]`` (optional) the latent of its metadata-only composed
    text. ``lexicon`` defaults to one built from ``records``. Returns the model and training metrics.
    """
    config = config or WriterTrainConfig()
    if not (len(records) == len(latents) == len(attributes)):
        raise ValueError("records, latents and attributes must have the same length")
    if metadata_latents is not None and metadata_latents.shape != latents.shape:
        raise ValueError("metadata_latents must have the same shape as latents")
    started = time.perf_counter()
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    lexicon = lexicon or build_lexicon(records)
    usable = [i for i, r in enumerate(records) if r.description.strip()]
    token_lists = {i: training_tokens(records[i], lexicon, config.max_tokens) for i in usable}
    usable = [i for i in usable if len(token_lists[i]) > 2]
    if len(usable) < 4:
        raise ValueError("need at least 4 records with a description to train the writer")
    order = random.Random(config.seed).sample(usable, len(usable))
    n_validation = max(1, int(len(order) * config.validation_share))
    validation, training = order[:n_validation], order[n_validation:]
    vocab = build_vocab((token_lists[i] for i in training), min_count=config.min_count)
    attribute_counts: dict[str, int] = {}
    for i in training:
        for a in attribute_tokens(attributes[i]):
            attribute_counts[a] = attribute_counts.get(a, 0) + 1
    model_config = WriterConfig(
        latent_dim=int(latents.shape[1]),
        vocab=vocab,
        attribute_vocab=sorted(a for a, n in attribute_counts.items() if n >= config.min_count),
        embed_dim=config.embed_dim,
        cond_dim=config.cond_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        max_tokens=config.max_tokens,
        embedding_model=embedding_model,
    )
    decoder = DraftDecoder(model_config)
    index = {t: i for i, t in enumerate(vocab)}
    unk = index["<UNK>"]
    sequences = {i: [index[BOS], *(index.get(t, unk) for t in token_lists[i])] for i in usable}
    titles = [r.title for r in records]
    full = conditioning_inputs(model_config, latents, attributes, titles)
    meta = (
        conditioning_inputs(model_config, metadata_latents, attributes, titles)
        if metadata_latents is not None
        else None
    )

    def batch_loss(batch: list[int], use_meta: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        rows = torch.tensor(batch)
        latent, attrs, title = (t[rows] for t in full)
        if use_meta is not None and meta is not None:
            latent = torch.where(use_meta.unsqueeze(1), meta[0][rows], latent)
        seq = padded([sequences[i] for i in batch])
        logits, _ = decoder.logits(seq[:, :-1], decoder.conditioning(latent, attrs, title))
        target = seq[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=index[PAD], reduction="sum"
        )
        return loss, int((target != index[PAD]).sum())

    # Batches of similar length waste little on padding; their order is reshuffled every epoch.
    by_length = sorted(training, key=lambda i: (len(sequences[i]), i))
    batches = [by_length[s : s + config.batch_size] for s in range(0, len(by_length), config.batch_size)]
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=config.learning_rate, weight_decay=0.01)
    total_steps = config.epochs * len(batches)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total_steps, pct_start=0.1
    )
    shuffler = random.Random(config.seed + 1)
    history = []
    for epoch in range(config.epochs):
        decoder.train()
        shuffler.shuffle(batches)
        total, count = 0.0, 0
        for batch in batches:
            use_meta = torch.rand(len(batch)) < config.metadata_latent_share if meta is not None else None
            loss, n = batch_loss(batch, use_meta)
            optimizer.zero_grad()
            (loss / max(n, 1)).backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total, count = total + float(loss.detach()), count + n
        validation_loss = _evaluate(decoder, validation, batch_loss, meta is not None)
        history.append({"epoch": epoch + 1, "train_loss": total / count, **validation_loss})
        if log:
            log(
                f"writer epoch {epoch + 1}/{config.epochs}: train loss {total / count:.3f}, "
                f"validation perplexity {validation_loss['validation_perplexity']:.1f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    decoder.eval()
    model_config.provenance = {
        "train_config": asdict(config),
        "records": len(records),
        "training_descriptions": len(training),
        "validation_descriptions": len(validation),
        "tokens_per_epoch": sum(len(sequences[i]) - 1 for i in training),
        "parameters": sum(p.numel() for p in decoder.parameters()),
    }
    metrics = {
        **model_config.provenance,
        "vocab_size": len(vocab),
        "seconds": time.perf_counter() - started,
        "history": history,
    }
    return WriterModel(model_config, lexicon, decoder_weights(decoder)), metrics


@torch.no_grad()
def _evaluate(decoder: DraftDecoder, validation: list[int], batch_loss, has_meta: bool) -> dict[str, float]:
    decoder.eval()
    result = {}
    for name, meta_flag in (
        (("validation", False), ("validation_metadata", True)) if has_meta else (("validation", False),)
    ):
        total, count = 0.0, 0
        for start in range(0, len(validation), 128):
            batch = validation[start : start + 128]
            use_meta = torch.full((len(batch),), meta_flag) if has_meta else None
            loss, n = batch_loss(batch, use_meta)
            total, count = total + float(loss), count + n
        result[f"{name}_perplexity"] = math.exp(min(total / max(count, 1), 50.0))
    return result
