"""The service's drafter: neighbours' sentences refilled, decoder samples and ranking, the fact check and the
fluency gate on every candidate, the template when nothing passes."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from test_writer_support import tiny_writer

from critic.writer import SentenceDrafter, build_lexicon, check_draft
from critic.writer.edit import DANGLING, Candidate, subject_words
from critic.writer.fluency import curator_sentences, fit_fluency
from critic.writer.slots import SLOT_RE, sentences


@pytest.fixture(scope="module")
def tiny():
    return tiny_writer()


@pytest.fixture(scope="module")
def lexicon(tiny):
    return build_lexicon(tiny.records)


@pytest.fixture(scope="module")
def gate(tiny, lexicon):
    return fit_fluency(tiny.records[:150], tiny.records[150:], lexicon)


@pytest.fixture(scope="module")
def hidden(tiny):
    """An artwork drafted for as if it had no description, grounded in the others."""
    return tiny.grounder().ground(replace(tiny.records[7], description=""), k=8)


def garbled(sentence: str, seed: int = 0) -> str:
    """A fluent sentence with its words shuffled: what a broken decoder sample reads like."""
    words = sentence.rstrip(".").split()
    random.Random(seed).shuffle(words)
    return " ".join(words).capitalize() + "."


def plain_sentence(tiny, lexicon, grounding) -> str:
    """A held-out curator sentence the target could carry: no slot, no pronoun opening, no fact of another work."""
    return next(
        s
        for s in curator_sentences(tiny.records[150:], lexicon)
        if not SLOT_RE.search(s) and len(s.split()) > 8 and not DANGLING.match(s)
        and not check_draft(s, grounding.record, lexicon)
    )


def test_an_injected_garbled_candidate_is_rejected_and_a_fluent_one_kept(tiny, lexicon, gate, hidden):
    drafter = SentenceDrafter(None, tiny.embed, lexicon, gate)
    fluent = plain_sentence(tiny, lexicon, hidden)
    broken = garbled(fluent)
    assert gate.fluent(fluent) and not gate.fluent(broken)
    chosen, unfactual, unfluent = drafter.choose(
        [Candidate(broken, broken, "decoder"), Candidate(fluent, fluent, "neighbour:x")], hidden
    )
    assert [c.text for c in chosen] == [fluent] and unfluent == 1


def test_only_garbled_candidates_fall_back_to_the_template(tiny, lexicon, gate, hidden, monkeypatch):
    drafter = SentenceDrafter(None, tiny.embed, lexicon, gate)
    broken = garbled(next(s for s in curator_sentences(tiny.records[150:], lexicon) if len(s.split()) > 8))
    monkeypatch.setattr(drafter, "candidates", lambda grounding, seed: [Candidate(broken, broken, "decoder")])
    draft = drafter.draft(hidden, seed=0)
    assert draft.source == "template" and draft.unfluent == 1 and hidden.record.title in draft.text
    assert draft.evidence()["rejected_by_fluency_gate"] == 1


def test_drafts_are_neighbour_sentences_refilled_and_cited(tiny, lexicon, gate, hidden):
    draft = SentenceDrafter(None, tiny.embed, lexicon, gate).draft(hidden, seed=0)
    cited = draft.source.split("+")
    neighbour_ids = {n.record.id for n in hidden.neighbours}
    assert all(c.startswith("neighbour:") and c.split(":")[1] in neighbour_ids for c in cited)
    assert not SLOT_RE.search(draft.text) and 1 <= len(sentences(draft.text)) <= 3
    assert draft.score == pytest.approx(float(tiny.embed([draft.text])[0] @ hidden.embedding), abs=1e-5)


def test_the_decoder_ranks_and_samples(tiny, lexicon, gate, hidden):
    ranked = SentenceDrafter(tiny.model, tiny.embed, lexicon, gate, decoder_weight=0.1)
    sampling = SentenceDrafter(tiny.model, tiny.embed, lexicon, gate, samples=6, decoder_weight=0.1)
    assert (ranked.name, sampling.name) == ("edit+decoder-rank", "edit+decoder-rank+decoder")
    templates = ["This <MATERIAL> bowl is decorated.", "Bowl the is this decorated."]
    preference = ranked.decoder.preference(hidden, templates)
    assert preference.shape == (2,)
    # The same sentence is favoured the same way whatever it is batched with.
    assert ranked.decoder.preference(hidden, templates[:1])[0] == pytest.approx(preference[0], abs=1e-4)
    pool = sampling.candidates(hidden, seed=3)
    assert any(c.source == "decoder" for c in pool)
    assert sampling.draft(hidden, seed=3).text == sampling.draft(hidden, seed=3).text


def test_every_kept_sentence_passed_the_fact_check(tiny, lexicon, gate, hidden):
    """Candidates the fact check rejects are counted and never kept: a sentence naming another creator."""
    drafter = SentenceDrafter(None, tiny.embed, lexicon, gate)
    other = next(t for t in sorted(lexicon.name_tokens) if t not in hidden.record.text())
    bad = f"The work was painted by {other} in the same years."
    chosen, unfactual, _ = drafter.choose([Candidate(bad, bad, "neighbour:x")], hidden)
    assert chosen == [] and unfactual == 1 and check_draft(bad, hidden.record, lexicon)


def test_a_neighbours_own_subject_is_not_carried_over():
    from critic.records import Artwork

    amphora = Artwork(id="1", title="Black-figure Amphora Depicting Satyrs and Maenads")
    lekythos = Artwork(id="2", title="Three Amazons", medium="terracotta", object_type="lekythoi")
    assert subject_words(amphora, lekythos) == {"black-figure", "amphora", "depicting", "satyr", "maenad"}


def test_a_neighbours_particular_words_do_not_transfer_but_common_ones_do():
    from critic.writer.fluency import NgramModel

    common = ["The decoration is typical of the workshop.", "It reaches for the light."] * 30
    gate = NgramModel.fit([*common, "The cook reaches for the roosters offered by the tradesman."])
    drafter = SentenceDrafter(None, lambda texts: None, build_lexicon([]), gate, min_word_rate=1_000)
    bowl = {"bowl", "decoration"}
    assert drafter._particular_words("The decoration is typical of the workshop.", bowl) == []
    assert drafter._particular_words("The cook reaches for the roosters.", bowl) == ["cook", "roosters"]
    # What the target's own record says may be repeated, however rare.
    assert drafter._particular_words("The cook reaches for the roosters.", bowl | {"cook", "roosters"}) == []
    # A slot is refilled with the target's own facts, whatever its name.
    assert drafter._particular_words("The <CREATOR> cook reaches for the <OBJECT_TYPE>.", bowl) == ["cook"]
