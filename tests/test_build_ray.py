"""`critic build --engine ray` on a real 2-node Ray cluster (ray.cluster_utils.Cluster, on this machine): it gives the
single-process build's latents and neighbours, survives a killed worker, and a rerun redoes only missing shards.

The single-process reference build starts from a copy of the Ray build's embedding cache, as a rebuild would, so
the slice is embedded once (2 shared cores); the Ray embeddings themselves are checked against the single-process
encoder on a sample."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from critic.build import build  # noqa: E402
from critic.build_parity import (  # noqa: E402
    copy_embedding_cache,
    cosines,
    embeddings_beside_the_encoder,
    model_latents,
    neighbour_overlap,
    shard_latents,
)
from critic.build_ray import EMBED, ENCODE, RayEngine, sampled_ids  # noqa: E402
from critic.cli import main  # noqa: E402
from critic.home import Home  # noqa: E402
from critic.split import Split  # noqa: E402
from critic.train import TrainConfig  # noqa: E402
from critic.vae import VAEConfig  # noqa: E402
from index.store import VectorIndex  # noqa: E402

SLICE = 2000
SHARD = 250
# Parity, not quality, is under test: a small VAE and 120 optimiser steps keep both trainings to seconds.
VAE = VAEConfig(hidden_dim=256, latent_dim=32)
TRAIN = TrainConfig(epochs=20, kl_warmup_epochs=5, min_steps=100)
NODE = {"num_cpus": 1, "object_store_memory": 150 * 1024**2}


def quiet(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


@pytest.fixture(scope="module")
def single_home(tmp_path_factory, ray_build) -> Home:
    home = Home(tmp_path_factory.mktemp("single"))
    copy_embedding_cache(ray_build[0], home)
    info = build(home, limit=SLICE, vae_config=VAE, train_config=TRAIN, writer=False, progress=False, log=quiet)
    assert info["newly_embedded"] == 0
    return home


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node, one CPU each, no dashboard; each build joins it by its address, as
    `critic build --engine ray --address` does."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # the nodes inherit it
    nodes = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    nodes.add_node(**NODE)
    yield nodes
    nodes.shutdown()


def embed_actor_pids() -> list[int]:
    """Processes of this machine's Ray embed actors (Ray titles them after the class they run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"EmbedActor" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:  # the process ended while we looked
                continue
    return pids


@pytest.fixture(scope="module")
def ray_build(tmp_path_factory, cluster):
    """The same slice built on the cluster, one embed actor killed (SIGKILL) while the embed stage runs."""
    home = Home(tmp_path_factory.mktemp("ray"))
    killed: dict = {}

    def kill_one_worker() -> None:
        # Once the first batch is written (the encoders are loaded) the two actors are embedding the next ones.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            written = len(list((home.shards_dir / EMBED).glob("part-*.parquet")))
            pids = embed_actor_pids()
            if written and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.update(pid=pids[0], shards_written=written)
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    info = build(home, limit=SLICE, vae_config=VAE, train_config=TRAIN, writer=False, progress=False, log=quiet,
                 engine=RayEngine(cluster.address, shard_size=SHARD))
    killer.join(timeout=1)
    return home, info, killed


@pytest.mark.slow
def test_a_killed_worker_does_not_stop_the_build(ray_build):
    home, info, killed = ray_build
    assert killed, "no embed actor was seen to kill"
    assert killed["shards_written"] < SLICE // SHARD, "the worker was killed after the embed stage finished"
    assert info["engine"]["workers"] == 2 and info["artworks"] == SLICE
    assert info["engine"]["shards"][EMBED] == {"total": SLICE // SHARD, "computed": SLICE // SHARD}
    assert len(VectorIndex.load(home.index_dir)) == SLICE


@pytest.mark.slow
def test_embeddings_match_the_single_process_encoder(ray_build):
    ours, expected = embeddings_beside_the_encoder(ray_build[0], 100)
    assert np.allclose(ours, expected, atol=1e-6)


@pytest.mark.slow
def test_latents_match_the_single_process_build(ray_build, single_home):
    ray_latents, single = shard_latents(ray_build[0]), model_latents(single_home)
    assert ray_latents.keys() == single.keys()
    assert cosines(single, ray_latents).min() >= 0.999


@pytest.mark.slow
def test_top_ten_neighbours_match(ray_build, single_home):
    ours, theirs = VectorIndex.load(ray_build[0].index_dir), VectorIndex.load(single_home.index_dir)
    overlap = neighbour_overlap(ours, theirs, random.Random(0).sample(theirs.ids(), 200))
    assert overlap.mean() >= 0.99 and overlap.min() >= 0.8


@pytest.mark.slow
def test_a_rerun_redoes_only_the_missing_shards(ray_build, cluster):
    home, first, _ = ray_build
    sorted((home.shards_dir / EMBED).glob("part-*.parquet"))[2].unlink()  # as if the run had stopped there
    before = VectorIndex.load(home.index_dir)
    info = build(home, limit=SLICE, vae_config=VAE, train_config=TRAIN, writer=False, progress=False, log=quiet,
                 engine=RayEngine(cluster.address, shard_size=SHARD))
    # The re-embedded shard has the same input, so its encode shard, already written, stays.
    assert info["engine"]["shards"] == {EMBED: {"total": 8, "computed": 1}, ENCODE: {"total": 8, "computed": 0}}
    assert info["newly_embedded"] == SHARD and info["vae"]["data_hash"] == first["vae"]["data_hash"]
    after = VectorIndex.load(home.index_dir)
    assert after.ids() == before.ids()
    assert np.allclose(after.vectors(after.ids()), before.vectors(before.ids()), atol=1e-5)


def test_sampled_ids_bound_each_side_and_are_seeded():
    split = Split([f"f{i}" for i in range(50)], [f"v{i}" for i in range(5)], [f"t{i}" for i in range(30)])
    chosen = sampled_ids(split, 10)
    assert len(chosen) == 25 and {f"v{i}" for i in range(5)} <= chosen
    assert chosen == sampled_ids(split, 10) and sampled_ids(split, 100) == {*split.fit, *split.validation, *split.test}


@pytest.mark.parametrize("option", [["--address", "ray://nowhere:10001"], ["--workers", "2"]])
def test_the_cli_refuses_ray_options_without_the_ray_engine(capsys, option):
    assert main(["build", *option]) == 2
    assert f"{option[0]} needs --engine ray" in capsys.readouterr().err
