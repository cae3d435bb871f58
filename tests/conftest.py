"""Session fixtures: one small real build (a slice of the bundled collection) shared by the whole suite."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SLICE = 300  # records: enough for every code path, small enough to embed in seconds


@pytest.fixture(scope="session")
def walters_slice():
    from critic.corpus import load_walters

    return load_walters(limit=SLICE)


@pytest.fixture(scope="session")
def built_home(tmp_path_factory, walters_slice):
    """A home built from the first SLICE Walters records, as `critic build --limit SLICE` makes it."""
    from critic.build import build
    from critic.home import Home

    home = Home(tmp_path_factory.mktemp("home"))
    build(home, limit=SLICE, progress=False, log=lambda _: None)
    return home
