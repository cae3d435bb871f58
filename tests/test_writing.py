"""The writing service on a real build: bounded caches, no growth of the persistent embedding cache, and a
lexicon that learns creators added after the start."""

from __future__ import annotations

import sqlite3

import pytest

from api.testing import copy_home
from critic.records import Artwork
from critic.service import Service
from critic.writer import artwork_from_text
from critic.writing import Writing


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("writing") / "home"), log=lambda _: None)


@pytest.fixture(scope="module")
def writing(service):
    return Writing(service, cache_size=5)


def rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]


def test_drafting_leaves_the_embedding_cache_unchanged(service, writing):
    undescribed = next(r for r in service.store.all() if not r.description.strip())
    new = artwork_from_text("A small gilt bronze horse, rearing.", {"title": "Rearing Horse", "medium": "gilt bronze"})
    before = rows(service.home.cache_path)
    for seed in range(100):
        writing.critique(undescribed, "label", seed)
    writing.critique(new, "critique", 1)
    writing.describe(new, 2)
    assert writing.critique(undescribed, "label", 3).evidence["description"]["source"] == "draft"
    assert rows(service.home.cache_path) == before


def test_the_critique_cache_stays_within_its_bound(service, writing):
    service.home.critiques_path.unlink(missing_ok=True)
    records = service.store.all()[:12]
    for record in records:
        writing.critique(record, "label", 0)
    assert writing.cached() == 5
    # Looking for pre-generated critiques before any were written creates no file for them.
    assert writing.pregenerated is None and not service.home.critiques_path.exists()
    again = writing.critique(records[-1], "label", 0)
    assert writing.cached() == 5 and again.to_json() == writing.critique(records[-1], "label", 0).to_json()


def test_the_lexicon_learns_creators_added_later(service, writing):
    assert "Quetzalmorphini" not in writing.lexicon.name_tokens
    added = Artwork(id="added-1", title="Panel", creators=["Ugo Quetzalmorphini (Italian, 1501-1570)"],
                    medium="oil on panel", date_text="1540", year_start=1540, year_end=1540)  # fmt: skip
    service.upsert([added])
    writing.refresh(wait=True)
    assert "Quetzalmorphini" in writing.lexicon.name_tokens
    critique = writing.critique(added, "critique", 0)
    assert "Ugo Quetzalmorphini" in critique.text
