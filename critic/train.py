"""Training and measuring the StyleVAE (ELBO, KL, active units, held-out attribute accuracy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from critic.labels import LabelVocab, label_of
from critic.lexical import LexicalProjector
from critic.records import Artwork
from critic.style_model import StyleModel, date_features, style_inputs
from critic.vae import StyleVAE, VAEConfig
from critic.vae_encoder import VAEEncoder


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    kl_warmup_epochs: int = 15  # beta grows linearly from 0 to its target over these epochs
    seed: int = 0
    #: A small catalog gets more epochs so that it still sees this many optimiser steps.
    min_steps: int = 1500


def _tensors(vectors: np.ndarray, records: Sequence[Artwork], vocab: LabelVocab):
    labels, keywords = vocab.encode(records)
    return (
        torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)),
        {k: torch.from_numpy(v) for k, v in labels.items()},
        torch.from_numpy(keywords),
    )


def train_vae(
    vectors: np.ndarray,
    records: Sequence[Artwork],
    vae_config: VAEConfig | None = None,
    train_config: TrainConfig | None = None,
    vocab: LabelVocab | None = None,
    progress: bool = False,
) -> tuple[StyleVAE, LabelVocab, list[dict[str, float]]]:
    """Train a StyleVAE on embeddings of ``records`` (their train split); returns model, vocab, epoch losses.

    Seeded: the same inputs and config give the same weights on the same machine.
    """
    tc = train_config or TrainConfig()
    vocab = vocab or LabelVocab.fit(records)
    base = vae_config or VAEConfig()
    config = VAEConfig(
        **{**base.__dict__, "input_dim": vectors.shape[1],
           "heads": {k: len(v) for k, v in vocab.classes.items()}, "keywords": len(vocab.keywords)}
    )
    torch.manual_seed(tc.seed)
    generator = torch.Generator().manual_seed(tc.seed)
    model = StyleVAE(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    x, labels, keywords = _tensors(vectors, records, vocab)
    model.fit_shortcut(x)
    steps_per_epoch = math.ceil(len(x) / tc.batch_size)
    n_epochs = max(tc.epochs, math.ceil(tc.min_steps / steps_per_epoch))
    warmup = tc.kl_warmup_epochs * n_epochs / tc.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=tc.lr, total_steps=n_epochs * steps_per_epoch, pct_start=0.1
    )
    history = []
    epochs = tqdm(range(n_epochs), desc="training StyleVAE", disable=not progress)
    for epoch in epochs:
        model.train()
        beta = config.beta * min(1.0, (epoch + 1) / max(1.0, warmup))
        order = torch.randperm(len(x), generator=generator)
        sums: dict[str, float] = {}
        for start in range(0, len(x), tc.batch_size):
            idx = order[start : start + tc.batch_size]
            parts = model.loss(x[idx], {k: v[idx] for k, v in labels.items()}, keywords[idx], beta=beta)
            optimiser.zero_grad()
            parts["loss"].backward()
            optimiser.step()
            schedule.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
        history.append({k: v / len(x) for k, v in sums.items()} | {"epoch": epoch + 1, "beta": beta})
        epochs.set_postfix(loss=f"{history[-1]['loss']:.1f}", kl=f"{history[-1]['kl']:.1f}")
    model.eval()
    return model, vocab, history


@torch.no_grad()
def evaluate_vae(
    model: StyleVAE, vocab: LabelVocab, vectors: np.ndarray, records: Sequence[Artwork]
) -> dict[str, object]:
    """ELBO terms (nats per artwork, decoder constant dropped), active units and attribute accuracy."""
    model.eval()
    x, labels, keywords = _tensors(vectors, records, vocab)
    mu, logvar = model.encode(x)
    recon = float(((x - model.decode(mu)) ** 2).sum(-1).mean() / (2 * model.config.recon_sigma**2))
    kl = float((0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)).sum(-1).mean())
    # Active units (Burda et al. 2016): dimensions whose posterior mean varies across the data.
    active = int((mu.var(0) > 0.01).sum())
    logits = model.attribute_logits(mu)
    accuracy = {}
    for name, target in labels.items():
        known = target >= 0
        if known.any():
            accuracy[name] = float((logits[name].argmax(-1)[known] == target[known]).float().mean())
    cosine = float(torch.nn.functional.cosine_similarity(x, model.decode(mu)).mean())
    return {
        "elbo": -(recon + kl),
        "recon": recon,
        "kl": kl,
        "active_units": active,
        "latent_dim": model.config.latent_dim,
        "recon_cosine": cosine,
        "attribute_accuracy": accuracy,
    }


def train_style_model(
    records: Sequence[Artwork],
    embeddings: np.ndarray,
    fit_rows: np.ndarray,
    held_out: dict[str, np.ndarray],
    meta: dict,
    vae_config: VAEConfig | None = None,
    train_config: TrainConfig | None = None,
    progress: bool = False,
) -> StyleModel:
    """The lexical projection and the StyleVAE fitted on the ``fit_rows`` of ``records`` (rows of
    ``embeddings``), measured on each ``held_out`` side (name -> rows); ``meta`` is kept as provenance."""
    tc = train_config or TrainConfig()
    texts = [r.text() for r in records]
    lexical = LexicalProjector.fit([texts[i] for i in fit_rows], seed=tc.seed)
    inputs = style_inputs(embeddings, lexical.transform(texts), date_features(records))
    fit_records = [records[i] for i in fit_rows]
    model, vocab, history = train_vae(inputs[fit_rows], fit_records, vae_config, tc, progress=progress)
    meta = {**meta, "epochs": len(history), "train": {k: v for k, v in history[-1].items() if k != "epoch"}}
    meta["index"] = index_mix(vocab, fit_records)
    encoder = inference_encoder(model)
    meta["latent_center"] = encoder.encode(inputs[fit_rows]).mean(0).tolist()
    for side, rows in held_out.items():
        if len(rows):
            meta[side] = evaluate_vae(model, vocab, inputs[rows], [records[i] for i in rows])
    return StyleModel(encoder, vocab, lexical, meta)


def inference_encoder(model: StyleVAE) -> VAEEncoder:
    """The trained StyleVAE's weights as the numpy encoder that serves them (critic/vae_encoder.py)."""
    return VAEEncoder({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, asdict(model.config))


#: A head is informative when its most common class holds less than this share of its labelled records.
MAX_MAJORITY = 0.95


def index_mix(vocab: LabelVocab, records: Sequence[Artwork]) -> dict:
    """The informative labels the heads learned (``{"learned": [...]}``): what decides whether the index mixes
    in the latent (critic.style_model.mixes_latent). A label is informative when it has two or more classes and
    none holds nearly every labelled record; a catalogue with none indexes its unsupervised input vectors.
    """
    informative = []
    for name, classes in vocab.classes.items():
        values = [label_of(r, name) for r in records]
        labelled = [v for v in values if v in classes]
        if labelled and max(labelled.count(c) for c in set(labelled)) / len(labelled) < MAX_MAJORITY:
            informative.append(name)
    if vocab.keywords:
        informative.append("keywords")
    return {"learned": informative}

