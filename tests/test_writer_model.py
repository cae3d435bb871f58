"""The decoder: training lowers the loss, drafts are reproducible, grounded and slot-free, checkpoints load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_writer_support import LATENT_DIM, tiny_writer

from critic.writer import (
    DecoderDrafter,
    RetrievalDrafter,
    TemplateDrafter,
    WriterModelError,
    check_draft,
    load_writer,
)
from critic.writer.model import CONFIG_FILE, WEIGHTS_FILE, detokenize, tokenize
from critic.writer.slots import SLOT_RE, slot_values


@pytest.fixture(scope="module")
def tiny():
    return tiny_writer()


@pytest.fixture(scope="module")
def groundings(tiny):
    return tiny.grounder().ground_many(tiny.records[:6])


def test_training_lowers_the_validation_perplexity(tiny):
    history = tiny.metrics["history"]
    assert history[-1]["validation_perplexity"] < history[0]["validation_perplexity"]
    assert history[-1]["train_loss"] < np.log(tiny.metrics["vocab_size"])


def test_same_seed_same_text_other_seed_other_text(tiny, groundings):
    drafter = DecoderDrafter(tiny.model, tiny.embed, samples=4)
    g = groundings[0]
    assert drafter.sample_texts(g, seed=5) == drafter.sample_texts(g, seed=5)
    assert drafter.sample_texts(g, seed=5) != drafter.sample_texts(g, seed=6)
    assert drafter.draft(g, seed=5).text == drafter.draft(g, seed=5).text


def test_samples_are_slot_free_and_the_draft_score_is_its_cosine(tiny, groundings):
    drafter = DecoderDrafter(tiny.model, tiny.embed, samples=6, neighbours=3)
    for g in groundings:
        assert not any(SLOT_RE.search(text) for text in drafter.sample_texts(g, seed=1))
        draft = drafter.draft(g, seed=1)
        assert draft.text and not SLOT_RE.search(draft.text)
        assert draft.score == pytest.approx(float(tiny.embed([draft.text])[0] @ g.embedding), abs=1e-5)


def test_sampling_bans_other_works_facts(tiny, groundings):
    """The sampling-time half of the fact check: known tokens of other works are banned, the target's allowed."""
    drafter = DecoderDrafter(tiny.model, tiny.embed)
    g = groundings[0]
    vocab = tiny.model.config.vocab
    banned = drafter.banned_tokens(g.record, slot_values(g.record, tiny.model.lexicon))
    own = set(g.record.text().split())
    names = [i for i, t in enumerate(vocab) if t in tiny.model.lexicon.name_tokens]
    assert names and all(bool(banned[i]) == (vocab[i] not in own) for i in names)
    years = [i for i, t in enumerate(vocab) if t.isdigit() and len(t) == 4]
    assert all(bool(banned[i]) == (vocab[i] not in g.record.date_text) for i in years)
    # The flagged text the check itself would refuse, and the same text with the target's own facts.
    other = next(vocab[i] for i in names if banned[i])
    assert [v.kind for v in check_draft(f"It was made by {other}.", g.record, tiny.model.lexicon)] == ["name"]


def test_decoder_never_writes_another_records_facts(tiny, groundings):
    """Slots come from the target: sampled drafts hold none of the training neighbours' dates or names."""
    drafter = DecoderDrafter(tiny.model, tiny.embed, samples=8)
    g = groundings[2]
    values = slot_values(g.record, tiny.model.lexicon)
    banned = drafter.banned_tokens(g.record, values)
    vocab = tiny.model.config.vocab
    allowed_slots = {t for i, t in enumerate(vocab) if t.startswith("<") and not banned[i]}
    assert allowed_slots <= {f"<{s}>" for s in values} | {"<EOS>"}


def test_lead_opens_with_the_facts_and_the_body_follows(tiny, groundings):
    g = groundings[4]
    draft = DecoderDrafter(tiny.model, tiny.embed, samples=4, lead=True).draft(g, seed=2)
    assert draft.lead and draft.text.startswith(draft.lead) and g.record.title in draft.lead
    assert draft.text == f"{draft.lead} {draft.body}".strip()


def test_baselines_draft_too(tiny, groundings):
    g = groundings[1]
    retrieval = RetrievalDrafter(tiny.model.lexicon, tiny.embed).draft(g)
    assert retrieval.source.startswith("neighbour:") and not SLOT_RE.search(retrieval.text)
    template = TemplateDrafter(tiny.model.lexicon, tiny.embed).draft(g)
    assert g.record.title in template.text


def test_save_and_load_give_identical_drafts(tiny, groundings, tmp_path):
    tiny.model.save(tmp_path)
    loaded = load_writer(tmp_path, latent_dim=LATENT_DIM)
    g = groundings[3]
    before = DecoderDrafter(tiny.model, tiny.embed, samples=3).sample_texts(g, seed=9)
    after = DecoderDrafter(loaded, tiny.embed, samples=3).sample_texts(g, seed=9)
    assert before == after


def test_mismatched_or_corrupt_checkpoint_is_refused(tiny, tmp_path):
    with pytest.raises(WriterModelError, match="no writer checkpoint"):
        load_writer(tmp_path / "missing")
    tiny.model.save(tmp_path)
    with pytest.raises(WriterModelError, match="latent dim"):
        load_writer(tmp_path, latent_dim=LATENT_DIM + 1)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(WriterModelError, match="corrupt"):
        load_writer(tmp_path)
    tiny.model.save(tmp_path)
    payload = json.loads((tmp_path / CONFIG_FILE).read_text())
    payload["config"]["hidden_dim"] += 1
    (tmp_path / CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(WriterModelError, match="do not match"):
        load_writer(tmp_path)


def test_tokens_round_trip():
    text = 'Miller\'s "Bride" (ca. 1837), oil on canvas; it was shown in Paris.'
    assert detokenize(tokenize(text)) == text


def test_training_is_reproducible_for_a_seed(tiny):
    from test_writer_support import attributes_of

    from critic.writer.train import WriterTrainConfig, train_writer

    records = tiny.records[:60]
    latents = tiny.latents(tiny.embeddings[:60])
    config = WriterTrainConfig(epochs=1, embed_dim=16, cond_dim=8, hidden_dim=16, min_count=2, seed=3)
    first, _ = train_writer(records, latents, [attributes_of(r) for r in records], config=config)
    second, _ = train_writer(records, latents, [attributes_of(r) for r in records], config=config)
    assert first.weights.keys() == second.weights.keys()
    for name, array in first.weights.items():
        assert np.array_equal(array, second.weights[name]), name


def test_the_numpy_scores_are_the_torch_decoders(tiny, groundings):
    """Serving scores sentences in numpy (WriterModel.log_likelihood); training and sampling run the torch
    module. Both must give each sentence the same per-token log-likelihood."""
    from critic.writer.decoder import conditioning_inputs, padded, to_decoder

    model = tiny.model
    index = {t: i for i, t in enumerate(model.config.vocab)}
    texts = ["The <MATERIAL> bowl is gilded.", "It shows a saint.", "A portrait of <CREATOR> in oil, made in <DATE>."]
    rows = [[index["<BOS>"], *(index.get(t, index["<UNK>"]) for t in tokenize(s))] for s in texts]
    g = groundings[0]
    latents = np.repeat(np.asarray(g.latent, dtype=np.float32)[None, :], len(rows), 0)
    decoder = to_decoder(model.config, model.weights)
    with torch.no_grad():
        inputs = conditioning_inputs(model.config, latents, [g.attributes] * 3, [g.record.title] * 3)
        cond = decoder.conditioning(*inputs)
        ids = padded(rows)
        logits, _ = decoder.logits(ids[:, :-1], cond)
        logp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        mask = (ids[:, 1:] != 0).float()
        expected = ((logp * mask).sum(1) / mask.sum(1)).numpy()
    ours = model.conditioning(latents, [g.attributes] * 3, [g.record.title] * 3)
    assert np.allclose(ours, cond.numpy(), atol=1e-5)
    assert np.allclose(model.log_likelihood(rows, ours), expected, atol=1e-4)
