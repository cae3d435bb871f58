"""StyleVAE checkpoints: weights in safetensors, config + vocab + provenance in JSON beside them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from critic.labels import LabelVocab
from critic.vae import StyleVAE, VAEConfig

WEIGHTS = "vae.safetensors"
CONFIG = "vae.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or was made for another embedding model or collection."""


def save_checkpoint(directory: str | Path, model: StyleVAE, vocab: LabelVocab, provenance: dict) -> None:
    """Write weights and config atomically (temp file + rename), weights first."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (WEIGHTS + ".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, directory / WEIGHTS)
    meta = {"config": asdict(model.config), "vocab": vocab.to_json(), **provenance}
    tmp = directory / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, directory / CONFIG)


def load_checkpoint(
    directory: str | Path, expect: dict | None = None
) -> tuple[StyleVAE, LabelVocab, dict]:
    """Load a StyleVAE; ``expect`` holds provenance keys (e.g. ``embedding_model``) that must match."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / CONFIG).read_text())
        model = StyleVAE(VAEConfig(**meta["config"]))
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
    except FileNotFoundError as exc:
        raise CheckpointError(f"no StyleVAE checkpoint in {directory}: run `critic build`") from exc
    except (json.JSONDecodeError, KeyError, TypeError, SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"StyleVAE checkpoint in {directory} is corrupt or incompatible: {first}") from exc
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise CheckpointError(
                f"StyleVAE checkpoint in {directory} was made for {key}={meta.get(key)!r}, not {wanted!r}: "
                "rebuild with `critic build`"
            )
    model.eval()
    return model, LabelVocab.from_json(meta["vocab"]), meta
