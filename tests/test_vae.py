import json

import numpy as np
import pytest
import torch

from critic.checkpoint import CONFIG, WEIGHTS, CheckpointError, load_checkpoint, save_checkpoint
from critic.labels import LabelVocab
from critic.records import Artwork
from critic.train import TrainConfig, decode_attributes, encode_latents, evaluate_vae, train_vae
from critic.vae import StyleVAE, VAEConfig


@pytest.fixture(scope="module")
def toy():
    """Two clusters of unit vectors whose period label follows the cluster; some labels missing."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 384))
    rows, records = [], []
    for i in range(200):
        c = i % 2
        rows.append(centres[c] + 0.6 * rng.normal(size=384))
        period = ["Baroque", "Gothic"][c] if i % 5 else ""
        records.append(Artwork(id=str(i), title="x", period=period, culture=["French", "Italian"][c],
                               keywords=["gold"] if c else ["ivory"]))
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), records


def test_training_lowers_the_loss(toy):
    x, records = toy
    model, vocab, history = train_vae(x, records, VAEConfig(latent_dim=8, hidden_dim=64),
                                      TrainConfig(epochs=12, batch_size=32, kl_warmup_epochs=3))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["recon"] < history[0]["recon"]
    metrics = evaluate_vae(model, vocab, x, records)
    assert metrics["attribute_accuracy"]["period"] > 0.9
    assert 0 < metrics["active_units"] <= 8


def test_missing_labels_are_masked(toy):
    x, records = toy
    vocab = LabelVocab.fit(records)
    labels, keywords = vocab.encode(records)
    assert (labels["period"] == -1).sum() == sum(1 for r in records if not r.period)
    model = StyleVAE(VAEConfig(latent_dim=8, hidden_dim=32, heads={"period": 2}))
    unlabelled = torch.full((4,), -1)
    parts = model.loss(torch.from_numpy(x[:4]), {"period": unlabelled})
    assert parts["attributes"].item() == 0.0 and torch.isfinite(parts["loss"])


def test_training_is_seeded(toy):
    x, records = toy
    small = VAEConfig(latent_dim=8, hidden_dim=32)
    first = train_vae(x, records, small, TrainConfig(epochs=2, batch_size=64, seed=3))[0]
    second = train_vae(x, records, small, TrainConfig(epochs=2, batch_size=64, seed=3))[0]
    assert np.array_equal(encode_latents(first, x), encode_latents(second, x))


def test_save_load_round_trip_gives_identical_outputs(tmp_path, toy):
    x, records = toy
    model, vocab, _ = train_vae(x, records, VAEConfig(latent_dim=8, hidden_dim=32), TrainConfig(epochs=2))
    save_checkpoint(tmp_path, model, vocab, {"embedding_model": "m", "data_hash": "h"})
    loaded, loaded_vocab, meta = load_checkpoint(tmp_path, expect={"embedding_model": "m"})
    assert meta["data_hash"] == "h" and loaded_vocab == vocab
    assert np.array_equal(encode_latents(model, x), encode_latents(loaded, x))
    z = encode_latents(model, x[:5])
    assert decode_attributes(model, vocab, z) == decode_attributes(loaded, loaded_vocab, z)


def test_mismatched_or_corrupt_checkpoint_is_refused(tmp_path, toy):
    x, records = toy
    model, vocab, _ = train_vae(x, records, VAEConfig(latent_dim=8, hidden_dim=32), TrainConfig(epochs=1))
    save_checkpoint(tmp_path, model, vocab, {"embedding_model": "m", "data_hash": "h"})
    with pytest.raises(CheckpointError, match="embedding_model"):
        load_checkpoint(tmp_path, expect={"embedding_model": "another-model"})

    meta = json.loads((tmp_path / CONFIG).read_text())
    meta["config"]["latent_dim"] = 16  # weights no longer fit the declared shape
    (tmp_path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="corrupt or incompatible"):
        load_checkpoint(tmp_path)

    save_checkpoint(tmp_path, model, vocab, {"embedding_model": "m"})
    data = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or incompatible"):
        load_checkpoint(tmp_path)

    with pytest.raises(CheckpointError, match="critic build"):
        load_checkpoint(tmp_path / "nowhere")
