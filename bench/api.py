"""The served API under load, measured at the server, beside two anchors measured in the same run.

wrk (a C load generator; Debian package ``wrk``, installed by this script with apt-get when it is missing and
the script runs as root) drives each server over loopback with a fixed number of connections, each
connection sending its next request as soon as the last is answered (a closed loop: the latencies are the
server's at that concurrency, and its throughput is what it gives when never idle). A Lua script
(bench/wrk_requests.lua) walks a file of distinct requests (ids, texts, critique seeds) and counts the statuses.
For every row:

* req/s, p50 and p99 latency (wrk's own measurement), answers other than 2xx;
* server CPU per request: the change in user + system time of every process of the server (gunicorn's master
  and workers, from /proc/<pid>/stat) over the run, divided by the requests answered; wrk's CPU per request
  is printed beside it, because it shares the machine's cores with the server.

Servers and anchors, each with the same gunicorn workers and threads as `critic serve`:

* `critic serve` on a private copy of the build, every rate limit off (the limiter is not what is measured);
* **bare gunicorn** (bench/bare_wsgi.py): answers each similar-by-id URL with the very JSON body `critic serve`
  gave for it, so it has HTTP and gunicorn and nothing else: the floor under the framework;
* **in-process**: the same searches called directly in this process on one thread (what the route runs:
  the query, the search, the JSON), no HTTP at all: the floor under the web stack.

Two more rows measure what a flood of critiques does to reads: similar by id with other clients sending
critiques as fast as they are answered, once with no cap on generations and once on a server whose only
limit is the default cap on generations running at once (CRITIC_MAX_GENERATIONS), which answers the
critiques beyond it 503 at once. A critique-latency row runs one connection, so each critique has the
server to itself. The run ends with each server process's memory: resident (RSS), proportional (PSS) and
private (USS).

    python bench/api.py                                   # the build `critic` uses: about 4 minutes
    python bench/api.py --home DIR --duration 10 --workers 2 --threads 4 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from loadgen import critic_serve  # noqa: E402

# This file is named api.py: with its folder on the path it would shadow the project's `api` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

from api.testing import NO_LIMITS_ENV, ServerProcess, copy_home, free_port  # noqa: E402
from critic.home import Home  # noqa: E402
from critic.store import ArtworkStore  # noqa: E402

WRK_SCRIPT = BENCH / "wrk_requests.lua"
NO_CAP = {"CRITIC_MAX_GENERATIONS": "0"}


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing and this runs as root."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk: apt-get install -y wrk", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet)
        found = shutil.which("wrk")
    if found is None:
        sys.exit("bench/api.py: needs wrk (Debian and Ubuntu: apt-get install wrk; macOS: brew install wrk)")
    return found


def workload(home: Home, seed: int) -> tuple[list[str], list[str]]:
    """Artwork ids and query texts (the first words of descriptions and titles) from the build's store."""
    records = ArtworkStore(home.store_path).all()
    rng = random.Random(seed)
    ids = [r.id for r in rng.sample(records, min(1000, len(records)))]
    texts = []
    for record in rng.sample(records, len(records)):
        words = (record.description or record.title or "").split()[:14]
        if len(words) >= 3:
            texts.append(" ".join(words))
    return ids, texts


def similar_path(artwork_id: str) -> str:
    return f"/api/v1/artworks/{urllib.request.quote(artwork_id, safe='')}/similar?k=10"


def distinct_texts(texts: list[str], count: int) -> list[str]:
    """``count`` distinct query texts (a text reused gets a number, so the encoder runs for each)."""
    return [texts[n % len(texts)] + (f" ({n // len(texts)})" if n >= len(texts) else "") for n in range(count)]


def text_lines(texts: list[str], count: int) -> list[str]:
    return ["POST\t/api/v1/similar\t" + json.dumps({"text": t, "k": 10}) for t in distinct_texts(texts, count)]


def critique_lines(ids: list[str], count: int) -> list[str]:
    """``count`` distinct label critiques (id and seed vary)."""
    return [
        f"GET\t/api/v1/artworks/{urllib.request.quote(ids[(7 * n) % len(ids)], safe='')}/critique?tone=label&seed={n}\t"
        for n in range(count)
    ]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """A process's resident set (RSS), its proportional share of it (PSS: each page shared by n processes
    counts 1/n) and what it alone holds (USS: private pages), in MB, from /proc/<pid>/smaps_rollup."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for entry in rollup:
            name, _, rest = entry.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0]) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


class Wrk:
    """Runs wrk against one server with request files written to ``folder``."""

    def __init__(self, binary: str, folder: Path):
        self.binary, self.folder, self.files = binary, folder, 0

    def start(self, server: ServerProcess, lines: list[str], connections: int, seconds: float) -> subprocess.Popen:
        self.files += 1
        path = self.folder / f"requests-{self.files}.tsv"
        path.write_text("\n".join(lines) + "\n")
        threads = min(2, connections)
        argv = [self.binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
        argv += ["-s", str(WRK_SCRIPT), server.url(), "--", str(path), str(threads)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def result(process: subprocess.Popen) -> dict:
        out, err = process.communicate()
        line = next((x for x in out.splitlines() if x.startswith("WRK ")), None)
        if process.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({process.returncode}): {err.strip() or out.strip()}")
        return json.loads(line[4:])

    def run(self, server: ServerProcess, lines: list[str], connections: int, seconds: float) -> dict:
        """One measured run: wrk's figures plus the server's and wrk's CPU per request."""
        pids = server.pids()
        server_cpu = cpu_seconds(pids)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        got = self.result(self.start(server, lines, connections, seconds))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        got["server_cpu_s"] = cpu_seconds(pids) - server_cpu
        got["client_cpu_s"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        return got


def row(name: str, server: str, connections: int, got: dict) -> dict:
    answered = max(1, got["requests"])
    statuses = {int(k): v for k, v in got["statuses"].items()}
    return {
        "row": name,
        "server": server,
        "connections": connections,
        "requests": got["requests"],
        "req_s": got["requests"] / (got["duration_us"] / 1e6),
        "p50_ms": got["p50_us"] / 1000,
        "p99_ms": got["p99_us"] / 1000,
        "server_cpu_ms": 1000 * got["server_cpu_s"] / answered if "server_cpu_s" in got else None,
        "client_cpu_ms": 1000 * got["client_cpu_s"] / answered if "client_cpu_s" in got else None,
        "not_2xx": sum(n for status, n in statuses.items() if not 200 <= status < 300)
        + got["socket_errors"]
        + got["timeouts"],
        "statuses": statuses,
    }


def record_bodies(server: ServerProcess, ids: list[str], path: Path) -> list[str]:
    """Fetch each similar-by-id answer once (this also warms the server) and save them for the bare anchor."""
    bodies = {"/api/v1/readyz": json.dumps({"status": "ready"})}
    for artwork_id in ids:
        with urllib.request.urlopen(server.url(similar_path(artwork_id)), timeout=30) as response:
            bodies[similar_path(artwork_id)] = response.read().decode()
    path.write_text(json.dumps(bodies))
    return [f"GET\t{p}\t" for p in bodies if p != "/api/v1/readyz"]


def warm_critiques(server: ServerProcess, ids: list[str], concurrent: int, rounds: int) -> None:
    """Critiques until each worker has written some: a worker's first one loads the writer and learns the
    collection's lexicon (many seconds on a full build), which is set-up, not the latency a reader meets."""

    def one(n: int) -> None:
        path = f"/api/v1/artworks/{urllib.request.quote(ids[-1 - n % len(ids)], safe='')}/critique?tone=label"
        try:
            urllib.request.urlopen(server.url(f"{path}&seed={10**6 + n}"), timeout=600).read()
        except urllib.error.HTTPError:  # 503 while the other slots are busy: the next round comes back
            pass

    for r in range(rounds):
        with ThreadPoolExecutor(concurrent) as pool:
            list(pool.map(one, range(r * concurrent, (r + 1) * concurrent)))


def hammered(wrk: Wrk, server: ServerProcess, by_id: list[str], critiques: list[str], args) -> tuple[dict, dict]:
    """Similar by id while other connections send critiques as fast as they are answered."""
    flood = wrk.start(server, critiques, args.hammer_connections, args.duration + 2)
    time.sleep(1)  # the flood is running before the reads start
    reads = wrk.run(server, by_id, args.read_connections, args.duration)
    return reads, Wrk.result(flood)


def in_process(home: Home, ids: list[str], texts: list[str], seconds: float) -> list[dict]:
    """The same searches called directly, one thread: what the route runs without HTTP."""
    import torch

    from critic.service import Service
    from index.recommend import SimilarQuery

    torch.set_num_threads(1)  # as each of critic serve's workers on a 2-core machine
    service = Service.load(home, log=lambda _: None)
    rows = []
    for name, queries in (
        ("similar by id", [SimilarQuery(id=i, k=10) for i in ids]),
        ("similar by text", [SimilarQuery(text=t, k=10) for t in distinct_texts(texts, 20_000)]),
    ):
        json.dumps(service.similar(queries[-1]).to_json())  # warm-up: loads the encoder once
        wall, cpu, n = [], 0.0, 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds and n < len(queries):
            t0, c0 = time.perf_counter(), time.thread_time()
            json.dumps(service.similar(queries[n]).to_json(), ensure_ascii=False)
            wall.append(time.perf_counter() - t0)
            cpu += time.thread_time() - c0
            n += 1
        cuts = statistics.quantiles(wall, n=100)
        rows.append(
            {
                "row": name,
                "server": "in-process, 1 thread",
                "connections": 1,
                "requests": n,
                "req_s": n / sum(wall),
                "p50_ms": 1000 * statistics.median(wall),
                "p99_ms": 1000 * cuts[98],
                "server_cpu_ms": 1000 * cpu / n,
                "client_cpu_ms": None,
                "not_2xx": 0,
                "statuses": {},
            }
        )
    return rows


def serve(home: Home, args, env: dict[str, str], name: str) -> ServerProcess:
    port = free_port()
    server = ServerProcess(critic_serve(home.root, port, args.workers, args.threads), port, env, name=name)
    server.start()
    print(f"{name}: ready in {server.started_s:.0f} s", flush=True)
    return server


def bare_gunicorn(bodies: Path, args) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(BENCH), "--worker-class", "gthread"]
    argv += ["--workers", str(args.workers), "--threads", str(args.threads), "--keep-alive", "5"]
    argv += ["--bind", f"127.0.0.1:{port}", "bare_wsgi:app"]
    return ServerProcess(argv, port, {"BARE_BODIES": str(bodies)}, name="bare gunicorn").start()


def measure(home: Home, args, folder: Path) -> dict:
    wrk = Wrk(ensure_wrk(), folder)
    ids, texts = workload(home, args.seed)
    critiques = critique_lines(ids, 20_000)
    text_requests = text_lines(texts, 20_000)
    seconds = args.duration
    rows: list[dict] = []

    def report(item: dict) -> None:
        rows.append(item)
        print("  " + line(item), flush=True)

    memory = {}
    server = serve(home, args, {**NO_LIMITS_ENV, **NO_CAP, "CRITIC_RUN_DIR": str(folder / "run-a")}, "critic serve")
    try:
        by_id = record_bodies(server, ids, folder / "bodies.json")
        warm_critiques(server, ids, concurrent=2 * args.workers, rounds=2)
        wrk.run(server, text_requests[-200:], 4, 3)  # warm-up, not reported
        report(row("/healthz", "critic serve", 8, wrk.run(server, ["GET\t/api/v1/healthz\t"], 8, seconds)))
        report(row("similar by id", "critic serve", 8, wrk.run(server, by_id, 8, seconds)))
        report(row("similar by text", "critic serve", 4, wrk.run(server, text_requests, 4, seconds)))
        report(row("critique (label), alone", "critic serve", 1, wrk.run(server, critiques, 1, 2 * seconds)))
        reads = args.read_connections
        report(row("similar by id, alone", "critic serve", reads, wrk.run(server, by_id, reads, seconds)))
        got, flood = hammered(wrk, server, by_id, critiques[5000:], args)
        report(row("similar by id, critiques flooding, no cap", "critic serve", reads, got))
        report(row("critiques flooding (no cap)", "critic serve", args.hammer_connections, flood))
        pids = server.pids()
        memory = {
            "master_mb": memory_mb(server.process.pid),
            "workers_mb": [memory_mb(p) for p in pids if p != server.process.pid],
        }
    finally:
        server.kill()

    capped_env = {**NO_LIMITS_ENV, "CRITIC_RUN_DIR": str(folder / "run-b")}
    server = serve(home, args, capped_env, "critic serve, generations capped (CRITIC_MAX_GENERATIONS default)")
    try:
        wrk.run(server, by_id, 4, 2)
        warm_critiques(server, ids, concurrent=2, rounds=2 * args.workers)
        got, flood = hammered(wrk, server, by_id, critiques[10_000:], args)
        report(row("similar by id, critiques flooding, capped", "critic serve", reads, got))
        report(row("critiques flooding (capped)", "critic serve", args.hammer_connections, flood))
    finally:
        server.kill()

    bare = bare_gunicorn(folder / "bodies.json", args)
    try:
        wrk.run(bare, by_id, 8, 2)
        report(row("similar by id (the same JSON)", "bare gunicorn", 8, wrk.run(bare, by_id, 8, seconds)))
    finally:
        bare.kill()

    for item in in_process(home, ids, texts, seconds):
        report(item)
    return {"rows": rows, "memory": memory}


def line(item: dict) -> str:
    cpu = f", server CPU {item['server_cpu_ms']:.2f} ms/req" if item["server_cpu_ms"] is not None else ""
    return (
        f"{item['server']}: {item['row']} ({item['connections']} conn): {item['req_s']:.1f} req/s, "
        f"p50 {item['p50_ms']:.1f} ms, p99 {item['p99_ms']:.1f} ms{cpu}, not 2xx {item['not_2xx']}"
    )


def cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_tables(result: dict, args) -> None:
    rows = {(r["server"], r["row"]): r for r in result["rows"]}
    print(f"\n{args.workers} workers x {args.threads} threads; {args.duration:g} s per row; wrk closed loop")
    print("| row | server | conn. | req/s | p50 ms | p99 ms | server CPU ms/req | wrk CPU ms/req | not 2xx |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(
            f"| {r['row']} | {r['server']} | {r['connections']} | {cell(r['req_s'])} | {cell(r['p50_ms'])} "
            f"| {cell(r['p99_ms'])} | {cell(r['server_cpu_ms'], 2)} | {cell(r['client_cpu_ms'], 2)} "
            f"| {r['not_2xx']:,} {json.dumps(r['statuses']) if r['not_2xx'] else ''} |"
        )
    served = rows.get(("critic serve", "similar by id"))
    bare = rows.get(("bare gunicorn", "similar by id (the same JSON)"))
    inproc = rows.get(("in-process, 1 thread", "similar by id"))
    if served and bare and inproc:
        print(
            f"\nsimilar by id: critic serve {served['req_s'] / bare['req_s']:.2f}x bare gunicorn's req/s; "
            f"server CPU per request {served['server_cpu_ms']:.2f} ms = bare gunicorn {bare['server_cpu_ms']:.2f} ms"
            f" + search in-process {inproc['server_cpu_ms']:.2f} ms + the rest (Flask, validation, security, "
            f"logging) {served['server_cpu_ms'] - bare['server_cpu_ms'] - inproc['server_cpu_ms']:.2f} ms"
        )
    alone = rows.get(("critic serve", "similar by id, alone"))
    for kind in ("no cap", "capped"):
        flooded = rows.get(("critic serve", f"similar by id, critiques flooding, {kind}"))
        if alone and flooded:
            times = flooded["p99_ms"] / alone["p99_ms"]
            print(f"similar-by-id p99 with critiques flooding ({kind}): {times:.1f}x its p99 alone")
    memory = result["memory"]
    if memory:
        print("\nmemory (MB)   RSS   PSS   USS   (PSS counts a page shared by n processes 1/n; USS: private pages)")
        named = [("master", memory["master_mb"])] + [(f"worker {n}", m) for n, m in enumerate(memory["workers_mb"], 1)]
        for name, m in named:
            print(f"{name:<12}{m['rss']:>6,.0f}{m['pss']:>6,.0f}{m['uss']:>6,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="build to serve (default: the one `critic` resolves); it is copied first")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as `critic serve`)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4, as `critic serve`)")
    parser.add_argument("--read-connections", type=int, default=4, help="similar-by-id clients beside the flood")
    parser.add_argument("--hammer-connections", type=int, default=8, help="clients flooding critiques (default 8)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    home = Home.resolve(args.home)
    if not (home.store_path.exists() and home.vae_dir.exists()):
        sys.exit(f"bench/api.py: nothing built in {home.root}: run `critic build` first")
    began = time.monotonic()
    print(
        f"home {home.root}: {ArtworkStore(home.store_path).count():,} artworks; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="critic-bench-api-") as tmp:
        folder = Path(tmp)
        result = measure(copy_home(home, folder / "home"), args, folder)
    print_tables(result, args)
    print(f"\nwhole run {time.monotonic() - began:.0f} s, load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
