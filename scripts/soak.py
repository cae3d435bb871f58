"""Soak test (not part of the test suite): minutes of mixed reads and writes against `critic serve` on loopback.

A private copy of the build is served (the writes must not touch yours) by gunicorn, as `critic serve` runs
it, and loaded open-loop (bench/loadgen.py) with a steady mix per second: similar by id, similar by text,
label critiques, artwork reads, and writes (POST new artworks, PATCH and DELETE earlier ones). Every minute
it prints the requests, the errors, read and write latency p50/p99 and the resident memory of the server's
processes. At the end: the error count (must be 0: any non-2xx answer, lost connection or timeout counts),
memory growth, and latency drift (last minute against the first). Exits 1 on any error.

    python scripts/soak.py                     # 10 minutes on the build `critic` uses
    python scripts/soak.py --minutes 1 --home ./my-build
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from loadgen import Outcome, Request, critic_serve, run_at_rate  # noqa: E402

sys.path.pop(0)  # bench/api.py would shadow the project's `api` package

from api.testing import ServerProcess, copy_home, free_port  # noqa: E402
from critic.home import Home  # noqa: E402
from critic.keys import create_key  # noqa: E402
from critic.store import ArtworkStore  # noqa: E402

# Requests per second of each kind (about half of what 2 shared cores serve on the full Walters build: a write
# costs a few hundred ms of CPU, for the embedding, the lexical projection and every worker indexing it).
MIX = {
    "similar by id": 8.0,
    "artwork": 4.0,
    "similar by text": 1.0,
    "critique": 0.5,
    "post": 0.5,
    "patch": 0.25,
    "delete": 0.25,
}
WRITES = {"post", "patch", "delete"}


class Mix:
    """Turns request number i into a request of the mix; tracks which written artworks exist."""

    def __init__(self, ids: list[str], texts: list[str], key: str, scale: float, seed: int):
        self.ids, self.texts, self.key = ids, texts, key
        self.rng = random.Random(seed)
        kinds, weights = zip(*((k, w * scale) for k, w in MIX.items()), strict=True)
        self.kinds, self.weights = list(kinds), list(weights)
        self.rate = sum(weights)
        self.kind_of: dict[int, str] = {}
        self.posted = 0
        self.patchable: list[str] = []  # acknowledged, never deleted: PATCH targets
        self.deletable: list[str] = []  # acknowledged: DELETE targets (each deleted once)
        self.text_n = 0

    def make(self, i: int) -> Request:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "patch" and not self.patchable or kind == "delete" and not self.deletable:
            kind = "artwork"
        self.kind_of[i] = kind
        key = (("X-API-Key", self.key),)
        if kind == "similar by id":
            return Request("GET", f"/api/v1/artworks/{self.rng.choice(self.ids)}/similar?k=10")
        if kind == "artwork":
            return Request("GET", f"/api/v1/artworks/{self.rng.choice(self.ids)}")
        if kind == "similar by text":
            self.text_n += 1
            return Request.json("POST", "/api/v1/similar", {"text": f"{self.rng.choice(self.texts)} {self.text_n}"})
        if kind == "critique":
            return Request("GET", f"/api/v1/artworks/{self.rng.choice(self.ids)}/critique?tone=label")
        if kind == "post":
            self.posted += 1
            n = self.posted
            body = {
                "id": f"soak-{n}",
                "title": f"Soak study {n}",
                "description": f"{self.rng.choice(self.texts)}. Study number {n}.",
                "metadata": {"soak": n},
            }
            return Request.json("POST", "/api/v1/artworks", body, key)
        if kind == "patch":
            target = self.rng.choice(self.patchable)
            return Request.json("PATCH", f"/api/v1/artworks/{target}", {"title": f"Soak study, retitled {i}"}, key)
        target = self.deletable.pop(self.rng.randrange(len(self.deletable)))
        return Request("DELETE", f"/api/v1/artworks/{target}", headers=key)

    def observe(self, i: int, outcome: Outcome) -> None:
        if self.kind_of.get(i) == "post" and outcome.status == 201:
            created = outcome.body.split(b'"id": "', 1)[-1].split(b'"', 1)[0].decode()
            # Even ones stay and get patched, odd ones get deleted: a PATCH never races a DELETE.
            (self.patchable if int(created.rsplit("-", 1)[1]) % 2 == 0 else self.deletable).append(created)


def percentiles(outcomes: list[Outcome]) -> tuple[float, float]:
    if not outcomes:
        return float("nan"), float("nan")
    values = np.array([o.latency for o in outcomes]) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--home", help="build to copy and serve (default: the one `critic` resolves)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every rate of the mix (default 1)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    source = Home.resolve(args.home)
    if not source.store_path.exists():
        sys.exit(f"soak: nothing built in {source.root}: run `critic build` first")
    scratch = Path(tempfile.mkdtemp(prefix="critic-soak-"))
    try:
        home = copy_home(source, scratch / "home")
        key = create_key(home, "soak")
        records = ArtworkStore(home.store_path).all()
        ids = [r.id for r in records]
        texts = [" ".join((r.description or r.title).split()[:12]) for r in records[:3000] if r.description or r.title]
        mix = Mix(ids, texts, key, args.scale, args.seed)
        port = free_port()
        env = {"CRITIC_RATE_LIMIT": "off", "CRITIC_KEY_RATE_LIMIT": "off"}
        with ServerProcess(critic_serve(home.root, port, args.workers, args.threads), port, env, "gunicorn") as server:
            print(
                f"serving a copy of {source.root} ({len(ids):,} artworks), ready in {server.started_s:.0f} s; "
                f"mix {mix.rate:.1f} req/s: " + ", ".join(f"{k} {w * args.scale:g}/s" for k, w in MIX.items()),
                flush=True,
            )
            print(
                "| minute | requests | errors | read p50 ms | read p99 ms | write p50 ms | write p99 ms "
                "| server RSS MB |"
            )
            print("|---|---|---|---|---|---|---|---|")
            # Warm-up, not reported: each worker builds its writer and loads the encoder on first use.
            warm = [Request("GET", f"/api/v1/artworks/{ids[n]}/critique?tone=label") for n in range(8)]
            warm += [Request.json("POST", "/api/v1/similar", {"text": texts[n]}) for n in range(8)]
            run_at_rate("127.0.0.1", port, lambda i: warm[i], 8, 2, timeout=120.0)
            rows, errors, examples = [], 0, []
            minutes = max(1, round(args.minutes))
            duration = args.minutes * 60 / minutes
            rss_start = server.rss_bytes()
            for minute in range(1, minutes + 1):
                mix.kind_of.clear()
                stats = run_at_rate(
                    "127.0.0.1", port, mix.make, mix.rate, duration, timeout=30.0, keep_body=True, observe=mix.observe
                )
                kinds = [mix.kind_of[i] for i in range(len(stats.outcomes))]
                failed = [(k, o) for k, o in zip(kinds, stats.outcomes, strict=True) if not 200 <= o.status < 300]
                errors += len(failed)
                examples += [f"{k}: status {o.status} {o.body[:200]!r}" for k, o in failed[:3]]
                reads = [o for k, o in zip(kinds, stats.outcomes, strict=True) if k not in WRITES]
                writes = [o for k, o in zip(kinds, stats.outcomes, strict=True) if k in WRITES]
                row = (minute, len(stats.outcomes), len(failed), *percentiles(reads), *percentiles(writes))
                rss = server.rss_bytes()
                rows.append((*row, rss))
                print(
                    f"| {minute} | {row[1]} | {row[2]} | {row[3]:.1f} | {row[4]:.1f} | {row[5]:.1f} | {row[6]:.1f} "
                    f"| {rss / 2**20:.0f} |",
                    flush=True,
                )
            count = ArtworkStore(home.store_path).count()
        first, last = rows[0], rows[-1]
        print()
        print(f"errors: {errors} of {sum(r[1] for r in rows)} requests" + (" (must be 0)" if errors else ""))
        for example in examples[:10]:
            print(f"  {example}")
        print(
            f"server RSS: {rss_start / 2**20:.0f} MB at the start, {first[7] / 2**20:.0f} MB after minute 1, "
            f"{last[7] / 2**20:.0f} MB at the end ({(last[7] - first[7]) / 2**20:+.0f} MB since minute 1)"
        )
        print(
            f"latency drift, last minute against the first: read p50 {last[3] / first[3]:.2f}x, "
            f"p99 {last[4] / first[4]:.2f}x; write p50 {last[5] / first[5]:.2f}x, p99 {last[6] / first[6]:.2f}x"
        )
        print(f"artworks at the end: {count:,} ({count - len(ids):+,} from the soak's writes)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        return 1 if errors else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
