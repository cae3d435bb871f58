"""Single-query latency and recall@10 of the vector index, exact against IVF, on clustered synthetic latents.

Prints a table (not a test). Data: index.synthetic.clustered_vectors, a Zipf-sized Gaussian mixture on the unit
sphere (cosine to the cluster centre 0.74-0.93), 64 dims by default; queries are fresh draws from the same
mixture, not indexed points. Latency is measured through VectorIndex.search, the call the recommender makes
(id mapping, selector and sorting included), one query at a time with FAISS held to --threads OpenMP threads;
builds use every core. Recall@10 is against exact inner-product search over the same vectors.

    python bench/search.py --sizes 15000,100000      # a quick run
    python bench/search.py                           # 15k, 50k, 100k and 1M (several minutes)
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import faiss
import numpy as np

from index.store import DEFAULT_NPROBE, VectorIndex
from index.synthetic import clustered_vectors

K = 10


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, K)[1]


def timed_searches(index: VectorIndex, queries: np.ndarray, allow=None) -> tuple[np.ndarray, list[list[str]]]:
    """Per query: wall-clock ms and this thread's CPU ms (the latter ignores waiting for a busy CPU)."""
    latencies, found = [], []
    for query in queries:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        hits = index.search(query, K, allow=allow)
        latencies.append((time.perf_counter_ns() - wall, time.thread_time_ns() - cpu))
        found.append([i for i, _ in hits])
    return np.array(latencies) / 1e6, found


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def row(size: int, name: str, build_s: float | str, memory: str, ms: np.ndarray, rec: float) -> str:
    build = f"{build_s:.1f}" if isinstance(build_s, float) else build_s
    (p50, cpu50), (p99, cpu99) = np.percentile(ms, [50, 99], axis=0)
    return (
        f"| {size:>9,} | {name:<36} | {build:>7} | {memory:>9} | {p50:7.3f} | {p99:7.3f} "
        f"| {cpu50:7.3f} | {cpu99:7.3f} | {rec:9.4f} |"
    )


def bench_size(size: int, args: argparse.Namespace) -> list[str]:
    vectors, _ = clustered_vectors(size + args.queries, dim=args.dim, clusters=args.clusters, seed=size)
    vectors, queries = vectors[:size], vectors[size:]
    ids = [str(n) for n in range(size)]
    truth = [[ids[n] for n in line] for line in exact_neighbours(vectors, queries)]
    rng = np.random.default_rng(1)
    lines = []
    for kind in ("flat", "ivf"):
        gc.collect()
        before = rss_bytes()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        index = VectorIndex.build(ids, vectors, ivf_threshold=size + 1 if kind == "flat" else 1)
        build_s = time.perf_counter() - start
        gc.collect()
        per_vector = (rss_bytes() - before) / size
        faiss.omp_set_num_threads(args.threads)
        index_bytes = len(faiss.serialize_index(index._index)) / size
        memory = f"{index_bytes:.0f}/{per_vector:.0f}"
        for nprobe in [None] if kind == "flat" else args.nprobe:
            name = "flat (exact)" if nprobe is None else f"{index.kind} nlist={index.nlist} nprobe={nprobe}"
            index.nprobe = nprobe or index.nprobe
            count = args.queries if kind == "ivf" or size <= 200_000 else min(args.queries, 200)
            ms, found = timed_searches(index, queries[:count])
            lines.append(row(size, name, build_s, memory, ms, recall(found, truth[:count])))
            build_s, memory = "", ""
        for share in (0.001, 0.01, 0.1):
            allowed_rows = np.sort(rng.choice(size, size=max(K, int(size * share)), replace=False))
            # As FilterIndex.select hands them to the search: sorted int64 keys.
            allow = np.sort(np.array([index.key_of(ids[n]) for n in allowed_rows], dtype=np.int64))
            count = min(args.queries, 200)
            best = np.argsort(-(queries[:count] @ vectors[allowed_rows].T), axis=1)[:, :K]
            filtered_truth = [[ids[allowed_rows[n]] for n in line] for line in best]
            index.nprobe = DEFAULT_NPROBE
            ms, found = timed_searches(index, queries[:count], allow=allow)
            base = "flat" if kind == "flat" else f"{index.kind} nprobe={DEFAULT_NPROBE}"
            label = f"{base} + filter {share:.1%} of ids"
            lines.append(row(size, label, "", "", ms, recall(found, filtered_truth)))
        del index
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="15000,50000,100000,1000000", help="comma-separated collection sizes")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1024, help="mixture components")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads while querying")
    parser.add_argument("--nprobe", default="32,64,128,256", help="IVF nprobe values to measure")
    args = parser.parse_args()
    args.nprobe = [int(n) for n in args.nprobe.split(",")]
    print(
        f"dim {args.dim}, {args.clusters}-component mixture, {args.queries} held-out queries, k={K}, "
        f"{args.threads} query thread(s), faiss {faiss.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print("memory: serialised index bytes / RSS growth bytes, per vector (RSS includes the Python id maps)")
    print("latency: wall-clock p50/p99, then CPU time of the querying thread p50/p99 (robust to a busy machine)")
    print(
        "| vectors   | index                                | build s | mem B/vec | p50 ms  | p99 ms  "
        "| cpu p50 | cpu p99 | recall@10 |"
    )
    print(
        "|-----------|--------------------------------------|---------|-----------|---------|---------"
        "|---------|---------|-----------|"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        for line in bench_size(size, args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
