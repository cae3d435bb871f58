"""Building and pre-generating beyond one process: `critic build --engine ray` and `critic critique --all` with
more workers, each against the single process measured in the same run.

**Build throughput.** What `critic build --no-writer` does with a catalogue of --records resampled Walters
texts (bench/resampled.py: every field and description sentence drawn from different real records, no two texts
alike), three ways: the default single process, then `--engine ray --workers 1` and `--workers 2` (a local
Ray). Each build is a fresh process with a fresh home, so nothing comes from an embedding cache. Texts/s covers
the per-record pipeline, the build's `embed_s + index_s`: storing the records, embedding them, encoding them
(lexical projection, dates, StyleVAE latent, index vector) and filling and saving the index. Reading the
catalogue, training the StyleVAE and starting Ray are left out and shown beside it, with the process's wall
time. The StyleVAE trains on the driver in every engine, the same work each time, so it trains for --vae-epochs
(default 2) instead of its default schedule (minutes on 2 cores); its architecture, and so the cost of encoding,
is the default.

**Pre-generation throughput.** `critic critique --all` on a copy of a built home (--critique-home, default the
one `critic` uses) cut to its first --critiques artworks, as tests/test_pregenerate.py cuts one: local with 1
worker, local `--workers 2`, Ray with 1 and 2 actors, each into an empty critiques table. Critiques/s is the
run's own figure, over the writing only (starting the workers, each loading the build, is shown apart).

**--compare-bundled.** The bundled Walters collection built both ways (`critic build --engine ray --no-writer`,
then `critic build --no-writer` starting from a copy of the Ray build's embedding cache, so it is embedded once)
into two fresh homes, then compared with critic/build_parity.py, as tests/test_build_ray.py compares a
2,000-record slice: the embeddings taken over against this process's encoder on a sample, the cosine between the
Ray actors' latents and the default build's, the same for the two indexes' vectors, and the overlap of every
artwork's top-10 neighbours. Each build trains its own StyleVAE with the default schedule (on a busy 2-core machine
about half an hour a build), unless --style-model gives both a checkpoint to reuse: the comparison then
covers the engines' own work (embedding, encoding, the index), tests/test_build_ray.py covering the training too.

The script removes OMP_NUM_THREADS and MKL_NUM_THREADS from the environment of every process it starts, so each
engine takes the cores as it does for a user: the single process all of them, a Ray actor or a pool process its
share. "load after" is the 1-minute load average as each row ends: on a machine shared with other work the
figures are only as steady as it.

    python bench/distributed.py                                      # 100k records, 300 critiques: ~2 h on 2 cores
    python bench/distributed.py --records 2000 --critiques 100       # a quick check: a few minutes
    python bench/distributed.py --no-build --no-critiques --compare-bundled   # about an hour on 2 busy cores
    python bench/distributed.py --no-build --no-critiques --compare-bundled --style-model HOME/vae   # 11 min
    python bench/distributed.py --no-build --no-critiques --compare-bundled --bundled-limit 500   # a quick check
    python bench/distributed.py --out DIR --json results.json        # keep the catalogue, homes and logs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resampled import resampled_records, write_jsonl  # noqa: E402

from critic.home import Home  # noqa: E402

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The build engines timed: Ray workers, None for the default single process.
BUILDS = {"single process (default)": None, "ray, 1 worker": 1, "ray, 2 workers": 2}
PREGENERATIONS = {
    "local, 1 worker (default)": [],
    "local, --workers 2": ["--workers", "2"],
    "ray, 1 actor": ["--engine", "ray", "--workers", "1"],
    "ray, 2 actors": ["--engine", "ray", "--workers", "2"],
}


def critic(argv: list[str], log: Path) -> tuple[dict, float]:
    """`critic ARGV --json` in a fresh process: its JSON and its wall seconds; its stderr (progress) goes to
    ``log``."""
    print(f"$ critic {' '.join(argv)}  (log: {log})", file=sys.stderr, flush=True)
    began = time.perf_counter()
    with log.open("w") as stderr:
        done = subprocess.run([sys.executable, "-m", "critic.cli", *argv, "--json"], stdout=subprocess.PIPE,
                              stderr=stderr, text=True)
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1) or not done.stdout.strip():  # 1: critiques that failed, counted in the JSON
        sys.exit(f"bench/distributed.py: `critic {' '.join(argv)}` exited {done.returncode}; see {log}")
    return json.loads(done.stdout), seconds


def build_once(catalogue: str, root: str, ray_workers: int | None, vae_epochs: int, log: str) -> dict:
    """What `critic build --catalog CATALOGUE --home ROOT --no-writer [--engine ray --workers N]` does, with a
    StyleVAE schedule of ``vae_epochs`` epochs (its architecture, and so the cost of encoding, is the default);
    run in a fresh process, its stderr (progress) going to ``log``."""
    with open(log, "w") as handle:
        os.dup2(handle.fileno(), sys.stderr.fileno())
    from critic.build import build
    from critic.train import TrainConfig

    if ray_workers:
        from critic.build_ray import RayEngine

    schedule = TrainConfig(epochs=vae_epochs, kl_warmup_epochs=1, min_steps=0)
    engine = RayEngine(workers=ray_workers) if ray_workers else None
    return build(Home(Path(root)), catalogue, train_config=schedule, writer=False, engine=engine)


def measure_builds(work: Path, records: int, vae_epochs: int, seed: int) -> list[dict]:
    catalogue = work / f"resampled-{records}.jsonl"
    write_jsonl(resampled_records(records, seed), catalogue)
    rows = []
    for name, ray_workers in BUILDS.items():
        home, log = work / f"build-{len(rows)}", work / f"build-{len(rows)}.log"
        shutil.rmtree(home, ignore_errors=True)
        print(f"build: {name} (log: {log})", file=sys.stderr, flush=True)
        began = time.perf_counter()
        # A fresh process per build: Ray, the encoder and torch start as they do for `critic build`.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            info = pool.submit(build_once, str(catalogue), str(home), ray_workers, vae_epochs, str(log)).result()
        wall = time.perf_counter() - began
        t = info["timings"]
        workers = info["engine"]["workers"] if ray_workers else f"1 process, {len(os.sched_getaffinity(0))} threads"
        rows.append({"engine": name, "workers": workers, "load": os.getloadavg()[0], "records": info["artworks"],
                     "newly_embedded": info["newly_embedded"], "embed_s": t["embed_s"], "index_s": t["index_s"],
                     "texts_per_s": info["artworks"] / (t["embed_s"] + t["index_s"]), "vae_s": t["vae_s"],
                     "import_s": t["import_s"], "build_s": t["total_s"], "wall_s": wall})
        shutil.rmtree(home)  # 100k records' shards and caches: only the figures are kept
    return rows


def cut_home(source: Home, target: Path, artworks: int) -> Home:
    """A copy of ``source`` without critiques or shards, its store cut to its first ``artworks`` records (each
    worker's service drops the rest from its index when it loads)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source.root, target, ignore=shutil.ignore_patterns("critiques.sqlite*", "shards", "eval"))
    home = Home(target)
    with sqlite3.connect(home.store_path) as db:
        db.execute("DELETE FROM artworks WHERE rowid > ?", (artworks,))
    return home


def measure_pregeneration(work: Path, source: Home, artworks: int) -> list[dict]:
    if not source.read_info():
        sys.exit(f"bench/distributed.py: nothing built in {source.root}: give --critique-home or run `critic build`")
    home = cut_home(source, work / "critique-home", artworks)
    rows = []
    for name, extra in PREGENERATIONS.items():
        for path in home.root.glob("critiques.sqlite*"):  # every run writes the whole collection
            path.unlink()
        argv = ["critique", "--all", "--home", str(home.root), *extra]
        report, wall = critic(argv, work / f"critique-{len(rows)}.log")
        rows.append({"engine": name, **{k: report[k] for k in ("workers", "artworks", "written", "failed",
                                                                "per_second", "load_seconds", "seconds")},
                     "wall_s": wall, "load": os.getloadavg()[0]})
    return rows


def compare_bundled(work: Path, limit: int | None, style_model: Path | None, queries: int, seed: int) -> dict:
    """The bundled collection built by `critic build --engine ray`, then by `critic build` starting from a copy of
    the Ray build's embedding cache (as tests/test_build_ray.py does: the collection is embedded once, and the
    embeddings it takes over are checked against this process's encoder on a sample), compared. With
    ``style_model`` both homes start with that StyleVAE checkpoint, which each build reuses when it was trained on
    the same data (as a rebuild does) and otherwise replaces."""
    from critic.build_parity import (
        copy_embedding_cache,
        cosines,
        embeddings_beside_the_encoder,
        model_latents,
        neighbour_overlap,
        shard_latents,
    )
    from index.store import VectorIndex

    ray, single = Home(work / "bundled-ray"), Home(work / "bundled-single")
    sliced = ["--limit", str(limit)] if limit else []
    infos = {}
    for home, extra in ((ray, ["--engine", "ray"]), (single, [])):
        shutil.rmtree(home.root, ignore_errors=True)
        if style_model:
            shutil.copytree(style_model, home.vae_dir)
        if home == single:
            copy_embedding_cache(ray, single)
        infos[home], _ = critic(["build", "--home", str(home.root), "--no-writer", *sliced, *extra],
                                work / f"{home.root.name}.log")
    taken, encoded = embeddings_beside_the_encoder(ray, 200, seed)
    ours, theirs = VectorIndex.load(ray.index_dir), VectorIndex.load(single.index_dir)
    ids = theirs.ids()
    if sorted(ours.ids()) != sorted(ids):
        sys.exit("bench/distributed.py: the two builds index different artworks")
    latent = cosines(model_latents(single), shard_latents(ray))
    vector = cosines(dict(zip(ids, theirs.vectors(ids), strict=True)), dict(zip(ids, ours.vectors(ids), strict=True)))
    asked = ids if queries == 0 else random.Random(seed).sample(ids, min(queries, len(ids)))
    began = time.perf_counter()
    overlap = neighbour_overlap(ours, theirs, asked)
    return {
        "artworks": len(ids),
        "single_newly_embedded": infos[single]["newly_embedded"],
        "embedding_max_difference": float(abs(taken - encoded).max()),
        "same_vae_training_data": infos[single]["vae"]["data_hash"] == infos[ray]["vae"]["data_hash"],
        "style_model": str(style_model) if style_model else "trained by each build",
        "ray_workers": infos[ray]["engine"]["workers"],
        "latent_cosine": {"min": float(latent.min()), "median": float(statistics.median(latent))},
        "index_vector_cosine": {"min": float(vector.min()), "median": float(statistics.median(vector))},
        "top10": {"queries": len(asked), "mean_overlap": float(overlap.mean()), "min_overlap": float(overlap.min()),
                  "identical_share": float((overlap == 1.0).mean()), "seconds": time.perf_counter() - began},
        "build_s": {"single": infos[single]["timings"]["total_s"], "ray": infos[ray]["timings"]["total_s"]},
    }


def print_builds(rows: list[dict]) -> None:
    base = rows[0]
    print(f"\nBuild throughput: {base['records']:,} resampled records, `critic build --no-writer`, fresh home each; "
          "texts/s over embed_s + index_s (store, embed, encode, index)\n")
    print("| engine | workers | embed s | encode+index s | texts/s | vs single | VAE s | build s | process s "
          "| vs single | load after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['workers']} | {r['embed_s']:.1f} | {r['index_s']:.1f} | {r['texts_per_s']:.0f} "
              f"| {r['texts_per_s'] / base['texts_per_s']:.2f}x | {r['vae_s']:.1f} | {r['build_s']:.1f} "
              f"| {r['wall_s']:.1f} | {base['wall_s'] / r['wall_s']:.2f}x | {r['load']:.1f} |")
    fresh = all(r["newly_embedded"] == r["records"] for r in rows)
    print(f"\nevery text embedded afresh (none from a cache): {fresh}")


def print_pregeneration(rows: list[dict]) -> None:
    base = rows[0]
    print(f"\nPre-generation: `critic critique --all` (tone critique, seed 0), {base['artworks']} artworks, empty "
          "table each run\n")
    print("| engine | workers | written | failed | critiques/s | vs 1 worker | loading s | writing s | load after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['workers']} | {r['written']} | {r['failed']} | {r['per_second']:.1f} "
              f"| {r['per_second'] / base['per_second']:.2f}x | {r['load_seconds']:.1f} | {r['seconds']:.1f} "
              f"| {r['load']:.1f} |")


def print_comparison(c: dict) -> None:
    top = c["top10"]
    print(f"\nThe bundled collection built both ways ({c['artworks']:,} artworks; Ray with {c['ray_workers']} workers; "
          f"builds {c['build_s']['ray']:.0f} s and {c['build_s']['single']:.0f} s; same VAE training data: "
          f"{c['same_vae_training_data']}; style model: {c['style_model']}; the default build took the Ray build's "
          f"embeddings and embedded "
          f"{c['single_newly_embedded']} texts itself; the embeddings differ from this process's encoder by at most "
          f"{c['embedding_max_difference']:.1e} on 200 of them)\n")
    print("| measure | value |")
    print("|---|---|")
    for name in ("latent_cosine", "index_vector_cosine"):
        print(f"| {name.replace('_', ' ')}, min / median | {c[name]['min']:.6f} / {c[name]['median']:.6f} |")
    print(f"| top-10 overlap over {top['queries']:,} artworks, mean / min | {top['mean_overlap']:.4f} / "
          f"{top['min_overlap']:.1f} |")
    print(f"| artworks whose top-10 is the same set (ties at the tenth score count) | {top['identical_share']:.2%} |")
    tolerance = c["latent_cosine"]["min"] >= 0.999
    print(f"\nlatent cosine >= 0.999 for every artwork (the issue's tolerance): {tolerance}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="resampled records to build (default 100,000)")
    parser.add_argument("--vae-epochs", type=int, default=2,
                        help="build throughput: StyleVAE training epochs (default 2; timed apart, not in texts/s)")
    parser.add_argument("--critiques", type=int, default=300, help="artworks to pre-generate for (default 300)")
    parser.add_argument("--critique-home", help="a built home to pre-generate from (default: the one `critic` uses)")
    parser.add_argument("--no-build", action="store_true", help="skip the build throughput")
    parser.add_argument("--no-critiques", action="store_true", help="skip the pre-generation throughput")
    parser.add_argument("--compare-bundled", action="store_true",
                        help="also build the bundled collection both ways and compare them (about 15 minutes)")
    parser.add_argument("--bundled-limit", type=int, help="--compare-bundled: only the first N records (a quick check)")
    parser.add_argument("--style-model", help="--compare-bundled: start both homes with this StyleVAE checkpoint "
                        "(a home's vae/ folder; reused when trained on the same data, else retrained)")
    parser.add_argument("--queries", type=int, default=0,
                        help="--compare-bundled: artworks whose top-10 is compared (default 0: all)")
    parser.add_argument("--out", help="keep the catalogue, homes and logs here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in THREAD_VARIABLES:  # every process this starts takes the cores as it would for a user
        os.environ.pop(name, None)
    work = Path(args.out or tempfile.mkdtemp(prefix="distributed-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"records": args.records, "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()}
    try:
        if not args.no_build:
            results["builds"] = measure_builds(work, args.records, args.vae_epochs, args.seed)
            print_builds(results["builds"])
        if not args.no_critiques:
            results["pregeneration"] = measure_pregeneration(work, Home.resolve(args.critique_home), args.critiques)
            print_pregeneration(results["pregeneration"])
        if args.compare_bundled:
            style_model = Path(args.style_model) if args.style_model else None
            results["bundled"] = compare_bundled(work, args.bundled_limit, style_model, args.queries, args.seed)
            print_comparison(results["bundled"])
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    print(f"\nload average {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after "
          f"({results['cores']} cores)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
