"""Durability: SIGKILL the server in the middle of a stream of writes; every acknowledged one survives."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from api.testing import LiveServer, copy_home, post_until_down
from critic.keys import create_key

pytestmark = pytest.mark.slow

WANTED_ACKS = 12


def test_acknowledged_writes_survive_sigkill(built_home, tmp_path):
    home = copy_home(built_home, tmp_path / "home")
    key = create_key(home, "crash")
    acknowledged: list[str] = []
    stop = threading.Event()
    server = LiveServer(home, workers=1).start()
    try:
        writer = threading.Thread(target=post_until_down, args=(server.url(), key, acknowledged, stop))
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < WANTED_ACKS and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.05)
        server.kill()  # mid-stream: the writer has a request in flight or about to go
        stop.set()
        writer.join(30)
    finally:
        server.kill()
    assert len(acknowledged) >= WANTED_ACKS

    with LiveServer(home, workers=1) as restarted:
        for artwork_id in acknowledged:
            stored = requests.get(restarted.url(f"/api/v1/artworks/{artwork_id}"), timeout=30)
            assert stored.status_code == 200, artwork_id
            assert stored.json()["metadata"] == {"batch": "crash"}
        # Searchable: the index was rebuilt from the store at start, so a filtered search finds them all.
        query = {"id": acknowledged[0], "filters": {"metadata.batch": "crash"}, "k": 100}
        found = requests.post(restarted.url("/api/v1/similar"), json=query, timeout=30).json()
        assert set(acknowledged[1:]) <= {r["id"] for r in found["results"]}
