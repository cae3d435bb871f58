"""Write rate of the artwork store, SQLite (the default) against PostgreSQL (several API nodes): records/s and
changes/s, each PostgreSQL figure also as a ratio to SQLite's in the same run.

The writes go through ArtworkStore, the calls the service makes once a record is embedded:

* ``create``, one record a transaction: what ``POST /api/v1/artworks`` commits (Service.create), also with
  --writers threads at once, as several API workers or nodes write (the store's write lock serialises them);
* ``upsert_many`` in batches of 1 and of --batch: a bulk import (``critic build``, the Ray ingest, Service.upsert);
* ``upsert_many`` again over the same ids with a changed title: a re-import, whose change rows replace the older ones.

Every write also logs its ids in the change feed the other nodes follow, so changes/s is the feed's growth over the
same time (one change per distinct id written). The records are the bundled Walters collection, cycled under fresh
ids past its 15,252 (the store neither embeds nor deduplicates, so repeated texts cost what new ones would).

SQLite: a file in WAL mode with ``synchronous=FULL`` (the store's setting). PostgreSQL: a throwaway server from this
machine's binaries (api.testing.PostgresServer) with ``fsync=on``, its default, so that both wait for the disk on
every commit; it is on loopback, so a networked server adds a round trip to each statement.

    python bench/store_writes.py                                  # 20,000 records a run (a few minutes on 2 cores)
    python bench/store_writes.py --records 2000 --single 500      # a quick look
    python bench/store_writes.py --json store_writes.json         # the table's figures as JSON too
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# bench/api.py would shadow the project's `api` package while this script's folder is on the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from api.testing import PostgresServer  # noqa: E402
from critic.corpus import load_walters  # noqa: E402
from critic.records import Artwork  # noqa: E402
from critic.store import ArtworkStore  # noqa: E402


def catalogue(count: int, prefix: str, source: Sequence[Artwork]) -> list[Artwork]:
    """``count`` records cycled from ``source`` under ids ``prefix-0``, ``prefix-1``, ...

    Example:
        >>> [r.id for r in catalogue(3, "c", [Artwork(id="7"), Artwork(id="8")])]
        ['c-0', 'c-1', 'c-2']
    """
    return [dataclasses.replace(source[n % len(source)], id=f"{prefix}-{n}") for n in range(count)]


def server_cpu_s(postmaster: int | None) -> float:
    """CPU seconds used so far by a PostgreSQL server's processes (the postmaster and its backends); 0 for none.
    Read from /proc, so that CPU per record counts the server's share: steadier than a rate on a busy machine."""
    if postmaster is None:
        return 0.0
    total = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # from the state on: fields[1] is the parent's pid
        except OSError:
            continue
        if int(entry) == postmaster:  # its own ticks and those of the backends it has reaped (closed connections)
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def timed(store: ArtworkStore, records: int, write: Callable[[], None], postmaster: int | None) -> dict:
    """Run ``write`` (which writes ``records`` records): its rates of records and of change-feed rows, and the CPU
    it took per record (this process, plus the server's when there is one)."""
    first = store.last_change()
    start, cpu = time.perf_counter(), time.process_time() + server_cpu_s(postmaster)
    write()
    seconds = time.perf_counter() - start
    cpu = time.process_time() + server_cpu_s(postmaster) - cpu
    changes = store.last_change() - first
    return {"records": records, "seconds": seconds, "records_per_s": records / seconds,
            "changes_per_s": changes / seconds, "cpu_ms_per_record": 1000 * cpu / records}


def batched(store: ArtworkStore, records: list[Artwork], size: int) -> Callable[[], None]:
    def write() -> None:
        for start in range(0, len(records), size):
            store.upsert_many(records[start : start + size])

    return write


def created(store: ArtworkStore, records: list[Artwork], writers: int) -> Callable[[], None]:
    """Each record created in a transaction of its own, by ``writers`` threads at once (one connection each)."""

    def write_share(share: list[Artwork]) -> None:
        for record in share:
            store.create(record)

    def write() -> None:
        threads = [threading.Thread(target=write_share, args=(records[n::writers],)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return write


def measure(location: str, source: Sequence[Artwork], args: argparse.Namespace, postmaster: int | None = None
            ) -> list[dict]:
    """Every operation of the module docstring, in turn, on the (empty) store at ``location`` (served by the
    PostgreSQL server whose postmaster has that pid, if any)."""
    store = ArtworkStore(location)
    bulk = catalogue(args.records, "bulk", source)
    revised = [dataclasses.replace(r, title=f"{r.title} (revised)") for r in bulk]
    operations = [
        ("create, 1 a transaction", args.single, created(store, catalogue(args.single, "one", source), 1)),
        (f"create, {args.writers} writers at once", args.single,
         created(store, catalogue(args.single, "many", source), args.writers)),
        ("upsert_many, batches of 1", args.single, batched(store, catalogue(args.single, "single", source), 1)),
        (f"upsert_many, batches of {args.batch}", args.records, batched(store, bulk, args.batch)),
        (f"upsert_many again (same ids), batches of {args.batch}", args.records,
         batched(store, revised, args.batch)),
    ]
    rows = []
    for name, count, write in operations:
        rows.append({"operation": name, **timed(store, count, write, postmaster)})
        print(f"  {name}: {rows[-1]['records_per_s']:,.0f} records/s, "
              f"{rows[-1]['cpu_ms_per_record']:.2f} CPU ms a record", flush=True)
    written = args.records + 3 * args.single
    if store.count() != written:
        raise RuntimeError(f"the store holds {store.count():,} records, not the {written:,} written")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records of the batched runs (default 20,000)")
    parser.add_argument("--single", type=int, default=2_000,
                        help="records of the one-a-transaction runs, a disk flush each (default 2,000)")
    parser.add_argument("--batch", type=int, default=500, help="records a transaction in the batched runs")
    parser.add_argument("--writers", type=int, default=4, help="threads creating at once in the concurrent run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    source = load_walters()
    print(f"{args.records:,} records in batches, {args.single:,} one a transaction; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="store-writes-") as folder:
        print("sqlite (WAL, synchronous=FULL)", flush=True)
        results["sqlite"] = measure(str(Path(folder) / "artworks.sqlite"), source, args)
    try:
        server = PostgresServer(fsync=True).start()
    except FileNotFoundError as exc:  # no PostgreSQL binaries: the SQLite figures alone would compare nothing
        parser.exit(2, f"store_writes.py: {exc}\n")
    try:
        print(f"postgresql (loopback, fsync=on, {server.bin.parent.name})", flush=True)
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        results["postgresql"] = measure(server.database("store_writes"), source, args, postmaster)
    finally:
        server.stop()
    print()
    print("Rates are wall-clock; CPU ms a record counts this process and, for PostgreSQL, the server's processes.")
    print("| operation | records | SQLite records/s | changes/s | CPU ms/rec | PostgreSQL records/s | changes/s "
          "| CPU ms/rec | PostgreSQL / SQLite records/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lite, pg in zip(results["sqlite"], results["postgresql"], strict=True):
        print(f"| {lite['operation']} | {lite['records']:,} | {lite['records_per_s']:,.0f} "
              f"| {lite['changes_per_s']:,.0f} | {lite['cpu_ms_per_record']:.2f} | {pg['records_per_s']:,.0f} "
              f"| {pg['changes_per_s']:,.0f} | {pg['cpu_ms_per_record']:.2f} "
              f"| {pg['records_per_s'] / lite['records_per_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
