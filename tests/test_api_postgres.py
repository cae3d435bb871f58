"""Two API nodes (`critic serve` on two ports, each with its own copy of the build and its own index replica)
sharing one real PostgreSQL server through CRITIC_DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from api.testing import NO_LIMITS_ENV, LiveServer, copy_home, post_until_down
from critic.keys import KeyStore
from critic.store import ArtworkStore

pytestmark = pytest.mark.slow

DEADLINE_S = 1.0
WANTED_ACKS = 8


@pytest.fixture(scope="module")
def cluster(built_home, postgres, tmp_path_factory):
    """Node A and node B, one worker each, on copies of the small build whose artworks were moved into a fresh
    PostgreSQL database (as `critic build` with the URL set puts them there); a write key for both."""
    url = postgres.database("nodes")
    root = tmp_path_factory.mktemp("nodes")
    homes = [copy_home(built_home, root / name) for name in ("a", "b")]
    ArtworkStore(url).upsert_many(ArtworkStore(built_home.store_path).all())
    env = {**NO_LIMITS_ENV, "CRITIC_DATABASE_URL": url}
    nodes = [LiveServer(home, workers=1, env=env) for home in homes]
    with ThreadPoolExecutor(2) as starting:
        list(starting.map(lambda node: node.start(), nodes))
    try:
        yield {"url": url, "env": env, "homes": homes, "nodes": nodes, "key": KeyStore(url).create("nodes")}
    finally:
        for node in nodes:
            node.kill()


def found_by_search(node: LiveServer, text: str, batch: str) -> list[str]:
    query = {"text": text, "filters": {"metadata.batch": batch}, "k": 50}
    response = requests.post(node.url("/api/v1/similar"), json=query, timeout=30)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_a_write_on_one_node_is_found_by_search_on_the_other_within_a_second(cluster):
    a, b = cluster["nodes"]
    artwork = {
        "id": "pg-1",
        "title": "Lighthouse on a rocky coast",
        "description": "A lighthouse stands on black rocks as waves break below it under a grey sky.",
        "metadata": {"batch": "pg"},
    }
    created = requests.post(a.url("/api/v1/artworks"), json=artwork, headers={"X-API-Key": cluster["key"]}, timeout=30)
    assert created.status_code == 201, created.text
    acknowledged = time.monotonic()
    while (found := found_by_search(b, artwork["description"], "pg")) != ["pg-1"]:
        assert time.monotonic() - acknowledged < DEADLINE_S, found
        time.sleep(0.02)
    assert requests.get(b.url("/api/v1/artworks/pg-1/similar?k=3"), timeout=30).status_code == 200


def test_revoking_a_key_on_one_node_refuses_it_on_the_other(cluster):
    a, b = cluster["nodes"]
    key = KeyStore(cluster["url"]).create("to-revoke")
    artwork = {"id": "pg-key", "title": "Vase", "description": "A small blue vase."}
    created = requests.post(b.url("/api/v1/artworks"), json=artwork, headers={"X-API-Key": key}, timeout=30)
    assert created.status_code == 201, created.text
    home_a = str(cluster["homes"][0].root)
    revoke = [sys.executable, "-m", "critic.cli", "keys", "revoke", "to-revoke", "--home", home_a]  # on node A
    done = subprocess.run(revoke, env={**os.environ, **cluster["env"]}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for node in (a, b):
        refused = requests.delete(node.url("/api/v1/artworks/pg-key"), headers={"X-API-Key": key}, timeout=30)
        assert refused.status_code == 401, refused.text


def test_sigkill_of_the_writing_node_loses_nothing_and_it_reconciles_on_restart(cluster):
    a, b = cluster["nodes"]
    acknowledged: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=post_until_down, args=(a.url(), cluster["key"], acknowledged, stop, "kill"))
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < WANTED_ACKS and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.02)
    a.kill()  # right after an acknowledgement, with the next write in flight or about to go
    stop.set()
    writer.join(30)
    assert len(acknowledged) >= WANTED_ACKS
    # The surviving node has every acknowledged write, stored and searchable.
    assert set(acknowledged) <= set(found_by_search(b, "breaking waves on a pebble beach", "kill"))
    late = {"id": "pg-late", "title": "Storm", "description": "A storm at sea.", "metadata": {"batch": "late"}}
    headers = {"X-API-Key": cluster["key"]}
    assert requests.post(b.url("/api/v1/artworks"), json=late, headers=headers, timeout=30).status_code == 201

    # Node A starts again from its saved index and catches up from the feed: no full rebuild.
    restarted = LiveServer(cluster["homes"][0], workers=1, env=cluster["env"]).start()
    cluster["nodes"][0] = restarted
    assert set(acknowledged) <= set(found_by_search(restarted, "breaking waves on a pebble beach", "kill"))
    assert found_by_search(restarted, "A storm at sea.", "late") == ["pg-late"]
    log = restarted.log_tail(200)
    assert "index: reconciled with the store" in log and "rebuilding it from the store" not in log, log
