"""Reliability under faults: reads racing writes on a real two-worker server, a damaged index or database at
start (and `critic repair`), and a disk that fills up in the middle of a stream of writes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from api import create_app
from api.testing import NO_LIMITS, NO_LIMITS_ENV, LiveServer, copy_home
from critic.cli import main
from critic.keys import create_key
from critic.service import Service
from critic.store import ArtworkStore, StoreError
from index.store import VectorIndex

pytestmark = pytest.mark.slow

# ------------------------------------------------------------------ concurrent reads during writes

WRITES = 18  # artworks created, then patched; every third one deleted


def concurrent_record(artwork_id: str, version: int) -> dict:
    return {
        "title": f"Concurrent {artwork_id} v{version}",
        "description": f"A harbour at dusk with moored fishing boats, version {version} of {artwork_id}.",
        "metadata": {"version": version},
    }


def test_reads_during_writes_see_whole_committed_records(built_home, tmp_path):
    home = copy_home(built_home, tmp_path / "home")
    key = {"X-API-Key": create_key(home, "concurrency")}
    base_ids = ArtworkStore(home.store_path).ids()[:10]
    events: dict[str, dict[str, float]] = {}  # per artwork: when each write was sent and acknowledged
    problems: list[str] = []
    statuses: dict[int, int] = {}
    done = threading.Event()

    def writer(server: LiveServer) -> None:
        session = requests.Session()
        try:
            for n in range(WRITES):
                artwork_id = f"conc-{n}"
                log = events[artwork_id] = {"create_sent": time.monotonic()}
                created = session.post(
                    server.url("/api/v1/artworks"), json={"id": artwork_id, **concurrent_record(artwork_id, 0)},
                    headers=key, timeout=60,
                )  # fmt: skip
                assert created.status_code == 201, created.text
                log["created"] = time.monotonic()
                log["patch_sent"] = time.monotonic()
                patched = session.patch(
                    server.url(f"/api/v1/artworks/{artwork_id}"), json=concurrent_record(artwork_id, 1),
                    headers=key, timeout=60,
                )  # fmt: skip
                assert patched.status_code == 200, patched.text
                log["patched"] = time.monotonic()
                if n % 3 == 0:
                    log["delete_sent"] = time.monotonic()
                    deleted = session.delete(server.url(f"/api/v1/artworks/{artwork_id}"), headers=key, timeout=60)
                    assert deleted.status_code == 204, deleted.text
                    log["deleted"] = time.monotonic()
        except Exception as exc:  # reported by the test below
            problems.append(f"writer: {exc!r}")
        finally:
            done.set()

    def check_record(artwork_id: str, seen: dict[str, float], response: requests.Response, ended: float) -> None:
        after = events[artwork_id]
        if response.status_code == 404:
            # Missing is right before the create was acknowledged, or once a delete was under way.
            if "created" in seen and not after.get("delete_sent", ended + 1) <= ended:
                problems.append(f"{artwork_id}: 404 after its create was acknowledged")
            return
        if response.status_code != 200:
            problems.append(f"{artwork_id}: status {response.status_code}")
            return
        record = response.json()
        version = record["metadata"].get("version")
        whole = (
            record["title"] == f"Concurrent {artwork_id} v{version}"
            and f"version {version} of" in (record["description"])
        )
        if not whole:
            problems.append(f"{artwork_id}: a record mixing versions: {record['title']!r} / {record['description']!r}")
        if "patched" in seen and version != 1:
            problems.append(f"{artwork_id}: version {version} read after the patch was acknowledged")
        if "deleted" in seen:
            problems.append(f"{artwork_id}: read after its delete was acknowledged")

    def check_similar(response: requests.Response, started: float) -> None:
        if response.status_code != 200:
            problems.append(f"similar: status {response.status_code}")
            return
        results = response.json()["results"]
        ids, scores = [r["id"] for r in results], [r["score"] for r in results]
        if len(set(ids)) != len(ids) or scores != sorted(scores, reverse=True) or len(ids) != 10:
            problems.append(f"similar: duplicated, unordered or short results {ids}")
        for found in ids:
            if found.startswith("conc-") and events.get(found, {}).get("deleted", started + 1) < started:
                problems.append(f"similar: {found} came back after its delete was acknowledged")

    def reader(server: LiveServer, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session() if seed % 2 else requests  # kept-alive and fresh connections: both workers
        while not done.is_set():
            written = list(events)
            if not written:
                time.sleep(0.01)
                continue
            artwork_id = rng.choice(written)
            seen = dict(events[artwork_id])
            started = time.monotonic()
            try:
                if rng.random() < 0.6:
                    response = session.get(server.url(f"/api/v1/artworks/{artwork_id}"), timeout=60)
                    check_record(artwork_id, seen, response, time.monotonic())
                else:
                    base = rng.choice(base_ids)
                    response = session.get(server.url(f"/api/v1/artworks/{base}/similar?k=10"), timeout=60)
                    check_similar(response, started)
            except requests.RequestException as exc:
                problems.append(f"reader: {exc!r}")
                continue
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    env = dict(NO_LIMITS_ENV)
    with LiveServer(home, workers=2, threads=4, env=env) as server:
        threads = [threading.Thread(target=writer, args=(server,))]
        threads += [threading.Thread(target=reader, args=(server, seed)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        # After the last acknowledgement every worker answers with the final state.
        for n in range(WRITES):
            for _ in range(2):
                got = requests.get(server.url(f"/api/v1/artworks/conc-{n}"), timeout=60)
                assert got.status_code == (404 if n % 3 == 0 else 200)
    reads = sum(statuses.values())
    assert not problems, f"{len(problems)} inconsistencies in {reads} reads:\n" + "\n".join(problems[:10])
    assert reads >= 50 and not any(status >= 500 for status in statuses), statuses


# ------------------------------------------------------------------ damaged files at start


def indexed_neighbours(index: VectorIndex, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
    return {i: [(hit, round(score, 4)) for hit, score in index.search(index.vector(i), 10)] for i in ids}


@pytest.mark.parametrize("damage", ["truncated", "bit flip", "manifest"])
def test_a_damaged_index_is_detected_and_rebuilt_from_the_database(built_home, tmp_path, damage):
    home = copy_home(built_home, tmp_path / "home")
    probe = ArtworkStore(home.store_path).ids()[:5]
    before = indexed_neighbours(VectorIndex.load(home.index_dir), probe)
    manifest = json.loads((home.index_dir / "manifest.json").read_text())
    faiss_file = home.index_dir / manifest["files"]["index"]["name"]
    ids_file = home.index_dir / manifest["files"]["ids"]["name"]
    if damage == "truncated":
        os.truncate(faiss_file, faiss_file.stat().st_size // 2)
        expected = "truncated?"
    elif damage == "bit flip":
        data = bytearray(ids_file.read_bytes())
        data[len(data) // 2] ^= 0x01
        ids_file.write_bytes(bytes(data))
        expected = "sha256"
    else:
        (home.index_dir / "manifest.json").write_bytes(b'{"format": 1, "files": ')
        expected = "not valid JSON"
    messages: list[str] = []
    service = Service.load(home, log=messages.append)
    assert expected in messages[0] and "rebuilding it from the store" in messages[0], messages
    assert len(service.recommender.index) == service.store.count()
    assert indexed_neighbours(service.recommender.index, probe) == before
    assert len(VectorIndex.load(home.index_dir)) == service.store.count()  # saved whole again


def checkpointed_records(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every committed row in the main file, which we damage
        return dict(db.execute("SELECT id, record FROM artworks"))


@pytest.mark.parametrize(("damage", "kept"), [("pages overwritten", 0.8), ("truncated", 0.4), ("header", 1.0)])
def test_a_damaged_database_stops_the_start_and_critic_repair_recovers_it(built_home, tmp_path, capsys, damage, kept):
    home = copy_home(built_home, tmp_path / "home")
    original = checkpointed_records(home.store_path)
    path = home.store_path
    data = bytearray(path.read_bytes())
    if damage == "pages overwritten":
        rng = random.Random(7)
        start = 4096 * (len(data) // 4096 // 2)
        data[start : start + 2 * 4096] = rng.randbytes(2 * 4096)
    elif damage == "truncated":
        data = data[: int(len(data) * 0.55)]
    else:
        data[:100] = bytes(100)
    path.write_bytes(bytes(data))
    damaged_digest = hashlib.sha256(bytes(data)).hexdigest()

    assert main(["serve", "--home", str(home.root)]) == 2
    assert "run `critic repair`" in capsys.readouterr().err
    with pytest.raises(StoreError, match="critic repair"):
        Service.load(home, log=lambda _: None)

    assert main(["repair", "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    assert "is damaged" in out and "recovered" in out and "index: rebuilt" in out, out
    backup = next(home.root.glob("damaged-*"))
    assert hashlib.sha256((backup / path.name).read_bytes()).hexdigest() == damaged_digest

    store = ArtworkStore(home.store_path)  # opens: passes quick_check
    recovered = dict(sqlite3.connect(home.store_path).execute("SELECT id, record FROM artworks"))
    assert all(original.get(i) == record for i, record in recovered.items())  # nothing invented or altered
    assert len(recovered) >= kept * len(original), (len(recovered), len(original))
    assert len(VectorIndex.load(home.index_dir)) == store.count() == len(recovered)


# ------------------------------------------------------------------ a full disk


def big_artwork(n: int) -> dict:
    """An artwork with a long description (its record spills over several database pages)."""
    words = " ".join(f"brushstroke{n}x{w}" for w in range(1000))  # about 17 kB, under the 20,000 limit
    return {"id": f"full-{n}", "title": f"Full disk study {n}", "description": f"A seascape in oil. {words}"}


def write_until_refused(client, key: dict[str, str], limit: int = 400) -> tuple[list[str], dict, object]:
    """POST big artworks until one is refused; returns (acknowledged ids, the refused artwork, its response)."""
    acknowledged = []
    for n in range(limit):
        artwork = big_artwork(n)
        response = client.post("/api/v1/artworks", json=artwork, headers=key)
        if response.status_code != 201:
            return acknowledged, artwork, response
        acknowledged.append(artwork["id"])
    pytest.fail(f"{limit} writes were all accepted: the disk never filled")


def assert_refused_cleanly(response, refused: dict) -> None:
    assert response.status_code == 507, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("storage-full") and "nothing of it was stored" in body["detail"]


def stored_records(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(db.execute("SELECT id, record FROM artworks"))


def test_a_full_database_refuses_the_write_with_507_and_keeps_everything(built_home, tmp_path):
    """SQLite's own limit on the database's size (max_page_count) fills it: the error is SQLite's real one."""
    home = copy_home(built_home, tmp_path / "home")
    service = Service.load(home, log=lambda _: None)
    client = create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service)
    client = client.test_client()
    key = {"X-API-Key": create_key(home, "full")}
    before = stored_records(home.store_path)
    with service.store._connect() as db:  # this thread's connection, which the test client's requests use
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    service.store.db._connection().execute(f"PRAGMA max_page_count = {pages + 8}")

    acknowledged, refused, response = write_until_refused(client, key)
    assert_refused_cleanly(response, refused)
    assert client.get(f"/api/v1/artworks/{refused['id']}").status_code == 404
    after = stored_records(home.store_path)
    assert {i: r for i, r in after.items() if i in before} == before
    assert set(after) == set(before) | set(acknowledged)
    # Room again: the same write goes through on the same connection.
    service.store.db._connection().execute(f"PRAGMA max_page_count = {2**30}")
    assert client.post("/api/v1/artworks", json=refused, headers=key).status_code == 201
    found = client.get(f"/api/v1/artworks/{refused['id']}/similar?k=3")
    assert found.status_code == 200 and len(found.get_json()["results"]) == 3


@pytest.fixture
def small_disk(built_home, tmp_path):
    """A tmpfs just larger than the build (root only; skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    used = sum(f.stat().st_size for f in built_home.root.rglob("*") if f.is_file())
    size = used + 16 * 2**20
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a filler file until about ``leave`` bytes of ``disk`` are free."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave:
                break
            try:
                handle.write(bytes(min(free - leave, 2**20)))
                handle.flush()
            except OSError:
                break
    return filler


def test_a_full_disk_refuses_the_write_with_507_and_loses_nothing(built_home, small_disk):
    """A real full filesystem: the home on a small tmpfs, filled up while writes stream in."""
    home = copy_home(built_home, small_disk / "home")
    for database in (home.store_path, home.cache_path):
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old WAL space for new writes to reuse
    service = Service.load(home, log=lambda _: None)
    client = create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service)
    client = client.test_client()
    key = {"X-API-Key": create_key(home, "full")}
    before = stored_records(home.store_path)
    filler = fill(small_disk, leave=256 * 1024)

    acknowledged, refused, response = write_until_refused(client, key)
    assert acknowledged, "the disk was full before any write: leave more room"
    assert_refused_cleanly(response, refused)
    assert client.get(f"/api/v1/artworks/{refused['id']}").status_code == 404
    for artwork_id in acknowledged:
        assert client.get(f"/api/v1/artworks/{artwork_id}").status_code == 200
    after = stored_records(home.store_path)
    assert {i: r for i, r in after.items() if i in before} == before
    assert set(after) == set(before) | set(acknowledged)
    # A restart on the full disk still serves everything acknowledged.
    restarted = Service.load(home, log=lambda _: None)
    assert set(restarted.store.ids()) == set(after)
    assert all(artwork_id in restarted.recommender.index for artwork_id in acknowledged)
    # Room again: the refused write goes through on the same server.
    filler.unlink()
    assert client.post("/api/v1/artworks", json=refused, headers=key).status_code == 201
    assert client.get(f"/api/v1/artworks/{refused['id']}").status_code == 200
