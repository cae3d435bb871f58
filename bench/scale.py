"""How the vector index grows with the collection: build time, memory and single-query latency at each size.

Prints a table (not a test), then the growth ratios between consecutive sizes. The index is what the service
builds for that many artworks (VectorIndex.build: exact below index.store.DEFAULT_IVF_THRESHOLD, IVF with the
default nprobe above), over clustered synthetic 64-d latents (index.synthetic.clustered_vectors) under string
artwork ids, as a collection has them. Queries are fresh draws from the same mixture, one at a time on one
thread, through VectorIndex.search (the recommender's call). The measuring helpers are bench/search.py's,
which also reports recall against exact search; this script is about growth.

Memory, per vector: the serialised FAISS index; the resident-set growth of this process from before the
build to after it (the FAISS structure plus the Python id maps); and the peak resident growth during the
build (k-means training and the normalised copy of the input).

    python bench/scale.py                        # 15k, 100k, 1M: a few minutes on 2 cores
    python bench/scale.py --sizes 15000,100000   # under a minute
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import K, exact_neighbours, recall, rss_bytes, timed_searches  # noqa: E402

from index.store import DEFAULT_IVF_THRESHOLD, VectorIndex  # noqa: E402
from index.synthetic import clustered_vectors  # noqa: E402


def reset_peak_rss() -> bool:
    """Start a new peak-RSS (VmHWM) measurement; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(size: int, args: argparse.Namespace) -> dict:
    vectors, _ = clustered_vectors(size + args.queries, dim=args.dim, clusters=args.clusters, seed=size)
    vectors, queries = np.ascontiguousarray(vectors[:size]), vectors[size:]
    ids = [f"artwork-{n}" for n in range(size)]
    gc.collect()
    before = rss_bytes()
    peak_known = reset_peak_rss()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    index = VectorIndex.build(ids, vectors)
    build_s = time.perf_counter() - start
    peak = peak_rss_bytes() - before if peak_known else 0
    gc.collect()
    grown = rss_bytes() - before
    faiss.omp_set_num_threads(args.threads)
    serialised = len(faiss.serialize_index(index._index))
    ms, found = timed_searches(index, queries)
    truth_count = min(len(queries), args.recall_queries)
    truth = [[ids[n] for n in line] for line in exact_neighbours(vectors, queries[:truth_count])]
    (p50, cpu50), (p99, cpu99) = np.percentile(ms, [50, 99], axis=0)
    kind = f"{index.kind} nlist={index.nlist} nprobe={index.nprobe}" if index.nlist else "flat (exact)"
    return {
        "size": size,
        "index": kind,
        "build_s": build_s,
        "serialised_b": serialised / size,
        "rss_b": grown / size,
        "peak_mb": peak / 2**20,
        "p50": p50,
        "p99": p99,
        "cpu50": cpu50,
        "cpu99": cpu99,
        "recall": recall(found[:truth_count], truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="15000,100000,1000000", help="comma-separated collection sizes")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1024, help="mixture components")
    parser.add_argument("--queries", type=int, default=1000, help="timed single queries per size")
    parser.add_argument("--recall-queries", type=int, default=200, help="of which checked against exact search")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads while querying")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"dim {args.dim}, {args.clusters}-component mixture, {args.queries} single queries per size, k={K}, "
        f"{args.threads} query thread(s); exact below {DEFAULT_IVF_THRESHOLD:,} vectors, IVF above; "
        f"faiss {faiss.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    rows = []
    for size in sizes:
        rows.append(measure(size, args))
        r = rows[-1]
        print(f"  {size:,}: built in {r['build_s']:.1f} s, p50 {r['p50']:.3f} ms", flush=True)
    print()
    print(
        "| artworks | index | build s | index B/vec | RSS growth B/vec | build peak MB "
        "| p50 ms | p99 ms | cpu p50 ms | cpu p99 ms | recall@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['index']} | {r['build_s']:.2f} | {r['serialised_b']:.0f} | {r['rss_b']:.0f} "
            f"| {r['peak_mb']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['cpu50']:.3f} | {r['cpu99']:.3f} "
            f"| {r['recall']:.3f} |"
        )
    if len(rows) > 1:
        print()
        print("Growth from one size to the next (ratios; a linear cost grows as the size does)")
        print("| from -> to | artworks | build time | index bytes | RSS growth | p50 latency | cpu p50 |")
        print("|---|---|---|---|---|---|---|")
        for a, b in zip(rows, rows[1:], strict=False):
            size = b["size"] / a["size"]
            print(
                f"| {a['size']:,} -> {b['size']:,} | {size:.1f}x | {b['build_s'] / a['build_s']:.1f}x "
                f"| {b['serialised_b'] * b['size'] / (a['serialised_b'] * a['size']):.1f}x "
                f"| {b['rss_b'] * b['size'] / max(a['rss_b'] * a['size'], 1):.1f}x "
                f"| {b['p50'] / a['p50']:.1f}x | {b['cpu50'] / a['cpu50']:.1f}x |"
            )


if __name__ == "__main__":
    main()
