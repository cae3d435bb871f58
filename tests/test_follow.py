"""A node over a shared PostgreSQL store: its follower applies other nodes' writes within a second, by NOTIFY or,
without a listener, by polling; `critic repair` checks the shared database and rebuilds the node's index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.testing import copy_home
from critic.follow import Follower
from critic.records import Artwork
from critic.repair import repair
from critic.service import Service
from critic.sql import PostgresDatabase
from critic.store import ArtworkStore

pytestmark = pytest.mark.slow

DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def node(built_home, postgres, tmp_path_factory):
    """A node's Service on a copy of the small build, its artworks moved into a fresh PostgreSQL database."""
    url = postgres.database("follow")
    home = copy_home(built_home, tmp_path_factory.mktemp("node") / "home")
    ArtworkStore(url).upsert_many(ArtworkStore(home.store_path).all())  # what `critic build` does with the URL
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRITIC_DATABASE_URL", url)
        service = Service.load(home, log=lambda _: None)
        assert service.store.shared and service.store.count() == ArtworkStore(home.store_path).count()
        yield service, url


def applied_within(service: Service, artwork_id: str, deadline_s: float) -> float | None:
    """Seconds until ``artwork_id`` is in the service's index (never refreshed by hand here), or None."""
    began = time.monotonic()
    while time.monotonic() - began < deadline_s:
        if artwork_id in service.recommender.index:
            return time.monotonic() - began
        time.sleep(0.01)
    return None


def remote_write(url: str, artwork_id: str) -> None:
    """A write committed by another node: its own connection to the shared store."""
    ArtworkStore(url).create(Artwork(id=artwork_id, title="Harbour at dusk", description="Boats moored at dusk."))


def test_a_remote_write_is_applied_within_a_second_by_notify(node):
    service, url = node
    follower = Follower(service, poll_s=30.0).start()  # a poll that slow cannot be what applies it
    try:
        time.sleep(0.3)  # listening
        remote_write(url, "remote-notify")
        took = applied_within(service, "remote-notify", DEADLINE_S)
    finally:
        follower.stop()
    assert took is not None, "not applied within a second"
    assert service.recommender.similar("remote-notify", k=3).results


def test_without_a_listener_polling_applies_a_remote_write_within_a_second(node):
    service, url = node
    follower = Follower(service)
    follower.listener = PostgresDatabase("postgresql://nobody@127.0.0.1:1/none").listener("critic_changes")
    follower.start()
    try:
        remote_write(url, "remote-poll")
        took = applied_within(service, "remote-poll", DEADLINE_S)
    finally:
        follower.stop()
    assert took is not None, "not applied within a second by polling"


def test_repair_checks_the_shared_database_and_rebuilds_the_node_index(node):
    service, url = node
    store = ArtworkStore(url)
    broken, stale = store.ids()[:2]
    with store.db.transaction(lock="artworks") as db:
        db.execute("UPDATE artworks SET record = '{not json' WHERE id = ?", (broken,))
        db.execute("UPDATE artworks SET text_hash = 'stale' WHERE id = ?", (stale,))
    lines: list[str] = []
    report = repair(service.home, log=lines.append)
    assert report["dropped"] == 1 and report["restamped"] == 1, lines
    kept = Path(report["backup"]) / "artworks-unusable.jsonl"
    assert broken in kept.read_text()
    assert store.get(broken) is None and store.text_hashes()[stale] != "stale"
    assert report["indexed"] == report["artworks"] == store.count()
    latest, changed = store.changes_since(service.seq)
    assert {broken, stale} <= set(changed)  # through the feed: every other node drops and re-indexes them
