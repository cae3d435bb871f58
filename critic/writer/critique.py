"""Structured critiques: facts, a drafted description, style and technique, comparisons, an assessment.

Only the description is drafted by a model (and fact-checked); every other sentence is assembled from the
record's fields, the attributes the style model decodes from its latent, and what it shares with its
nearest neighbours, so each claim can be traced to the evidence listed with the result.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from critic.labels import label_of
from critic.records import LABEL_FIELDS, Artwork
from critic.writer.drafter import Draft, Drafter, Grounding, Neighbour, template_description
from critic.writer.factcheck import check_draft
from critic.writer.inputs import check_seed, check_tone
from critic.writer.lexicon import Lexicon, singular, words
from critic.writer.slots import sentences, slot_values

WORD_LIMITS = {"label": 80, "critique": 250, "scholarly": 400}
NEIGHBOURS_SHOWN = {"label": 0, "critique": 3, "scholarly": 3}
_LABEL_NAMES = {
    "period": "period",
    "style": "style",
    "culture": "culture",
    "classification": "classification",
    "object_type": "object type",
}
_STOP = frozenset(
    "the and with from for that this into its his her their are was were has have been which also of in on a an "
    "to by at as or is it be".split()
)


@dataclass
class Section:
    title: str
    text: str


@dataclass
class Critique:
    """A critique in one tone, with the evidence it rests on."""

    id: str
    tone: str
    sections: list[Section]
    evidence: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "tone": self.tone,
            "text": self.text,
            "sections": [{"title": s.title, "text": s.text} for s in self.sections],
            "evidence": self.evidence,
        }


def word_count(text: str) -> int:
    return len(text.split())


def fit_words(text: str, limit: int) -> str:
    """Whole sentences of ``text`` up to ``limit`` words (the first sentence cut with an ellipsis if needed)."""
    kept: list[str] = []
    for sentence in sentences(text):
        if word_count(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    if kept or limit <= 0:
        return " ".join(kept)
    return " ".join(text.split()[:limit]).rstrip(",;:") + "…"


def _display(value: str, name: str, *records: Artwork) -> str:
    """A lower-cased label as a catalogue writes it: 'new kingdom' -> 'New Kingdom' when a record has it."""
    for record in records:
        own = (getattr(record, name) or "").split(";")[0].strip()
        if own.lower() == value:
            return own
    return value if name in ("classification", "object_type") else value[:1].upper() + value[1:]


def shared_traits(record: Artwork, other: Artwork, lexicon: Lexicon) -> list[str]:
    """Why two artworks are alike, in short phrases: equal labels, common materials and keywords, and
    content words their titles share."""
    traits = []
    for name in LABEL_FIELDS:
        value = label_of(record, name)
        if value and value == label_of(other, name):
            traits.append(f"the {_LABEL_NAMES[name]} {_display(value, name, record)}")
    materials = [m for m in lexicon.materials_of(record.medium) if m in lexicon.materials_of(other.medium)]
    if materials:
        traits.append(" and ".join(materials[:2]) + " as material")
    keywords = sorted({k.lower() for k in record.keywords} & {k.lower() for k in other.keywords})
    if keywords:
        traits.append("the keywords " + ", ".join(keywords[:3]))
    own_title = {singular(w) for w in words(record.title) if len(w) > 3 and w.lower() not in _STOP}
    common = [w for w in words(other.title) if singular(w) in own_title]
    if common:
        traits.append("the subject " + ", ".join(dict.fromkeys(w.lower() for w in common)))
    return traits


def _maker(record: Artwork, lexicon: Lexicon) -> str:
    persons = lexicon.persons(record)
    if persons:
        return persons[0]
    attributions = lexicon.attributions(record)
    return f"{attributions[0]} work" if attributions else ""


class CritiqueWriter:
    """Writes descriptions and critiques for grounded artworks with one drafter.

    Example (with a trained model, an embedder and a grounding built by the caller):
        writer = CritiqueWriter(DecoderDrafter(model, embed, neighbours=3), model.lexicon)
        writer.critique(grounding, tone="label", seed=7).to_json()
    """

    def __init__(self, drafter: Drafter, lexicon: Lexicon):
        self.drafter = drafter
        self.lexicon = lexicon

    def describe(self, grounding: Grounding, seed: int = 0) -> Draft:
        """A fact-checked description draft for the artwork."""
        return self.drafter.draft(grounding, check_seed(seed))

    def critique(self, grounding: Grounding, tone: str = "critique", seed: int = 0) -> Critique:
        """A critique in ``tone`` (label, critique or scholarly); the same seed gives the same text."""
        check_tone(tone)
        draft = self.describe(grounding, seed)
        rng = random.Random(check_seed(seed))
        record = grounding.record
        neighbours = [n for n in grounding.neighbours if n.record.id != record.id][: NEIGHBOURS_SHOWN[tone]]
        facts = self._facts(record)
        if tone == "label":
            description = fit_words(draft.body if draft.lead else draft.text, WORD_LIMITS["label"] - word_count(facts))
            sections = [
                Section("What it is", fit_words(facts, WORD_LIMITS["label"])),
                Section("Description", description),
            ]
        else:
            scholarly = tone == "scholarly"
            others = [
                Section("Style and technique", self._style(grounding, rng, scholarly)),
                Section("Comparison", self._comparison(record, neighbours, rng, scholarly)),
                Section("Assessment", self._assessment(grounding, neighbours, draft, rng, scholarly)),
            ]
            budget = WORD_LIMITS[tone] - word_count(facts) - sum(word_count(s.text) for s in others)
            body = draft.body if draft.lead else draft.text
            # Over budget (a long catalogue record), still keep one whole sentence rather than a cut one.
            first = min(word_count(next(iter(sentences(body)), "")), 60)
            description = fit_words(body, max(budget, 25, first))
            sections = [Section("What it is", facts), Section("Description", description), *others]
            if scholarly:
                sections.append(Section("Sources", self._sources(record, neighbours, draft)))
        sections = [s for s in sections if s.text]
        own_sections = " ".join(s.text for s in sections if s.title not in ("Comparison", "Sources"))
        evidence = {
            "fields": sorted(self._fields_used(record)),
            "neighbours": [{"id": n.record.id, "score": round(n.score, 4)} for n in neighbours],
            "attributes": dict(grounding.attributes),
            "draft": draft.evidence(),
            "fact_check": [str(v) for v in check_draft(own_sections, record, self.lexicon)],
            "seed": seed,
        }
        return Critique(record.id, tone, sections, evidence)

    def _facts(self, record: Artwork) -> str:
        text = template_description(record, slot_values(record, self.lexicon))
        if record.classification:
            text += f" The collection catalogues it under {record.classification}."
        return text

    @staticmethod
    def _fields_used(record: Artwork) -> set[str]:
        names = ("title", "creators", "date_text", "medium", "classification", "object_type", "period", "style")
        return {n for n in (*names, "culture", "keywords") if getattr(record, n)}

    def _style(self, grounding: Grounding, rng: random.Random, scholarly: bool) -> str:
        record = grounding.record
        agree, differ, inferred = [], [], []
        for name in LABEL_FIELDS:
            decoded = (grounding.attributes.get(name) or "").lower()
            if not decoded:
                continue
            own = label_of(record, name)
            phrase = f"{_LABEL_NAMES[name]} {_display(decoded, name, record)}"
            (agree if own == decoded else differ if own else inferred).append((phrase, own, name))
        out = []
        if agree:
            lead = rng.choice(["Read from its style latent, the work points to", "Its style latent points to"])
            out.append(f"{lead} {', '.join(p for p, _, _ in agree)}, in line with the catalogue.")
        for phrase, own, name in differ:
            out.append(
                f"The style model sets it nearer the {phrase} than its catalogued {_display(own, name, record)}"
                + (", a tension worth a closer look." if scholarly else ".")
            )
        if inferred:
            out.append(
                "The catalogue is silent where the style model suggests "
                + ", ".join(p for p, _, _ in inferred)
                + (" (an inference, not a record)." if scholarly else ".")
            )
        if not out:
            out.append("The style model reads no period, style or culture from it with confidence.")
        materials = self.lexicon.materials_of(record.medium)
        if record.medium:
            verb = rng.choice(["It is worked in", "Its technique is", "It is made in"])
            out.append(f"{verb} {record.medium}.")
            if len(materials) > 1 and scholarly:
                out.append(f"The medium combines {', '.join(materials[:-1])} and {materials[-1]}.")
        if record.keywords:
            out.append("Catalogue keywords: " + ", ".join(record.keywords[:5]) + ".")
        return " ".join(out)

    def _comparison(self, record: Artwork, neighbours: list[Neighbour], rng: random.Random, scholarly: bool) -> str:
        if not neighbours:
            return ""
        opener = rng.choice(
            ["Among its nearest neighbours in the collection,", "In the collection, the closest works are these:"]
        )
        parts = [opener]
        for n in neighbours:
            other = n.record
            who = ", ".join(x for x in (_maker(other, self.lexicon), other.date_text) if x)
            name = f"{other.title or 'an untitled work'} ({who + '; ' if who else ''}id {other.id})"
            traits = shared_traits(record, other, self.lexicon)
            score = f" (similarity {n.score:.2f})" if scholarly else ""
            if traits:
                parts.append(f"{name}{score} shares {'; '.join(traits)}.")
            else:
                parts.append(f"{name}{score} is close in style space without sharing a catalogued field.")
        return " ".join(parts)

    def _assessment(
        self,
        grounding: Grounding,
        neighbours: list[Neighbour],
        draft: Draft,
        rng: random.Random,
        scholarly: bool,
    ) -> str:
        record = grounding.record
        out = []
        if neighbours:
            mean = sum(n.score for n in neighbours) / len(neighbours)
            if mean >= 0.8:
                out.append(
                    rng.choice(
                        [
                            "It is a representative piece of a well-represented group,",
                            "It sits firmly within a familiar group,",
                        ]
                    )
                )
                out.append("so its interest lies in execution more than in novelty.")
            elif mean >= 0.6:
                out.append("It is related to its neighbours without being interchangeable with them.")
            else:
                out.append("It stands somewhat apart: even its closest neighbours are only loosely alike.")
        filled = sum(bool(getattr(record, n)) for n in ("title", "date_text", "medium", *LABEL_FIELDS))
        if filled >= 6:
            out.append("The catalogue record is detailed, so the facts above rest on the record itself.")
        else:
            out.append("The catalogue record is sparse; the style reading leans on the model's latent.")
        if scholarly:
            out.append(
                f"The drafted description reaches a similarity of {draft.score:.2f} to the work's own embedding "
                f"({draft.candidates} candidates, {draft.rejected} rejected by the fact check)."
            )
        return re.sub(r",\s+so", ", so", " ".join(out))

    def _sources(self, record: Artwork, neighbours: list[Neighbour], draft: Draft) -> str:
        fields = ", ".join(sorted(self._fields_used(record)))
        ids = ", ".join(n.record.id for n in neighbours) or "none"
        return (
            f"Facts: catalogue fields {fields}. Comparisons: nearest neighbours {ids}. "
            f"The description was drafted by the {draft.drafter} drafter and checked against the record."
        )
