"""Structured critiques: facts, a description, style and technique, comparisons, an assessment.

Evidence first: a record that has a description (the museum's, or the text a caller sent) is described by its
own most informative sentences, attributed and listed in the evidence; only a record without one gets a
drafted description. Every other sentence is assembled from the record's fields, the attributes the style
model decodes with a calibrated confidence, its nearest neighbours (cited by id) and the collection's own
numbers (critic.writer.collection), so each claim can be traced to the evidence listed with the result.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from critic.labels import label_of
from critic.records import LABEL_FIELDS, Artwork
from critic.writer.collection import CLOSENESS_K, CollectionStats
from critic.writer.drafter import Draft, Drafter, Grounding, Neighbour, template_description
from critic.writer.edit import subject_words
from critic.writer.factcheck import check_draft
from critic.writer.inputs import NEW_ARTWORK_ID, check_seed, check_tone
from critic.writer.lexicon import Lexicon, singular, words
from critic.writer.slots import MATERIAL_SLOTS, delexicalise, sentences, slot_values, unfilled_slots

#: Bumped when the writer's rules change what it writes for the same record, build and seed (2: the transfer
#: rule and the sentence splitter), so that critiques cached or pre-generated under older rules go stale.
RULES_VERSION = 2
WORD_LIMITS = {"label": 80, "critique": 250, "scholarly": 400}
NEIGHBOURS_SHOWN = {"label": 0, "critique": 3, "scholarly": 3}
OBSERVATIONS = {"label": 0, "critique": 1, "scholarly": 2}
DESCRIPTION_FLOOR = {"label": 0, "critique": 70, "scholarly": 150}
#: Sentences that point elsewhere (bibliography, credit lines) or end on an abbreviation the splitter cut at.
_NOT_PROSE = re.compile(
    r"\b(?:please see|for more information|see also|cat(?:alogue)?\.? no|literature:|bibliography)\b"
    r"|\b(?:no|cat|fig|figs|pl|ca|vol|pp|p|inv|st|nos)\.$",
    re.IGNORECASE,
)
ASSESSMENTS = {"label": 0, "critique": 2, "scholarly": 3}
#: Words that mark a curator's sentence as being about how a work was made (what may transfer to a neighbour).
TECHNIQUE = re.compile(
    r"\b(?:techniques?|painted|carved|cast|gilt|gilded|gilding|glazed?|enamell?ed|engraved|inlaid|woven|"
    r"illuminat\w*|workshops?|brush\w*|chased|incised|modell?ed|stamped|molded|moulded|hammered|lacquer\w*|"
    r"pigments?|tempera|underdrawing|firing|fired|kiln|loom|embroider\w*|stippl\w*|punch\w*)\b",
    re.IGNORECASE,
)
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


def informative_sentences(text: str, budget: int, known: str = "") -> list[str]:
    """The most informative whole sentences of ``text`` within ``budget`` words, in their original order.

    A sentence's information is the number of its distinct content words (longer than three letters, not
    function words) that ``known`` (the facts already shown) does not already state; sentences are taken by
    information per word until the budget is spent.

    Example:
        >>> informative_sentences("A cup. It was made in Siena for the Malavolti chapel of San Domenico.", 20)
        ['It was made in Siena for the Malavolti chapel of San Domenico.']
    """
    seen = {w.lower() for w in words(known)}
    scored = []
    for i, sentence in enumerate(sentences(text)):
        content = {w.lower() for w in words(sentence) if len(w) > 3 and w.lower() not in _STOP} - seen
        if len(sentence.split()) >= 4 and content and not _NOT_PROSE.search(sentence):
            scored.append((len(content) / len(sentence.split()) ** 0.5, i, sentence))
    chosen: list[tuple[int, str]] = []
    used = 0
    for _, i, sentence in sorted(scored, key=lambda t: (-t[0], t[1])):
        if used + word_count(sentence) <= budget:
            chosen.append((i, sentence))
            used += word_count(sentence)
    if not chosen and scored:
        best = max(scored, key=lambda t: (t[0], -t[1]))
        return [fit_words(best[2], budget)]
    return [sentence for _, sentence in sorted(chosen)]


def _nationality(record: Artwork, lexicon: Lexicon) -> set[str]:
    """Demonyms the record's creators state in parentheses ("Giovanni di Paolo (Italian, ...)")."""
    stated = set()
    for creator in record.creators:
        for inside in re.findall(r"\(([^()]*)\)", creator):
            stated.update(w.lower() for w in words(inside) if w.lower() in lexicon.demonyms)
    return stated


def _years(record: Artwork) -> float | None:
    if record.year_start is None or record.year_end is None:
        return None
    return (record.year_start + record.year_end) / 2


def is_sibling(record: Artwork, other: Artwork) -> bool:
    """Whether ``other`` is likely part of the same book, series or set: the same first creator and the same
    title or the same date text."""
    if not record.creators or not other.creators or record.creators[0] != other.creators[0]:
        return False
    same_title = record.title.strip().lower() == other.title.strip().lower() and bool(record.title.strip())
    same_date = bool(record.date_text.strip()) and record.date_text.strip() == other.date_text.strip()
    return same_title or same_date


def choose_neighbours(record: Artwork, neighbours: list[Neighbour], k: int) -> list[tuple[Neighbour, bool]]:
    """Up to ``k`` neighbours to compare with, other creators first, at most one sibling (flagged True)."""
    others = [n for n in neighbours if n.record.id != record.id]
    own_creator = record.creators[0] if record.creators else None
    ranked = sorted(
        enumerate(others), key=lambda t: (bool(own_creator) and t[1].record.creators[:1] == [own_creator], t[0])
    )
    chosen: list[tuple[Neighbour, bool]] = []
    for _, n in ranked:
        sibling = is_sibling(record, n.record)
        if sibling and any(s for _, s in chosen):
            continue
        chosen.append((n, sibling))
        if len(chosen) == k:
            break
    return chosen


def differences(record: Artwork, other: Artwork, lexicon: Lexicon) -> list[str]:
    """How ``other`` differs from ``record``: date, medium, kind and catalogued period, in short phrases."""
    out = []
    own, theirs = _years(record), _years(other)
    if own is not None and theirs is not None and abs(theirs - own) >= 15:
        gap = int(round(abs(theirs - own), -1 if abs(theirs - own) >= 30 else 0))
        out.append(f"about {gap} years {'later' if theirs > own else 'earlier'}")
    own_materials, their_materials = lexicon.materials_of(record.medium), lexicon.materials_of(other.medium)
    disjoint = not {singular(m) for m in own_materials} & {singular(m) for m in their_materials}
    if own_materials and their_materials and disjoint:
        out.append(f"in {' and '.join(their_materials[:2])} rather than {' and '.join(own_materials[:2])}")
    for name in ("object_type", "classification"):
        mine, yours = label_of(record, name), label_of(other, name)
        if mine and yours and mine != yours:
            out.append(f"catalogued as {_display(yours, name, other)} rather than {_display(mine, name, record)}")
            break
    mine, yours = label_of(record, "period"), label_of(other, "period")
    if mine and yours and mine != yours:
        out.append(f"of the {_display(yours, 'period', other)} period")
    return out


class CritiqueWriter:
    """Writes descriptions and critiques for grounded artworks with one drafter.

    ``collection`` gives the assessment its numbers; ``attribute_thresholds`` (label -> the confidence
    calibrated on validation, critic.writer.calibration) decides which decoded attributes may be stated:
    without them none is.

    Example (with a drafter, a lexicon and a grounding built by the caller):
        writer = CritiqueWriter(drafter, lexicon, CollectionStats.build(records, lexicon), {"period": 0.8})
        writer.critique(grounding, tone="label", seed=7).to_json()
    """

    def __init__(
        self,
        drafter: Drafter,
        lexicon: Lexicon,
        collection: CollectionStats | None = None,
        attribute_thresholds: dict[str, float] | None = None,
    ):
        self.drafter = drafter
        self.lexicon = lexicon
        self.collection = collection
        self.attribute_thresholds = dict(attribute_thresholds or {})

    def describe(self, grounding: Grounding, seed: int = 0) -> Draft:
        """A fact-checked description draft for the artwork; its evidence says whether the record already has
        a description of its own."""
        draft = self.drafter.draft(grounding, check_seed(seed))
        draft.record_has_description = bool(grounding.record.description.strip())
        return draft

    def critique(self, grounding: Grounding, tone: str = "critique", seed: int = 0) -> Critique:
        """A critique in ``tone`` (label, critique or scholarly); the same seed gives the same text."""
        check_tone(tone)
        check_seed(seed)
        record = grounding.record
        rng = random.Random(f"{seed}:{record.id}")  # phrasings vary across works, fixed for a work and seed
        compared = choose_neighbours(record, grounding.neighbours, NEIGHBOURS_SHOWN[tone])
        facts = self._facts(record)
        attributes = self._attributes(grounding)
        evidence: dict = {"fields": sorted(self._fields_used(record)), "attributes": attributes, "seed": seed}
        others: list[Section] = []
        if tone != "label":
            scholarly = tone == "scholarly"
            observations = self._observations(grounding, OBSERVATIONS[tone])
            assessment, numbers = self._assessment(grounding, attributes, rng, ASSESSMENTS[tone])
            others = [
                Section("Style and technique", self._style(record, attributes, observations, rng, scholarly)),
                Section("Comparison", self._comparison(record, compared, rng, scholarly)),
                Section("Assessment", assessment),
            ]
            evidence["observations"] = [{"id": n.record.id, "sentence": text} for n, text in observations]
            evidence["assessment"] = numbers
        budget = WORD_LIMITS[tone] - word_count(facts) - sum(word_count(s.text) for s in others)
        # The description comes first: it keeps at least DESCRIPTION_FLOOR words, and the comparison gives up
        # neighbours (the last first) while the whole is over the tone's limit.
        description, draft = self._description(grounding, tone, seed, max(budget, DESCRIPTION_FLOOR[tone]))
        while others and len(compared) > 1 and word_count(facts) + word_count(description.text) + sum(
            word_count(s.text) for s in others
        ) > WORD_LIMITS[tone]:
            compared = compared[:-1]
            shorter = self._comparison(record, compared, random.Random(f"{seed}:{record.id}"), tone == "scholarly")
            others[1] = Section("Comparison", shorter)
        sections = [Section("What it is", fit_words(facts, WORD_LIMITS["label"])), description, *others]
        if tone == "scholarly":
            sections.append(Section("Sources", self._sources(record, compared, draft)))
        sections = [s for s in sections if s.text]
        evidence["neighbours"] = [
            {"id": n.record.id, "score": round(n.score, 4), "sibling": sibling} for n, sibling in compared
        ]
        evidence["description"] = draft if isinstance(draft, dict) else {"source": "draft", "draft": draft.evidence()}
        # The claims that come from text (the draft, the neighbours' observations) are checked again as they
        # stand in the finished critique; the rest is the record's own fields and the collection's numbers.
        claims = [] if isinstance(draft, dict) else [description.text]
        claims += [o["sentence"] for o in evidence.get("observations", [])]
        evidence["fact_check"] = [str(v) for v in check_draft(" ".join(claims), record, self.lexicon)]
        return Critique(record.id, tone, sections, evidence)

    def _description(self, grounding: Grounding, tone: str, seed: int, budget: int) -> tuple[Section, dict | Draft]:
        """The record's own description when it has one (attributed), else a draft."""
        record = grounding.record
        if tone == "label":
            budget = WORD_LIMITS["label"] - word_count(self._facts(record))
        own = record.description.strip()
        if own:
            caller = record.id == NEW_ARTWORK_ID
            opener = "The description given with this work reads:" if caller else "The museum's catalogue notes:"
            chosen = informative_sentences(own, budget - word_count(opener), self._facts(record))
            text = f"{opener} “{' '.join(chosen)}”" if chosen else ""
            return Section("Description", text), {"source": "caller" if caller else "record", "sentences": chosen}
        draft = self.drafter.draft(grounding, seed)
        if draft.source == "template":
            return Section("Description", ""), draft  # the facts line already says all the template would
        body = draft.body if draft.lead else draft.text
        return Section("Description", fit_words(body, budget)), draft

    def _facts(self, record: Artwork) -> str:
        text = template_description(record, slot_values(record, self.lexicon))
        if record.classification:
            text += f" The collection catalogues it under {record.classification}."
        return text

    @staticmethod
    def _fields_used(record: Artwork) -> set[str]:
        names = ("title", "creators", "date_text", "medium", "classification", "object_type", "period", "style")
        return {n for n in (*names, "culture", "keywords", "description") if getattr(record, n)}

    def _attributes(self, grounding: Grounding) -> dict[str, dict]:
        """Each decoded attribute with its confidence, and whether it may be stated (and if not, why)."""
        record = grounding.record
        out = {}
        for name in LABEL_FIELDS:
            value = (grounding.attributes.get(name) or "").lower()
            if not value:
                continue
            confidence = grounding.confidences.get(name)
            threshold = self.attribute_thresholds.get(name)
            reason = ""
            if confidence is None or threshold is None or confidence < threshold:
                reason = "below the calibrated confidence"
            elif name == "period" and self.collection and self.collection.period_excludes(value, record):
                reason = "the collection's dates for this period exclude the record's"
            elif name == "culture" and _nationality(record, self.lexicon) and not (
                set(words(value.lower())) & _nationality(record, self.lexicon)
            ):
                reason = "at odds with the creator's stated nationality"
            out[name] = {
                "value": value,
                "confidence": None if confidence is None else round(confidence, 3),
                "threshold": threshold,
                "stated": not reason,
                **({"withheld": reason} if reason else {}),
            }
        return out

    def _observations(self, grounding: Grounding, k: int) -> list[tuple[Neighbour, str]]:
        """Up to ``k`` sentences of neighbours' descriptions about how a material the target shares was worked,
        quoted as written: no fact of the neighbour's own (name, date, title, subject) in them, and passing
        the fact check against the target."""
        record = grounding.record
        own_materials = {singular(m) for m in self.lexicon.materials_of(record.medium)}
        found: list[tuple[Neighbour, str]] = []
        for n in grounding.neighbours:
            if len(found) == k or not n.record.description.strip() or n.record.id == record.id:
                continue
            foreign = subject_words(n.record, record)
            for sentence in sentences(n.record.description):
                slots = set(unfilled_slots(delexicalise(sentence, n.record, self.lexicon)))
                shared = {singular(w) for w in words(sentence)} & own_materials
                if not TECHNIQUE.search(sentence) or not shared or not slots <= set(MATERIAL_SLOTS):
                    continue
                if not 6 <= len(sentence.split()) <= 35 or foreign & {singular(w) for w in words(sentence)}:
                    continue
                if sentence[:1].isupper() and not check_draft(sentence, record, self.lexicon):
                    found.append((n, sentence))
                    break
        return found

    def _style(
        self,
        record: Artwork,
        attributes: dict[str, dict],
        observations: list[tuple[Neighbour, str]],
        rng: random.Random,
        scholarly: bool,
    ) -> str:
        agree, differ, inferred = [], [], []
        for name, a in attributes.items():
            if not a["stated"]:
                continue
            own = label_of(record, name)
            phrase = f"{_LABEL_NAMES[name]} {_display(a['value'], name, record)}"
            confidence = f" ({a['confidence']:.0%} confident)" if scholarly else ""
            (agree if own == a["value"] else differ if own else inferred).append((phrase + confidence, own, name))
        out = []
        # Agreement repeats the facts line, so only the scholarly tone states it (with the model's confidence).
        if agree and scholarly:
            out.append(
                rng.choice(["Read from its style latent, the work points to {}, as the catalogue does.",
                            "The style model agrees with the catalogue on {}.",
                            "Its style latent confirms the catalogued {}."]).format(", ".join(p for p, _, _ in agree))
            )
        for phrase, own, name in differ:
            form = rng.choice([
                "The style model sets it nearer the {p} than its catalogued {o}",
                "Read by the style model, it looks closer to the {p} than to its catalogued {o}",
                "Its style latent leans towards the {p}, not the catalogued {o}",
            ])
            out.append(form.format(p=phrase, o=_display(own, name, record))
                       + (", a tension worth a closer look." if scholarly else "."))
        if inferred:
            out.append(
                rng.choice(["Where the catalogue is silent, the style model suggests {}.",
                            "The style model reads {} into it, which the record does not state."]).format(
                    ", ".join(p for p, _, _ in inferred))
                + (" This is an inference, not a record." if scholarly else "")
            )
        for n, text in observations:
            title = n.record.title or "an untitled work"
            lead = rng.choice([
                "What the catalogue notes of its neighbour {} (id {}) may hold here too:",
                "A practice the catalogue records for the nearby {} (id {}) plausibly applies:",
            ])
            out.append(f"{lead.format(title, n.record.id)} “{text}”")
        return " ".join(out)

    def _comparison(
        self, record: Artwork, compared: list[tuple[Neighbour, bool]], rng: random.Random, scholarly: bool
    ) -> str:
        if not compared:
            return ""
        parts = [rng.choice(["Among its nearest neighbours in the collection:", "Set beside the closest works:",
                             "Its neighbours in style space:"])]
        for n, sibling in compared:
            other = n.record
            who = ", ".join(x for x in (_maker(other, self.lexicon), other.date_text) if x)
            name = f"{other.title or 'an untitled work'} ({who + '; ' if who else ''}id {other.id})"
            name += f" (similarity {n.score:.2f})" if scholarly else ""
            score = ", a sibling from the same book, series or set," if sibling else ""
            traits = "; ".join(shared_traits(record, other, self.lexicon))
            unlike = ", ".join(differences(record, other, self.lexicon))
            if traits and unlike:
                form = rng.choice(["{n} shares {t}, but is {u}.", "{n} has {t} in common with it, though it is {u}.",
                                   "Like this work, {n} has {t}; unlike it, it is {u}."])
            elif traits:
                form = rng.choice(["{n} shares {t}.", "{n} has {t} in common with it.", "Like this work, {n} has {t}."])
            elif unlike:
                form = rng.choice(["{n} is close in style space though {u}.", "{n} is near it in style, yet {u}."])
            else:
                form = "{n} is close in style space without sharing a catalogued field."
            parts.append(form.format(n=name + score, t=traits, u=unlike))
        return " ".join(parts)

    def _assessment(
        self, grounding: Grounding, attributes: dict[str, dict], rng: random.Random, k: int
    ) -> tuple[str, dict]:
        """Up to ``k`` observations drawn from the collection's numbers, the most telling first."""
        record, stats = grounding.record, self.collection
        found: list[tuple[float, str, str, dict]] = []  # (salience, key, sentence, numbers)
        scores = [n.score for n in grounding.neighbours if n.record.id != record.id][:CLOSENESS_K]
        if scores and stats is not None:
            mean = sum(scores) / len(scores)
            pct = stats.closeness_percentile(mean)
            if pct is not None:
                numbers = {"mean_neighbour_similarity": round(mean, 4), "closer_than_share": round(pct, 3)}
                if pct >= 0.75:
                    text = rng.choice([
                        f"Its nearest neighbours sit closer to it (mean similarity {mean:.2f}) than is usual "
                        f"for {pct:.0%} of the collection's works: it belongs to a dense, well-represented group.",
                        f"It is a typical member of its group: its neighbours are nearer to it than they are to "
                        f"{pct:.0%} of the works sampled from the collection (mean similarity {mean:.2f}).",
                    ])
                elif pct <= 0.25:
                    text = rng.choice([
                        f"It stands apart: its closest neighbours are further away (mean similarity {mean:.2f}) "
                        f"than for {1 - pct:.0%} of the collection's works.",
                        f"Few works resemble it closely; only {pct:.0%} of the collection have neighbours as "
                        f"distant (mean similarity {mean:.2f}).",
                        f"Its nearest works are only loosely like it (mean similarity {mean:.2f}), a looser "
                        f"neighbourhood than {1 - pct:.0%} of the collection's.",
                        f"An outlier in style space: {1 - pct:.0%} of sampled works sit closer to their neighbours "
                        f"than it does to its own ({mean:.2f}).",
                        f"The collection holds little like it: a mean similarity of {mean:.2f} to its nearest works "
                        f"is lower than for {1 - pct:.0%} of the works sampled.",
                        f"Its place in style space is a sparse one (mean similarity {mean:.2f} to its three nearest; "
                        f"{1 - pct:.0%} of sampled works have closer company).",
                    ])
                else:
                    text = rng.choice([
                        f"Its neighbourhood is of middling density (mean similarity {mean:.2f}, closer than for "
                        f"{pct:.0%} of the collection).",
                        f"It is neither an outlier nor a type specimen: its neighbours sit at a mean similarity of "
                        f"{mean:.2f}, closer than for {pct:.0%} of the collection.",
                    ])
                found.append((abs(pct - 0.5), "typicality", text, numbers))
        if stats is not None:
            found.extend(self._rarity(record, stats, rng))
        found.extend(self._dating(record, grounding.neighbours, rng))
        for name, a in attributes.items():
            own = label_of(record, name)
            if a["stated"] and own and own != a["value"]:
                text = (f"Style and record disagree on its {_LABEL_NAMES[name]}: the model reads "
                        f"{_display(a['value'], name, record)} ({a['confidence']:.0%}), the catalogue "
                        f"{_display(own, name, record)}.")
                found.append((0.6, f"disagreement_{name}", text, {"confidence": a["confidence"]}))
        found.sort(key=lambda t: -t[0])
        chosen = found[:k]
        return " ".join(t[2] for t in chosen), {key: numbers for _, key, _, numbers in chosen}

    def _rarity(self, record: Artwork, stats: CollectionStats, rng: random.Random) -> list:
        out = []
        candidates = [(name, label_of(record, name)) for name in ("period", "object_type", "classification")]
        candidates += [("material", singular(m)) for m in self.lexicon.materials_of(record.medium)[:1]]
        for name, value in candidates:
            if not value:
                continue
            n = stats.materials.get(value, 0) if name == "material" else stats.share(name, value)[0]
            share = n / max(stats.total, 1)
            what = "material" if name == "material" else _LABEL_NAMES[name]
            shown = value if name == "material" else _display(value, name, record)
            numbers = {"field": name, "value": value, "count": n, "share": round(share, 4)}
            if n == 1:
                text = f"It is the only work in the collection's {stats.total:,} with its {what}, {shown}."
                out.append((0.9, f"rarity_{name}", text, numbers))
            elif 0 < n <= max(20, 0.005 * stats.total):
                text = rng.choice([
                    f"Its {what}, {shown}, is rare here: {n} of the collection's {stats.total:,} works.",
                    f"Only {n} works of {stats.total:,} in the collection share its {what}, {shown}.",
                ])
                out.append((0.9 - share, f"rarity_{name}", text, numbers))
            elif share >= 0.15:
                text = rng.choice([
                    f"Its {what}, {shown}, is one of the collection's largest groups ({n:,} works, {share:.0%}).",
                    f"{share:.0%} of the collection shares its {what}, {shown}: it has many peers here.",
                    f"With {n:,} works of its {what}, {shown}, the collection can set it among many peers.",
                ])
                out.append((share - 0.1, f"commonness_{name}", text, numbers))
        return out

    def _dating(self, record: Artwork, neighbours: list[Neighbour], rng: random.Random) -> list:
        own = _years(record)
        years = [y for y in (_years(n.record) for n in neighbours if n.record.id != record.id) if y is not None]
        if own is None or len(years) < 3:
            return []
        earlier = sum(y > own + 10 for y in years)
        later = sum(y < own - 10 for y in years)
        median = float(sorted(years)[len(years) // 2])
        numbers = {"neighbours_dated": len(years), "later_neighbours": earlier, "earlier_neighbours": later,
                   "median_year": int(median)}
        when = record.date_text or str(int(own))
        if earlier == len(years):
            text = rng.choice([
                f"Dated {when}, it is earlier than all {len(years)} of its dated neighbours (median {int(median)}).",
                f"It precedes every one of its {len(years)} dated neighbours, whose median date is {int(median)}.",
            ])
        elif later == len(years):
            text = rng.choice([
                f"Dated {when}, it is later than all {len(years)} of its dated neighbours (median {int(median)}).",
                f"It comes after every one of its {len(years)} dated neighbours, whose median date is {int(median)}.",
            ])
        elif abs(median - own) <= 25:
            text = rng.choice([
                f"Its date sits in the middle of its neighbours' (median {int(median)} across {len(years)}).",
                f"Its {len(years)} dated neighbours cluster around its own date (median {int(median)}).",
                f"Its date is typical of its neighbourhood: the median of its {len(years)} dated neighbours is "
                f"{int(median)}.",
                f"In date it keeps company with its neighbours, whose median year is {int(median)}.",
            ])
            return [(0.2, "dating", text, numbers)]
        else:
            side = "earlier" if median > own else "later"
            text = rng.choice([
                f"It is {side} than most of its {len(years)} dated neighbours "
                f"({max(earlier, later)} of them; median {int(median)}).",
                f"Most of its dated neighbours ({max(earlier, later)} of {len(years)}) are "
                f"{'later' if side == 'earlier' else 'earlier'} than it (median {int(median)}).",
                f"Against its neighbours' median date of {int(median)}, it is {side} than "
                f"{max(earlier, later)} of {len(years)}.",
            ])
        return [(0.7, "dating", text, numbers)]

    def _sources(self, record: Artwork, compared: list[tuple[Neighbour, bool]], draft) -> str:
        fields = ", ".join(sorted(self._fields_used(record)))
        ids = ", ".join(n.record.id for n, _ in compared) or "none"
        if isinstance(draft, dict):
            how = ("The description quotes the text given with the work." if draft["source"] == "caller"
                   else "The description quotes the museum's own catalogue entry.")
        elif draft.source == "template":
            how = ("No description is drafted: the record has none, and no sentence of its nearest described works "
                   "transfers to it.")
        else:
            how = f"The description was drafted by the {draft.drafter} drafter and checked against the record."
        return f"Facts: catalogue fields {fields}. Comparisons: nearest neighbours {ids}. {how}"
