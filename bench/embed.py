"""Embedding throughput and quality: our ONNX Runtime encoder against plain ``SentenceTransformer.encode``.

Both embed the same N texts of the bundled Walters collection in the same run. For every variant the table
gives texts/s (wall clock) and texts per CPU-second (less sensitive to other work on a shared machine), the
ratio to the baseline, the cosine of each vector to the baseline's (mean and min), and precision@10 by label
(every row queries the N records, as in critic.evaluate) beside the baseline's, with the share of top-10
neighbours the two have in common.

    python bench/embed.py                    # 2,000 texts, one timing round
    python bench/embed.py --n 15252 --repeat 2 --threads 2

Timings are the best of ``--repeat`` rounds; rounds go round-robin over the methods so a burst of outside
load hurts all of them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from critic.corpus import load_walters
from critic.embed import load_sentence_model
from critic.evaluate import EVAL_LABELS, dense_scorer, nearest_neighbours, precision_at_k
from critic.fast_embed import PRECISIONS, FastEncoder, ensure_exported

# The fastest batch size for plain sentence-transformers on 2 cores (docs/results.md, early measurements).
BASELINE_BATCH = 64


@dataclass
class Method:
    name: str
    encode: Callable[[list[str]], np.ndarray]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None


def fast_method(name: str, model_file, precision: str, batch_size: int, **settings) -> Method:
    encoder = FastEncoder(model_file, precision=precision, **settings)
    return Method(name, lambda texts: encoder.encode(texts, batch_size=batch_size))


def build_methods(cache_dir: str, threads: int) -> tuple[list[Method], dict[str, float]]:
    """The baseline first, then our variants; also how long each export took."""
    exported, export_s = {}, {}
    for precision in PRECISIONS:
        start = time.perf_counter()
        exported[precision] = ensure_exported(cache_dir, precision)
        export_s[precision] = time.perf_counter() - start
    model = load_sentence_model()
    torch.set_num_threads(threads)  # the baseline gets the same cores as ours
    fp32, int8 = exported["fp32"], exported["int8"]
    methods = [
        Method(
            f"sentence-transformers, batch {BASELINE_BATCH} (baseline)",
            lambda texts: model.encode(texts, batch_size=BASELINE_BATCH, normalize_embeddings=True),
        ),
        fast_method(
            "onnx fp32, input order, batch 64", fp32, "fp32", 64, threads=threads, sort_by_length=False
        ),
        fast_method("onnx fp32, length-sorted, batch 32", fp32, "fp32", 32, threads=threads),
        fast_method("onnx fp32, one text per run", fp32, "fp32", 1, threads=threads),
        fast_method("onnx int8, length-sorted, batch 32", int8, "int8", 32, threads=threads),
        fast_method("onnx int8, length-sorted, batch 8", int8, "int8", 8, threads=threads),
        fast_method("onnx int8, one text per run (default)", int8, "int8", 1, threads=threads),
        fast_method(
            "onnx int8-mixed (fp32 feed-forward output), one text per run",
            exported["int8-mixed"],
            "int8-mixed",
            1,
            threads=threads,
        ),
    ]
    if threads > 1:
        split = f"onnx int8, one text per run, operators split over {threads} threads"
        methods += [
            fast_method(split, int8, "int8", 1, threads=threads, parallel_batches=False),
            fast_method("onnx int8, one text per run, 1 thread", int8, "int8", 1, threads=1),
        ]
    return methods, export_s


def time_methods(methods: list[Method], texts: list[str], repeat: int) -> None:
    for method in methods:
        method.encode(texts[:8])  # first-call allocations stay out of the timing
    for _ in range(repeat):
        for method in methods:
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = np.asarray(method.encode(texts), dtype=np.float32)
            method.wall.append(time.perf_counter() - wall)
            method.cpu.append(time.process_time() - cpu)
            method.vectors = vectors
            print(f"{method.name}: {len(texts) / method.wall[-1]:.1f} texts/s", file=sys.stderr, flush=True)


def neighbour_overlap(a: np.ndarray, b: np.ndarray, texts: list[str], k: int = 10) -> float:
    """Share of each row's k nearest under ``b`` that are also among its k nearest under ``a``."""
    text_ids = np.unique(np.array(texts, dtype=object), return_inverse=True)[1]
    rows = np.arange(len(texts))
    near_a = nearest_neighbours(dense_scorer(a), rows, text_ids, k)
    near_b = nearest_neighbours(dense_scorer(b), rows, text_ids, k)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(near_a, near_b, strict=True)]))


def label_precision(vectors: np.ndarray, records, rows: np.ndarray) -> dict[str, float]:
    """Precision@10 per label with its query count, and pooled over every labelled query ("overall")."""
    hits = precision_at_k(dense_scorer(vectors), records, rows)
    out: dict[str, float] = {label: float(h.mean()) for label, h in hits.items() if len(h)}
    out.update({f"{label}_queries": len(h) for label, h in hits.items()})
    out["overall"] = float(np.concatenate(list(hits.values())).mean())
    return out


def report(methods: list[Method], records, texts: list[str], threads: int, export_s: dict[str, float]) -> str:
    baseline = methods[0]
    rows = np.arange(len(records))
    precision = {m.name: label_precision(m.vectors, records, rows) for m in methods}
    base_p = precision[baseline.name]
    queries = sum(base_p.get(f"{label}_queries", 0) for label in EVAL_LABELS)
    # An upper bound on the standard error of overall precision@10 (each query's 10 neighbours as one draw).
    noise = np.sqrt(base_p["overall"] * (1 - base_p["overall"]) / max(queries, 1))
    base_rate = len(texts) / min(baseline.wall)
    base_cpu_rate = len(texts) / min(baseline.cpu)
    lines = [
        f"{len(texts)} Walters texts, {os.cpu_count()} cores visible, onnxruntime threads {threads}, "
        f"export s: " + ", ".join(f"{p} {s:.1f}" for p, s in export_s.items()),
        "",
        "| method | texts/s | x baseline | texts/CPU-s | x baseline | mean cos | min cos "
        "| p@10 overall | Δ p@10 | top-10 overlap |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        rate, cpu_rate = len(texts) / min(m.wall), len(texts) / min(m.cpu)
        cosine = np.sum(m.vectors * baseline.vectors, axis=1)
        p = precision[m.name]
        delta = p["overall"] - base_p["overall"]
        lines.append(
            f"| {m.name} | {rate:.1f} | {rate / base_rate:.2f} | {cpu_rate:.1f} | {cpu_rate / base_cpu_rate:.2f} "
            f"| {cosine.mean():.4f} | {cosine.min():.4f} | {p['overall']:.4f} | {delta:+.4f} "
            f"| {neighbour_overlap(baseline.vectors, m.vectors, texts):.3f} |"
        )
    lines += [
        "",
        f"precision@10 by label (standard error of the baseline's overall at most {noise:.4f}):",
        "",
        "| method | "
        + " | ".join(f"{label} ({base_p.get(f'{label}_queries', 0)})" for label in EVAL_LABELS)
        + " |",
        "|---|" + "---|" * len(EVAL_LABELS),
    ]
    for m in methods:
        cells = " | ".join(f"{precision[m.name].get(label, float('nan')):.4f}" for label in EVAL_LABELS)
        lines.append(f"| {m.name} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts to embed (the first N Walters records)")
    parser.add_argument("--repeat", type=int, default=1, help="timing rounds; the best is reported")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="cores for both torch and onnxruntime (default: all this process may use)",
    )
    parser.add_argument("--cache-dir", help="where exported models go (default: a fresh temporary folder)")
    args = parser.parse_args(argv)
    records = load_walters(limit=args.n)
    texts = [r.text() for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        methods, export_s = build_methods(args.cache_dir or tmp, args.threads)
        time_methods(methods, texts, args.repeat)
    print(report(methods, records, texts, args.threads, export_s))


if __name__ == "__main__":
    main()
