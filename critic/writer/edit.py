"""The service's drafter: sentence-level retrieve-and-edit plus decoder samples, each behind two gates.

Candidates are single sentences: the delexicalised curator sentences of the nearest described works
(refilled with the target's own facts) and sentences the VAE-conditioned decoder samples for the target.
Every candidate must pass the fact check (critic.writer.factcheck, after its slots are filled) and the
fluency gate (critic.writer.fluency, on its delexicalised form); what passes is ranked by its closeness to the
artwork's own embedding, and up to ``max_sentences`` non-redundant sentences are kept. When none passes, the
metadata template stands in, so no garbled sentence ever reaches a reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from critic.records import Artwork
from critic.writer.drafter import DecoderDrafter, Draft, Drafter, Embedder, Grounding, template_draft
from critic.writer.factcheck import check_draft, record_words
from critic.writer.fluency import NgramModel
from critic.writer.lexicon import Lexicon, singular, words
from critic.writer.model import WriterModel
from critic.writer.slots import SLOT_RE, delexicalise, fill, sentences, slot_values, unfilled_slots

#: A neighbour's sentence transfers to the target only if every word of it that the target's record does not use
#: occurs at least this often (per 10,000 of the fit side's curator sentences): "the decoration is typical of the
#: workshop" transfers, "the cook reaches for the roosters" (the neighbour's own scene) does not. Chosen on the
#: validation side with `python bench/transfer_rule.py` (docs/results.md); a rate, so that it means the same in
#: a catalogue of another size.
MIN_WORD_RATE = 7.0

# A first sentence that opens with a pronoun or "both" refers to something a reader has not been told.
DANGLING = re.compile(r"^(?:He|She|They|These|Those|Both|Its|His|Her|Their|Another|The other)\b")


def subject_words(neighbour: Artwork, target: Artwork) -> set[str]:
    """Words of the neighbour's title that the target's record never uses: its own subject ("satyr" and
    "maenad" of "Amphora Depicting Satyrs and Maenads"), which a sentence must not carry over to the target.

    Example:
        >>> sorted(subject_words(Artwork(id="1", title="Amphora Depicting Satyrs"), Artwork(id="2", title="Amphora")))
        ['depicting', 'satyr']
    """
    own = {singular(w) for w in record_words(target)}
    return {singular(w) for w in words(neighbour.title) if len(w) > 3} - own


@dataclass(frozen=True)
class Candidate:
    """One candidate sentence: its delexicalised form, its text for the target, where it came from."""

    template: str
    text: str
    source: str  # "decoder" or "neighbour:<id>"


class SentenceDrafter:
    """Drafts 1-3 sentences from the neighbours' curator sentences and, with ``samples``, the decoder's own
    samples; with ``decoder_weight`` the VAE-conditioned decoder also ranks them (``DecoderDrafter.preference``:
    how much this artwork's latent favours a sentence over a blank conditioning).

    Example (with a trained model, an embedder, a lexicon and a calibrated NgramModel):
        SentenceDrafter(model, embed, lexicon, fluency).draft(grounding, seed=0).text
    """

    def __init__(
        self,
        model: WriterModel | None,
        embed: Embedder,
        lexicon: Lexicon,
        fluency: NgramModel,
        samples: int = 0,
        decoder_weight: float = 0.0,
        neighbours: int = 6,
        max_sentences: int = 3,
        max_words: int = 70,
        redundancy: float = 0.85,
        min_word_rate: float = MIN_WORD_RATE,
    ):
        if model is None and (samples or decoder_weight):
            raise ValueError("decoder samples or decoder ranking need a trained writer model")
        self.decoder = None if model is None else DecoderDrafter(model, embed, samples=samples or 1, lexicon=lexicon)
        self.samples = samples
        self.decoder_weight = decoder_weight
        self.name = "edit" + ("+decoder-rank" if decoder_weight else "") + ("+decoder" if samples else "")
        self.embed = embed
        self.lexicon = lexicon
        self.fluency = fluency
        self.neighbours = neighbours
        self.max_sentences = max_sentences
        self.max_words = max_words
        self.redundancy = redundancy
        self.min_word_rate = min_word_rate

    def candidates(self, grounding: Grounding, seed: int) -> list[Candidate]:
        """Every candidate sentence the target can fill, before the gates."""
        values = slot_values(grounding.record, self.lexicon)
        own = set(record_words(grounding.record))
        own_lower = {w.lower() for w in own}
        pool: list[Candidate] = []
        for n in grounding.neighbours[: self.neighbours]:
            if n.record.description.strip():
                foreign = subject_words(n.record, grounding.record)
                for s in sentences(delexicalise(n.record.description, n.record, self.lexicon)):
                    if (
                        not foreign & {singular(w) for w in words(s)}
                        and not self._foreign_names(s, own)
                        and not self._particular_words(s, own_lower)
                    ):
                        pool.append(Candidate(s, fill(s, values), f"neighbour:{n.record.id}"))
        if self.samples:
            for text in self.decoder.sample_delexicalised(grounding, seed):
                pool.extend(Candidate(s, fill(s, values), "decoder") for s in sentences(text))
        fillable = [c for c in pool if not unfilled_slots(c.text) and 4 <= len(c.text.split()) <= 45]
        return list({c.text: c for c in fillable}.values())

    @staticmethod
    def _foreign_names(template: str, own: set[str]) -> list[str]:
        """Capitalised words inside a neighbour's sentence (not its first word, not a slot) that the target's
        record does not contain: a collector, a place, a saint of the neighbour's own story."""
        found = []
        for sentence in sentences(template):
            found += [w for w in words(sentence)[1:] if w[0].isupper() and w not in own]
        return found

    def _particular_words(self, template: str, own_lower: set[str]) -> list[str]:
        """Words of a neighbour's sentence that are particular to the neighbour: rare in the curators' sentences
        (fewer than ``min_word_rate`` per 10,000 sentences) and absent from the target's record."""
        return [
            w for w in words(SLOT_RE.sub(" ", template))  # a slot is filled with the target's own facts
            if w.lower() not in own_lower and self.fluency.frequency(w) < self.min_word_rate
        ]  # fmt: skip

    def passes(self, candidate: Candidate, grounding: Grounding) -> tuple[bool, bool]:
        """(passes the fact check, passes the fluency gate) for one candidate."""
        factual = not check_draft(candidate.text, grounding.record, self.lexicon)
        return factual, self.fluency.fluent(candidate.template)

    def choose(self, candidates: list[Candidate], grounding: Grounding) -> tuple[list[Candidate], int, int]:
        """The kept sentences in reading order, and how many candidates each gate rejected."""
        kept, unfactual, unfluent = [], 0, 0
        for c in candidates:
            factual, fluent = self.passes(c, grounding)
            unfactual += not factual
            unfluent += factual and not fluent
            if factual and fluent and c.text[:1].isupper() and c.text[-1:] in ".!?":
                kept.append(c)
        if not kept:
            return [], unfactual, unfluent
        vectors = self.embed([c.text for c in kept])
        scores = vectors @ np.asarray(grounding.embedding, dtype=np.float32)
        if self.decoder_weight:
            scores = scores + self.decoder_weight * self.decoder.preference(grounding, [c.template for c in kept])
        order = np.argsort(-scores, kind="stable")
        chosen: list[int] = []
        words = 0
        for i in order:
            length = len(kept[i].text.split())
            if words + length > self.max_words or (not chosen and DANGLING.match(kept[i].text)):
                continue
            if any(float(vectors[i] @ vectors[j]) > self.redundancy for j in chosen):
                continue
            chosen.append(int(i))
            words += length
            if len(chosen) == self.max_sentences:
                break
        return [kept[i] for i in chosen], unfactual, unfluent

    def draft(self, grounding: Grounding, seed: int = 0) -> Draft:
        candidates = self.candidates(grounding, seed)
        chosen, unfactual, unfluent = self.choose(candidates, grounding)
        if not chosen:
            fallback = template_draft(grounding, self.lexicon, self.embed, self.name)
            fallback.candidates, fallback.rejected, fallback.unfluent = len(candidates), unfactual, unfluent
            return fallback
        text = " ".join(c.text for c in chosen)
        score = float(self.embed([text])[0] @ np.asarray(grounding.embedding, dtype=np.float32))
        source = "+".join(dict.fromkeys(c.source for c in chosen))
        values = slot_values(grounding.record, self.lexicon)
        return Draft(text, self.name, source, score, len(candidates), unfactual, values, unfluent=unfluent)


#: The service's drafter, chosen on the validation side by ``critic eval writer`` (README, "Writer").
DEFAULT_DRAFTER = "edit+decoder-rank"


def default_drafter(model: WriterModel | None, embed: Embedder, lexicon: Lexicon, fluency: NgramModel) -> Drafter:
    """The service's drafter; without a trained writer (None), retrieve-and-edit ranked by similarity alone.
    Give it the whole collection's lexicon, so the fact check knows every creator's name."""
    if model is None:
        return SentenceDrafter(None, embed, lexicon, fluency)
    return SentenceDrafter(model, embed, lexicon, fluency, decoder_weight=0.1)
