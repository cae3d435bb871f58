"""StyleModel: what every query goes through (text -> StyleVAE latent -> index vector, decoded attributes), and
its files: StyleVAE weights and the lexical projection in safetensors, config + label vocabulary + provenance in
JSON beside them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from critic.embed import DIM
from critic.labels import LabelVocab
from critic.lexical import LexicalProjector
from critic.vae import StyleVAE, VAEConfig
from critic.vectors import normalise

WEIGHTS = "vae.safetensors"
LEXICAL = "lexical.safetensors"
CONFIG = "vae.json"


class StyleModelError(RuntimeError):
    """A checkpoint is missing, corrupt, or was made for another embedding model or collection."""


def style_inputs(embeddings: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """The VAE's input: the sentence embedding and the LSA vector side by side, as one unit vector."""
    return normalise(np.concatenate([embeddings, lexical], axis=1).astype(np.float32))


@dataclass
class StyleModel:
    """What turns an artwork's text into its style latent and decoded attributes."""

    vae: StyleVAE
    vocab: LabelVocab
    lexical: LexicalProjector
    meta: dict

    def inputs(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return style_inputs(embeddings, self.lexical.transform(texts))

    def latents(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Posterior means mu (raw: the attribute heads want them unnormalised; the index normalises)."""
        return encode_latents(self.vae, self.inputs(embeddings, texts))

    def attributes(self, latents: np.ndarray) -> list[dict[str, str]]:
        return decode_attributes(self.vae, self.vocab, latents)

    def index_vectors(self, latents: np.ndarray) -> np.ndarray:
        """What the index stores: posterior means centred on the training mean, at unit length.

        Centring makes cosine a correlation: without it every mean shares one large common component and
        all scores crowd near 1.0, which hides how alike two artworks really are.
        """
        return normalise(latents - np.asarray(self.meta["latent_center"], dtype=np.float32))

    @property
    def latent_dim(self) -> int:
        return self.vae.config.latent_dim



@torch.no_grad()
def encode_latents(model: StyleVAE, vectors: np.ndarray) -> np.ndarray:
    """Posterior means mu(e) as float32, the vectors the index stores (after normalisation)."""
    model.eval()
    mu, _ = model.encode(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)))
    return mu.numpy()


@torch.no_grad()
def decode_attributes(
    model: StyleVAE, vocab: LabelVocab, latents: np.ndarray, min_prob: float = 0.5
) -> list[dict[str, str]]:
    """The attributes each latent's heads predict with probability >= ``min_prob`` (keywords excluded)."""
    logits = model.attribute_logits(torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32)))
    decoded: list[dict[str, str]] = [{} for _ in range(len(latents))]
    for name, classes in vocab.classes.items():
        prob, best = logits[name].softmax(-1).max(-1)
        for row, (p, i) in enumerate(zip(prob.tolist(), best.tolist(), strict=True)):
            if p >= min_prob:
                decoded[row][name] = classes[i]
    return decoded


def _atomic_save(tensors: dict[str, torch.Tensor], target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, target)


def save_style_model(directory: str | Path, style: StyleModel) -> None:
    """Write the weights, then the config that names them, each atomically (temp file + rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_save(style.vae.state_dict(), directory / WEIGHTS)
    lexical = {"idf": torch.from_numpy(np.asarray(style.lexical.idf, dtype=np.float64)),
               "components": torch.from_numpy(style.lexical.components)}
    _atomic_save(lexical, directory / LEXICAL)
    meta = {
        **style.meta,
        "config": asdict(style.vae.config),
        "vocab": style.vocab.to_json(),
        "lexical_vocabulary": style.lexical.vocabulary,
    }
    tmp = directory / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, directory / CONFIG)


def load_style_model(directory: str | Path, expect: dict | None = None) -> StyleModel:
    """Load the style model; ``expect`` holds provenance keys (e.g. ``embedding_model``) that must match."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / CONFIG).read_text())
        vae = StyleVAE(VAEConfig(**meta.pop("config")))
        vae.load_state_dict(load_file(str(directory / WEIGHTS)))
        tensors = load_file(str(directory / LEXICAL))
        lexical = LexicalProjector(
            meta.pop("lexical_vocabulary"), tensors["idf"].numpy(), tensors["components"].numpy()
        )
        vocab = LabelVocab.from_json(meta.pop("vocab"))
        if len(meta["latent_center"]) != vae.config.latent_dim:
            raise ValueError("the latent centre does not fit the VAE")
        if vae.config.input_dim != DIM + lexical.dims or len(lexical.vocabulary) != lexical.components.shape[1]:
            raise ValueError("the lexical projection does not fit the VAE's input or its own vocabulary")
    except FileNotFoundError as exc:
        raise StyleModelError(f"no style model in {directory}: run `critic build`") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StyleModelError(f"style model in {directory} is corrupt or incompatible: {first}") from exc
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise StyleModelError(
                f"style model in {directory} was made for {key}={meta.get(key)!r}, not {wanted!r}: "
                "rebuild with `critic build`"
            )
    vae.eval()
    return StyleModel(vae, vocab, lexical, meta)
