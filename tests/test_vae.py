import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from critic.labels import LabelVocab
from critic.lexical import LexicalProjector
from critic.records import Artwork
from critic.style_model import (
    CONFIG,
    DATE_CENTRES,
    DATE_DIMS,
    INDEX_LATENT_WEIGHT,
    WEIGHTS,
    StyleModel,
    StyleModelError,
    date_features,
    load_style_model,
    mix_vectors,
    save_style_model,
    style_inputs,
)
from critic.train import TrainConfig, evaluate_vae, index_mix, inference_encoder, train_vae
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
                                      TrainConfig(epochs=30, batch_size=32, kl_warmup_epochs=3, min_steps=0))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["recon"] < history[0]["recon"]
    metrics = evaluate_vae(model, vocab, x, records)
    assert metrics["attribute_accuracy"]["period"] > 0.9
    assert metrics["elbo"] == pytest.approx(-(metrics["recon"] + metrics["kl"]))
    # Identical inputs give identical posterior means: no latent dimension varies, so none is active.
    same = evaluate_vae(model, vocab, np.repeat(x[:1], 20, axis=0), [records[0]] * 20)
    assert same["active_units"] == 0
    # The period heads read the latent and separate the two clusters, so at least that direction varies.
    assert metrics["active_units"] >= 1


def test_missing_labels_are_masked(toy):
    x, records = toy
    vocab = LabelVocab.fit(records)
    labels, keywords = vocab.encode(records)
    assert (labels["period"] == -1).sum() == sum(1 for r in records if not r.period)
    model = StyleVAE(VAEConfig(input_dim=384, latent_dim=8, hidden_dim=32, heads={"period": 2}))
    unlabelled = torch.full((4,), -1)
    parts = model.loss(torch.from_numpy(x[:4]), {"period": unlabelled})
    assert parts["attributes"].item() == 0.0 and torch.isfinite(parts["loss"])


def test_training_is_seeded(toy):
    x, records = toy
    small = VAEConfig(latent_dim=8, hidden_dim=32)
    first = train_vae(x, records, small, TrainConfig(epochs=2, batch_size=64, seed=3, min_steps=0))[0]
    second = train_vae(x, records, small, TrainConfig(epochs=2, batch_size=64, seed=3, min_steps=0))[0]
    assert np.array_equal(inference_encoder(first).encode(x), inference_encoder(second).encode(x))


TEXTS = [f"a {['gilt', 'bronze', 'ivory', 'silver'][n % 4]} {['clock', 'vase', 'comb'][n % 3]} by workshop {n}"
         for n in range(200)]


def described(records):
    """The toy records with a text each and a date, as the style model reads records."""
    return [replace(r, description=t, year_start=1400 + i, year_end=1410 + i)
            for i, (r, t) in enumerate(zip(records, TEXTS, strict=True))]


def toy_style(x, records, epochs=2):
    records = described(records)
    lexical = LexicalProjector.fit(TEXTS, dims=4)
    inputs = style_inputs(x, lexical.transform(TEXTS), date_features(records))
    config = VAEConfig(latent_dim=8, hidden_dim=32)
    model, vocab, _ = train_vae(inputs, records, config, TrainConfig(epochs=epochs, min_steps=0))
    encoder = inference_encoder(model)
    center = encoder.encode(inputs).mean(0).tolist()
    meta = {"embedding_model": "m", "data_hash": "h", "latent_center": center, "index": index_mix(vocab, records)}
    return StyleModel(encoder, vocab, lexical, meta)


def test_save_load_round_trip_gives_identical_outputs(tmp_path, toy):
    x, records = toy
    style = toy_style(x, records)
    save_style_model(tmp_path, style)
    loaded = load_style_model(tmp_path, expect={"embedding_model": "m"})
    assert loaded.meta["data_hash"] == "h" and loaded.vocab == style.vocab
    records = described(records)
    assert np.array_equal(style.latents(x, records), loaded.latents(x, records))
    z = style.latents(x[:5], records[:5])
    assert style.attributes(z) == loaded.attributes(z)
    assert np.array_equal(style.index_vectors(x, records), loaded.index_vectors(x, records))
    vectors = loaded.index_vectors(x, records)
    assert vectors.shape == (200, style.index_dim) == (200, 8 + 384 + 4 + DATE_DIMS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_index_vectors_mix_latent_and_input_cosines_by_the_latent_weight():
    latent = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    inputs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    mixed = mix_vectors(latent, inputs, 0.6)
    # cosine = w^2 * latent cosine (0 here) + (1 - w^2) * input cosine (1 here)
    assert float(mixed[0] @ mixed[1]) == pytest.approx(1 - 0.36)
    assert np.allclose(mix_vectors(latent, inputs, 1.0)[:, 2:], 0.0)


def test_date_features_peak_at_the_mid_year_and_are_zero_without_a_date():
    rows = date_features([Artwork(id="a", year_start=-500), Artwork(id="b", year_start=1890, year_end=1910),
                          Artwork(id="c")])
    assert DATE_CENTRES[rows[0].argmax()] == -500 and DATE_CENTRES[rows[1].argmax()] == 1900
    assert np.allclose(np.linalg.norm(rows[:2], axis=1), 1.0) and not rows[2].any()
    near, far = date_features([Artwork(id="d", year_start=1920), Artwork(id="e", year_start=1300)])
    assert rows[1] @ near > 0.9 > 0.1 > rows[1] @ far


def test_a_catalogue_without_an_informative_label_indexes_its_input(toy):
    _, records = toy
    vocab = LabelVocab.fit(records)
    assert index_mix(vocab, records)["learned"] == ["period", "culture", "keywords"]
    # One classification for nearly everything, no other label, no keywords: nothing for the latent to add.
    trivial = [Artwork(id=str(i), title="x", classification="Painting" if i % 50 else "Print") for i in range(200)]
    mix = index_mix(LabelVocab.fit(trivial), trivial)
    assert mix == {"learned": []}
    style = toy_style(*toy)
    assert style.latent_weight == INDEX_LATENT_WEIGHT and "latent and input mixed" in style.index_reason
    style.meta["index"] = mix
    assert style.latent_weight == 0.0 and style.index_identity["latent_weight"] == 0.0
    assert "no informative label" in style.index_reason
    # Object types and keywords alone: the latent is trained, but the index holds the input (chosen on validation).
    style.meta["index"] = {"learned": ["object_type", "keywords"]}
    assert style.latent_weight == 0.0 and "learned only object_type, keywords" in style.index_reason


def test_mismatched_or_corrupt_checkpoint_is_refused(tmp_path, toy):
    x, records = toy
    style = toy_style(x, records, epochs=1)
    save_style_model(tmp_path, style)
    with pytest.raises(StyleModelError, match="embedding_model"):
        load_style_model(tmp_path, expect={"embedding_model": "another-model"})

    meta = json.loads((tmp_path / CONFIG).read_text())
    meta["config"]["latent_dim"] = 16  # weights no longer fit the declared shape
    (tmp_path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(StyleModelError, match="corrupt or incompatible"):
        load_style_model(tmp_path)

    save_style_model(tmp_path, style)
    data = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(StyleModelError, match="corrupt or incompatible"):
        load_style_model(tmp_path)

    with pytest.raises(StyleModelError, match="critic build"):
        load_style_model(tmp_path / "nowhere")


def test_principal_shortcut_adds_the_training_inputs_principal_projection(toy):
    x, records = toy
    model, _, _ = train_vae(x, records, VAEConfig(latent_dim=8, hidden_dim=32),
                            TrainConfig(epochs=1, batch_size=64, min_steps=0))
    axes = model.principal_axes.numpy()
    assert np.allclose(axes.T @ axes, np.eye(8), atol=1e-4)  # orthonormal directions
    centred = x - x.mean(0)
    projected = centred @ axes
    # Principal directions keep more of the variance than a random orthonormal 8-d projection.
    random_axes = np.linalg.qr(np.random.default_rng(0).normal(size=(384, 8)))[0]
    assert (projected**2).sum() > ((centred @ random_axes) ** 2).sum()
    with torch.no_grad():
        model.to_mu.weight.zero_()
        model.to_mu.bias.zero_()
    assert np.allclose(inference_encoder(model).encode(x), model.config.principal_shortcut * projected, atol=1e-4)


def test_the_numpy_encoder_computes_what_the_trained_torch_model_does(toy):
    x, records = toy
    model, _, _ = train_vae(x, records, VAEConfig(latent_dim=8, hidden_dim=32),
                            TrainConfig(epochs=2, batch_size=64, min_steps=0))
    encoder = inference_encoder(model)
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(x))
        logits = model.attribute_logits(mu)
    assert np.allclose(encoder.encode(x), mu.numpy(), atol=1e-5)
    for name, expected in logits.items():
        assert np.allclose(encoder.attribute_logits(mu.numpy())[name], expected.numpy(), atol=1e-5), name
    probabilities = encoder.attribute_probabilities(mu.numpy())
    assert np.allclose(probabilities["period"], logits["period"].softmax(-1).numpy(), atol=1e-6)
    assert np.allclose(probabilities["keywords"], logits["keywords"].sigmoid().numpy(), atol=1e-6)
