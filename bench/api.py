"""The served API under load: gunicorn (`critic serve`) against Flask's development server, same build, same run.

Each server in turn is started as a subprocess on a loopback port and loaded from this process by an open-loop
generator (bench/loadgen.py: requests fire at a fixed rate whether or not earlier ones were answered, and
latency counts from when a request was due). Measured per server:

* similar by id (GET /api/v1/artworks/<id>/similar?k=10), similar by text (POST /api/v1/similar, every text
  distinct so every request runs the sentence encoder) and the label critique
  (GET /api/v1/artworks/<id>/critique?tone=label), each at fixed rates: throughput and p50/p99 latency;
* similar by id stepped up through --step-rates: the highest rate held, meaning p99 < 50 ms, no failed
  request and throughput >= 95% of the offered rate (a rate missed is run once more before the stepping stops).

Rate limits are switched off (CRITIC_RATE_LIMIT=off) so that the servers, not the limiter, are measured;
request logging stays on as in production (to a file). The generator shares the machine's cores with the
server, as wrk would. Ids and texts are drawn from the build's own store, seeded.

    python bench/api.py                              # the build `critic` uses, about 3 minutes
    python bench/api.py --home ./my-build --duration 20 --step-duration 10 --step-rates 50,100,200,400,800
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from loadgen import Request, RunStats, critic_serve, flask_dev_server, run_at_rate  # noqa: E402

# This file is named api.py: with its folder on the path it would shadow the project's `api` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

from api.testing import ServerProcess, free_port  # noqa: E402
from critic.home import Home  # noqa: E402
from critic.store import ArtworkStore  # noqa: E402

P99_BUDGET_MS = 50.0


def workload(home: Home, seed: int) -> tuple[list[str], list[str]]:
    """Artwork ids and query texts (the first words of descriptions and titles) from the build's store."""
    records = ArtworkStore(home.store_path).all()
    rng = random.Random(seed)
    ids = [r.id for r in rng.sample(records, min(2000, len(records)))]
    texts = []
    for record in rng.sample(records, min(4000, len(records))):
        words = (record.description or record.title or "").split()[:14]
        if len(words) >= 3:
            texts.append(" ".join(words))
    return ids, texts


class Scenarios:
    """Request makers; ids and texts advance across runs, so no request repeats an earlier one's text."""

    def __init__(self, ids: list[str], texts: list[str]):
        self.ids, self.texts = ids, texts
        self.n_id = self.n_text = self.n_critique = 0

    def similar_by_id(self, _: int) -> Request:
        self.n_id += 1
        return Request("GET", f"/api/v1/artworks/{self.ids[self.n_id % len(self.ids)]}/similar?k=10")

    def similar_by_text(self, _: int) -> Request:
        self.n_text += 1
        text = self.texts[self.n_text % len(self.texts)]
        if self.n_text >= len(self.texts):
            text = f"{text} ({self.n_text // len(self.texts)})"
        return Request.json("POST", "/api/v1/similar", {"text": text, "k": 10})

    def critique(self, _: int) -> Request:
        self.n_critique += 1
        artwork_id = self.ids[(7 * self.n_critique) % len(self.ids)]
        return Request("GET", f"/api/v1/artworks/{artwork_id}/critique?tone=label")


def measure(server: ServerProcess, args: argparse.Namespace, ids: list[str], texts: list[str]) -> dict:
    scenarios = Scenarios(ids, texts)
    port = server.port

    def run(make: Callable[[int], Request], rate: float, duration: float) -> RunStats:
        return run_at_rate("127.0.0.1", port, make, rate, duration, connections=args.connections)

    # Warm-up (not reported): every worker loads its writer and encoder, and the caches fill.
    run(scenarios.critique, 8, 1.5)
    run(scenarios.similar_by_text, 10, 1.0)
    run(scenarios.similar_by_id, 50, 1.0)
    result: dict = {"server": server.name, "ready_s": server.started_s, "fixed": [], "steps": []}
    plan = [
        ("similar by id", scenarios.similar_by_id, args.id_rates),
        ("similar by text", scenarios.similar_by_text, args.text_rates),
        ("critique (label)", scenarios.critique, args.critique_rates),
    ]
    for name, make, rates in plan:
        for rate in rates:
            stats = run(make, rate, args.duration)
            result["fixed"].append(summary(name, stats))
            print(f"  {server.name}: {line(result['fixed'][-1])}", flush=True)
    held = None
    for rate in args.step_rates:
        for attempt in (1, 2):  # a rate missed once is run again: a passing disturbance is not the limit
            stats = run(scenarios.similar_by_id, rate, args.step_duration)
            step = summary("similar by id", stats)
            step["held"] = held_at(stats)
            result["steps"].append(step)
            verdict = "held" if step["held"] else ("NOT held" + (", once more" if attempt == 1 else ""))
            print(f"  {server.name} step: {line(step)} {verdict}", flush=True)
            if step["held"]:
                break
        if not step["held"]:
            break
        held = step
    result["max_held"] = held
    return result


def held_at(stats: RunStats) -> bool:
    return stats.errors == 0 and stats.percentile_ms(99) < P99_BUDGET_MS and stats.throughput >= 0.95 * stats.offered


def summary(name: str, stats: RunStats) -> dict:
    return {
        "endpoint": name,
        "offered": stats.offered,
        "requests": len(stats.outcomes),
        "throughput": stats.throughput,
        "p50_ms": stats.percentile_ms(50),
        "p99_ms": stats.percentile_ms(99),
        "failed": stats.errors,
        "server_errors": stats.server_errors,
    }


def line(row: dict) -> str:
    return (
        f"{row['endpoint']} at {row['offered']:g}/s: {row['throughput']:.1f} req/s, p50 {row['p50_ms']:.1f} ms, "
        f"p99 {row['p99_ms']:.1f} ms, {row['failed']} failed of {row['requests']}"
    )


def ms(value: float) -> str:
    return "timeout" if value == float("inf") else f"{value:.1f}"


def ratio(a: float, b: float) -> str:
    if not (a and b) or float("inf") in (a, b):
        return "-"
    return f"{a / b:.2f}x"


def print_tables(ours: dict, base: dict | None) -> None:
    print()
    base_name = "Flask dev server" if base else "(baseline skipped)"
    print(f"Fixed rates: gunicorn (`critic serve`) against {base_name}; failed = non-2xx/3xx or no answer")
    print(
        "| endpoint | offered req/s | gunicorn req/s | p50 ms | p99 ms | failed "
        "| dev req/s | p50 ms | p99 ms | failed | p99 dev / gunicorn |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = base["fixed"] if base else [None] * len(ours["fixed"])
    for a, b in zip(ours["fixed"], rows, strict=True):
        theirs = (
            f"{b['throughput']:.1f} | {ms(b['p50_ms'])} | {ms(b['p99_ms'])} | {b['failed']}" if b else "- | - | - | -"
        )
        print(
            f"| {a['endpoint']} | {a['offered']:g} | {a['throughput']:.1f} | {ms(a['p50_ms'])} | {ms(a['p99_ms'])} "
            f"| {a['failed']} | {theirs} | {ratio(b['p99_ms'], a['p99_ms']) if b else '-'} |"
        )
    print()
    print(f"Similar by id, stepped up: highest rate held (p99 < {P99_BUDGET_MS:.0f} ms, no failures, >= 95% served)")
    print("| server | highest rate held req/s | req/s served | p50 ms | p99 ms | first rate not held | its p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for result in (ours, base):
        if result is None:
            continue
        held = result["max_held"]
        last = result["steps"][-1] if result["steps"] else None
        missed = last if last and not last["held"] else None  # the stepping stopped there
        missed_text = f"{missed['offered']:g} | {ms(missed['p99_ms'])}" if missed else "none reached | -"
        held_text = (
            f"{held['offered']:g} | {held['throughput']:.1f} | {ms(held['p50_ms'])} | {ms(held['p99_ms'])}"
            if held
            else "none | - | - | -"
        )
        print(f"| {result['server']} | {held_text} | {missed_text} |")
    if base and ours["max_held"] and base["max_held"]:
        print(
            f"\nhighest rate held, gunicorn / Flask dev server: "
            f"{ratio(ours['max_held']['offered'], base['max_held']['offered'])}"
        )


def rates(text: str) -> list[float]:
    return [float(r) for r in text.split(",") if r.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="build to serve (default: the one `critic` resolves)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per fixed-rate run (default 5)")
    parser.add_argument("--step-duration", type=float, default=4.0, help="seconds per step-up rate (default 4)")
    parser.add_argument("--id-rates", type=rates, default=rates("50,100"), help="similar-by-id fixed rates")
    parser.add_argument("--text-rates", type=rates, default=rates("10"), help="similar-by-text fixed rates")
    parser.add_argument("--critique-rates", type=rates, default=rates("5"), help="critique fixed rates")
    parser.add_argument(
        "--step-rates", type=rates, default=rates("25,50,75,100,125,150,200,250,300,400,500"),
        help="similar-by-id rates stepped through until one is not held",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as `critic serve`)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--connections", type=int, default=64, help="most requests in flight (default 64)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Flask development server")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    home = Home.resolve(args.home)
    if not home.store_path.exists():
        sys.exit(f"bench/api.py: nothing built in {home.root}: run `critic build` first")
    ids, texts = workload(home, args.seed)
    began = time.monotonic()
    print(
        f"home {home.root}: {ArtworkStore(home.store_path).count():,} artworks; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start; open loop, latency from each request's due time",
        flush=True,
    )
    env = {"CRITIC_RATE_LIMIT": "off", "CRITIC_KEY_RATE_LIMIT": "off"}
    results = []
    servers = [("gunicorn", lambda port: critic_serve(home.root, port, args.workers, args.threads))]
    if not args.no_baseline:
        servers.append(("flask-dev", lambda port: flask_dev_server(home.root, port)))
    for name, command in servers:
        port = free_port()
        with ServerProcess(command(port), port, env, name=name) as server:
            label = f"{args.workers} workers x {args.threads} threads" if name == "gunicorn" else "threaded"
            print(f"{name} ({label}) ready in {server.started_s:.0f} s", flush=True)
            results.append(measure(server, args, ids, texts))
    print_tables(results[0], results[1] if len(results) > 1 else None)
    print(f"\nwhole run {time.monotonic() - began:.0f} s, load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
