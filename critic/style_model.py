"""StyleModel: what every query goes through (text -> StyleVAE latent -> index vector, decoded attributes), and
its files: StyleVAE weights and the lexical projection in safetensors, config + label vocabulary + provenance in
JSON beside them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from critic.atomic import write_atomically
from critic.embed import DIM
from critic.labels import LabelVocab
from critic.lexical import LexicalProjector
from critic.records import Artwork
from critic.vae_encoder import VAEEncoder
from critic.vectors import normalise

WEIGHTS = "vae.safetensors"
LEXICAL = "lexical.safetensors"
CONFIG = "vae.json"


class StyleModelError(RuntimeError):
    """A checkpoint is missing, corrupt, or was made for another embedding model or collection."""


#: The date block of the input: a Gaussian bump at the artwork's mid-year on centres a century apart.
#: Period and style follow the date far more closely than any word does; on metadata-only validation
#: records it lifted precision@10 by 0.03 macro over the text alone (docs/results.md).
DATE_CENTRES = np.arange(-3000, 2101, 100, dtype=np.float32)
DATE_SCALE = 100.0
DATE_DIMS = len(DATE_CENTRES)
#: The index stores [w * latent, sqrt(1 - w^2) * input] (each centred, at unit length): the latent carries what
#: the attribute heads learned, the input what no head covers. w chosen on the validation side
#: (bench/index_weight.py: 0.7 and 0.8 tie at 0.586 macro over the three variants a gallery meets).
INDEX_LATENT_WEIGHT = 0.8
#: The latent is mixed in only when its heads learned one of these. Trained on object types and keywords alone
#: it made metadata-only neighbours worse on validation (0.654 at w = 0.8 against 0.669 for the input alone).
STYLE_LABELS = ("period", "style", "culture", "classification")


def mid_year(record: Artwork) -> float | None:
    """The middle of the record's date range, or None when neither end is known."""
    start = record.year_start if record.year_start is not None else record.year_end
    end = record.year_end if record.year_end is not None else start
    return None if start is None else (start + end) / 2


def date_features(records: Sequence[Artwork]) -> np.ndarray:
    """The date block: a unit row per record, all zeros when its date is unknown.

    Example:
        >>> rows = date_features([Artwork(id="1", year_start=1500, year_end=1520), Artwork(id="2")])
        >>> int(rows[0].argmax()), float(rows[1].sum())
        (45, 0.0)
    """
    out = np.zeros((len(records), DATE_DIMS), dtype=np.float32)
    for row, record in enumerate(records):
        year = mid_year(record)
        if year is not None:
            out[row] = np.exp(-0.5 * ((year - DATE_CENTRES) / DATE_SCALE) ** 2)
    return normalise(out)


def style_inputs(embeddings: np.ndarray, lexical: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """The VAE's input: sentence embedding, LSA vector and date block side by side, as one unit vector."""
    return normalise(np.concatenate([embeddings, lexical, dates], axis=1).astype(np.float32))


class IndexParts(NamedTuple):
    """The style input, the raw latents, and the two centred unit blocks the index mixes."""

    inputs: np.ndarray
    latents: np.ndarray
    latent_block: np.ndarray
    input_block: np.ndarray


@dataclass
class StyleModel:
    """What turns an artwork (its record and sentence embedding) into its style latent, its decoded attributes
    and the vector the index stores.

    ``meta["index"]["learned"]`` lists the informative labels the heads learned: it decides the latent weight.
    """

    encoder: VAEEncoder
    vocab: LabelVocab
    lexical: LexicalProjector
    meta: dict

    def inputs(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> np.ndarray:
        texts = [r.text() for r in records]
        return style_inputs(embeddings, self.lexical.transform(texts), date_features(records))

    def latents(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> np.ndarray:
        """Posterior means mu (raw: the attribute heads want them unnormalised; the index centres them)."""
        return self.encoder.encode(self.inputs(embeddings, records))

    def attributes(self, latents: np.ndarray) -> list[dict[str, str]]:
        return decode_attributes(self.encoder, self.vocab, latents)

    def index_vectors(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> np.ndarray:
        """What the index stores: the centred latent and the centred input, each at unit length, weighted
        w and sqrt(1 - w^2) side by side, so that cosine is a weighted sum of the two cosines.

        Centring makes cosine a correlation: without it every vector shares one large common component and
        all scores crowd near 1.0, which hides how alike two artworks really are.
        """
        return self.encode(embeddings, records)[1]

    def encode(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> tuple[np.ndarray, np.ndarray]:
        """Latents and index vectors at once (the input is computed once)."""
        parts = self.index_parts(embeddings, records)
        return parts.latents, mix_vectors(parts.latent_block, parts.input_block, self.latent_weight)

    def index_parts(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> IndexParts:
        """Everything an index vector is made of, for the evaluation to weigh otherwise."""
        inputs = self.inputs(embeddings, records)
        latents = self.encoder.encode(inputs)
        return IndexParts(
            inputs,
            latents,
            normalise(latents - np.asarray(self.meta["latent_center"], dtype=np.float32)),
            normalise(inputs - self.encoder.input_mean),
        )

    @property
    def learned(self) -> Sequence[str]:
        """The informative labels the heads learned (``meta["index"]``); older models count as all of them."""
        return self.meta.get("index", {}).get("learned", STYLE_LABELS)

    @property
    def latent_weight(self) -> float:
        """w above: INDEX_LATENT_WEIGHT, or 0 (the input alone) when the latent learned no style label."""
        return INDEX_LATENT_WEIGHT if mixes_latent(self.learned) else 0.0

    @property
    def index_reason(self) -> str:
        """Why the index holds what it holds, in a line (what `critic info` shows)."""
        learned = self.learned
        if mixes_latent(learned):
            return f"latent and input mixed: the latent learned {', '.join(learned)}"
        if learned:
            return f"the input alone: the latent learned only {', '.join(learned)}, none of {', '.join(STYLE_LABELS)}"
        return "the input alone: the catalogue has no informative label to learn from"

    @property
    def index_identity(self) -> dict:
        """What the index's vectors depend on: a saved index made otherwise is rebuilt."""
        return {"embedding_model": self.meta["embedding_model"], "vae": self.meta["data_hash"],
                "latent_weight": self.latent_weight}

    @property
    def latent_dim(self) -> int:
        return self.encoder.latent_dim

    @property
    def index_dim(self) -> int:
        return self.encoder.latent_dim + self.encoder.input_dim


def mixes_latent(learned: Sequence[str]) -> bool:
    """Whether an index mixes in a latent whose heads learned ``learned`` (see STYLE_LABELS)."""
    return bool(set(learned) & set(STYLE_LABELS))


def mix_vectors(latent: np.ndarray, inputs: np.ndarray, latent_weight: float) -> np.ndarray:
    """Unit rows ``[w * latent, sqrt(1 - w^2) * inputs]`` from unit-row blocks (1 = latent only, 0 = input only)."""
    return np.concatenate([latent_weight * latent, np.sqrt(1.0 - latent_weight**2) * inputs], axis=1)


def decode_attributes(
    encoder: VAEEncoder, vocab: LabelVocab, latents: np.ndarray, min_prob: float = 0.5
) -> list[dict[str, str]]:
    """The attributes each latent's heads predict with probability >= ``min_prob`` (keywords excluded)."""
    probabilities = encoder.attribute_probabilities(latents)
    decoded: list[dict[str, str]] = [{} for _ in range(len(latents))]
    for name, classes in vocab.classes.items():
        best = probabilities[name].argmax(-1)
        for row, i in enumerate(best.tolist()):
            if probabilities[name][row, i] >= min_prob:
                decoded[row][name] = classes[i]
    return decoded


def _atomic_save(arrays: dict[str, np.ndarray], target: Path) -> None:
    write_atomically(target, save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))


def save_style_model(directory: str | Path, style: StyleModel) -> None:
    """Write the weights, then the config that names them, each atomically (temp file + rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_save(style.encoder.state, directory / WEIGHTS)
    lexical = {"idf": np.asarray(style.lexical.idf, dtype=np.float64), "components": style.lexical.components}
    _atomic_save(lexical, directory / LEXICAL)
    meta = {
        **style.meta,
        "config": style.encoder.config,
        "vocab": style.vocab.to_json(),
        "lexical_vocabulary": style.lexical.vocabulary,
    }
    write_atomically(directory / CONFIG, json.dumps(meta).encode())


def load_style_model(directory: str | Path, expect: dict | None = None) -> StyleModel:
    """Load the style model; ``expect`` holds provenance keys (e.g. ``embedding_model``) that must match."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / CONFIG).read_text())
        encoder = VAEEncoder(load_file(str(directory / WEIGHTS)), meta.pop("config"))
        arrays = load_file(str(directory / LEXICAL))
        lexical = LexicalProjector(meta.pop("lexical_vocabulary"), arrays["idf"], arrays["components"])
        vocab = LabelVocab.from_json(meta.pop("vocab"))
        if len(meta["latent_center"]) != encoder.latent_dim:
            raise ValueError("the latent centre does not fit the VAE")
        fits = encoder.input_dim == DIM + lexical.dims + DATE_DIMS
        if not fits or len(lexical.vocabulary) != lexical.components.shape[1]:
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
    return StyleModel(encoder, vocab, lexical, meta)
