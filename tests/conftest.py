"""Session fixtures: one small real build (a slice of the bundled collection) shared by the whole suite."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The ONNX export of the embedder (critic.embed.model_cache_dir) is made once per test run, here, and shared by
# every test and subprocess instead of touching the user's cache.
os.environ.setdefault("CRITIC_MODEL_CACHE", tempfile.mkdtemp(prefix="critic-models-"))

SLICE = 300  # records: enough for every code path, small enough to embed in seconds


@pytest.fixture(scope="session")
def walters_slice():
    from critic.corpus import load_walters

    return load_walters(limit=SLICE)


@pytest.fixture(scope="session")
def writer_config():
    """A small description writer: the same code path as the default, trained in seconds."""
    from critic.writer.train import WriterTrainConfig

    return WriterTrainConfig(epochs=3, embed_dim=64, cond_dim=32, hidden_dim=96)


@pytest.fixture(scope="session")
def train_config():
    """The style VAE's default schedule with 500 optimiser steps instead of 1,500: on 210 fit records the VAE
    training was 51 of the build's 70 s, the longest part of the quick test loop."""
    from critic.train import TrainConfig

    return TrainConfig(min_steps=500)


@pytest.fixture(scope="session")
def built_home(tmp_path_factory, walters_slice, writer_config, train_config):
    """A home built from the first SLICE Walters records, as `critic build --limit SLICE` makes it."""
    from critic.build import build
    from critic.home import Home

    home = Home(tmp_path_factory.mktemp("home"))
    build(home, limit=SLICE, train_config=train_config, writer_config=writer_config, progress=False, log=lambda _: None)
    return home


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole run, started only when a test asks for it; each test module
    takes a database of its own (``postgres.database(name)``)."""
    from api.testing import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()
