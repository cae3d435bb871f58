"""Drafting a description: candidates from a drafter, fact-checked, re-embedded, the closest one kept.

Every drafter turns a ``Grounding`` (the record, its own sentence embedding, its VAE latent, decoded
attributes and nearest neighbours) into candidate texts. ``pick`` fills their slots from the target,
drops candidates the fact check rejects, embeds the rest with the sentence model and keeps the one closest
to the artwork's own embedding. A metadata-only template is the fallback, so a draft always exists and no
unfilled slot reaches a user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from critic.records import Artwork
from critic.writer.factcheck import check_draft, place_supported, record_words
from critic.writer.lexicon import Lexicon, singular
from critic.writer.model import BOS, PAD, UNK, WriterModel, detokenize, tokenize
from critic.writer.slots import (
    OTHER_DATE,
    SLOT_FIELDS,
    SLOTS,
    delexicalise,
    fill,
    fill_or_drop,
    sentences,
    slot_values,
    unfilled_slots,
)

#: texts -> (n, dim) unit-length sentence embeddings (critic.embed.embed_texts without its count)
Embedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Neighbour:
    """A nearby artwork of the collection and its similarity score."""

    record: Artwork
    score: float


@dataclass
class Grounding:
    """Everything the writer knows about one artwork."""

    record: Artwork
    embedding: np.ndarray  # the artwork's own sentence embedding: the target drafts are ranked against
    latent: np.ndarray  # its VAE posterior mean
    attributes: dict[str, str]  # attributes decoded from the latent, label -> value
    neighbours: list[Neighbour] = field(default_factory=list)
    confidences: dict[str, float] = field(default_factory=dict)  # label -> the style model's probability


@dataclass
class Draft:
    """A chosen description and how it was chosen."""

    text: str
    drafter: str
    source: str  # "decoder", "neighbour:<id>" or "template"
    score: float  # cosine between the draft's embedding and the artwork's
    candidates: int
    rejected: int  # candidates the fact check turned down
    slots: dict[str, str]
    lead: str = ""  # the metadata sentences the text opens with, if the drafter leads with them
    unfluent: int = 0  # candidate sentences the fluency gate turned down
    record_has_description: bool = False  # set by ``describe``: the record already has its own

    @property
    def body(self) -> str:
        """The text after its lead: what the drafter wrote beyond the catalogue facts."""
        return self.text[len(self.lead) :].strip()

    def evidence(self) -> dict:
        used = [s for s in SLOTS if s in self.slots and self.slots[s] in self.text]
        return {
            "drafter": self.drafter,
            "source": self.source,
            "fields": sorted({SLOT_FIELDS[s] for s in used}),
            "similarity": round(self.score, 4),
            "candidates": self.candidates,
            "rejected_by_fact_check": self.rejected,
            "rejected_by_fluency_gate": self.unfluent,
            "record_has_description": self.record_has_description,
        }


class Drafter(Protocol):
    """Anything that drafts a description for a grounded artwork (the decoder, a baseline, an LLM)."""

    name: str

    def draft(self, grounding: Grounding, seed: int = 0) -> Draft: ...


def template_description(record: Artwork, values: dict[str, str]) -> str:
    """A metadata-only description: what the fields say, in two plain sentences.

    Example:
        >>> template_description(Artwork(id="1", title="Bowl", object_type="bowls"),
        ...                      {"TITLE": "Bowl", "MEDIUM": "bronze"})
        'Bowl is a bowl made of bronze.'
    """
    kind = (record.object_type or record.classification or "work").split(";")[0].strip()
    kind = re.sub(r"\s*\(.*?\)", "", kind).lower()
    if kind.endswith("s") and not kind.endswith("ss"):
        kind = kind[:-1]
    article = "an" if kind[:1] in "aeiou" else "a"
    first = f"{values.get('TITLE', 'This work')} is {article} {kind}"
    if "MEDIUM" in values:
        first += f" made of {values['MEDIUM']}"
    if "CREATOR" in values:
        first += f" by {values['CREATOR']}"
    elif "CULTURE" in values:
        first += f" of {values['CULTURE']} origin"
    if "DATE" in values:
        first += f", dated {values['DATE']}"
    context = [
        f"the {values['PERIOD']} period" if "PERIOD" in values else "",
        f"the {values['STYLE']} style" if "STYLE" in values else "",
    ]
    context = [c for c in context if c]
    text = first + "."
    if context:
        text += f" It belongs to {' and '.join(context)}."
    return text


def template_draft(grounding: Grounding, lexicon: Lexicon, embed: Embedder, drafter: str) -> Draft:
    values = slot_values(grounding.record, lexicon)
    text = template_description(grounding.record, values)
    score = float(embed([text])[0] @ np.asarray(grounding.embedding, dtype=np.float32))
    return Draft(text, drafter, "template", score, 1, 0, values)


def neighbour_text(neighbour: Artwork, lexicon: Lexicon, values: dict[str, str]) -> str:
    """A neighbour's description with its own facts swapped for the target's (sentences that cannot be
    refilled are dropped)."""
    return fill_or_drop(delexicalise(neighbour.description, neighbour, lexicon), values)


def supported_sentences(text: str, record: Artwork, lexicon: Lexicon) -> str:
    """The sentences of ``text`` that pass the fact check against ``record``."""
    return " ".join(s for s in sentences(text) if not check_draft(s, record, lexicon))


def pick(
    candidates: Sequence[tuple[str, str]],
    grounding: Grounding,
    embed: Embedder,
    lexicon: Lexicon,
    drafter: str,
    lead: bool = False,
) -> Draft:
    """Keep the candidate (text, source) closest to the artwork's embedding among those that pass the fact
    check; the template if none does. With ``lead``, every candidate opens with the template's facts."""
    record = grounding.record
    values = slot_values(record, lexicon)
    opening = template_description(record, values) if lead else ""
    texts = [(f"{opening} {t}".strip(), s) for t, s in candidates if t.strip()]
    passing = [(t, s) for t, s in texts if not check_draft(t, record, lexicon)]
    rejected = len(texts) - len(passing)
    if not passing:
        passing = [(template_description(record, values), "template")]
    vectors = embed([t for t, _ in passing])
    scores = vectors @ np.asarray(grounding.embedding, dtype=np.float32)
    best = int(np.argmax(scores))
    text, source = passing[best]
    opening = opening if text.startswith(opening) else ""
    return Draft(text, drafter, source, float(scores[best]), len(candidates), rejected, values, opening)


class DecoderDrafter:
    """Samples the trained decoder and keeps the best grounded sample.

    Options: ``neighbours`` adds that many neighbours' refilled descriptions (unsupported sentences
    dropped) to the pool; ``prompted`` adds that many decoder continuations of each neighbour's first
    sentence; ``lead`` opens every candidate with the metadata template's facts; ``lexicon`` (default: the
    model's) is what the fact check and the banned tokens use (give the whole collection's).
    """

    def __init__(
        self,
        model: WriterModel,
        embed: Embedder,
        samples: int = 8,
        temperature: float = 0.8,
        top_p: float = 0.9,
        neighbours: int = 0,
        prompted: int = 0,
        lead: bool = False,
        lexicon: Lexicon | None = None,
    ):
        self.model = model
        self.lexicon = lexicon or model.lexicon
        self.lead = lead
        self.embed = embed
        self.samples = samples
        self.temperature = temperature
        self.top_p = top_p
        self.neighbours = neighbours
        self.prompted = prompted
        flags = (("+neighbours", neighbours), ("+prompted", prompted), ("+lead", lead))
        self.name = "decoder" + "".join(flag for flag, on in flags if on)
        vocab = model.config.vocab
        self._always_banned = np.array([t in (PAD, BOS, UNK, f"<{OTHER_DATE}>") for t in vocab])
        self._decoder = None  # the torch module, built on the first sample (serving only scores, in numpy)
        self._slot_ids = {t[1:-1]: i for i, t in enumerate(vocab) if t[1:-1] in SLOTS}
        self._names = {i: t for i, t in enumerate(vocab) if t in self.lexicon.name_tokens}
        self._materials = {i: singular(t) for i, t in enumerate(vocab) if singular(t) in self.lexicon.materials}
        self._numbers = {i: t for i, t in enumerate(vocab) if re.search(r"\d", t)}
        self._places = {i: t for i, t in enumerate(vocab) if t in self.lexicon.places}

    def banned_tokens(self, record: Artwork, values: dict[str, str]) -> np.ndarray:
        """Tokens the decoder may not emit for this target: unfillable slots, other people's names,
        materials, places and numbers the record does not support."""
        banned = self._always_banned.copy()
        own = record_words(record)
        own_words = set(own)
        own_materials = {singular(w) for w in own}
        for slot, i in self._slot_ids.items():
            banned[i] = slot not in values
        for i, token in self._names.items():
            banned[i] = token not in own_words
        for i, material in self._materials.items():
            banned[i] = material not in own_materials
        own_lower = {w.lower() for w in own}
        for i, place in self._places.items():
            banned[i] = not place_supported(place, own_lower)
        date_text = record.date_text or ""
        for i, token in self._numbers.items():
            banned[i] = token not in date_text
        return banned

    def preference(self, grounding: Grounding, templates: Sequence[str]) -> np.ndarray:
        """How much the artwork's latent favours each delexicalised sentence: its per-token log-likelihood
        under the target's conditioning minus that under a blank one (zero latent, no attributes, no title).

        Example (with a trained drafter and a grounding):
            drafter.preference(grounding, ["The <MATERIAL> bowl is gilded.", "The portrait shows a saint."])
        """
        if not templates:
            return np.zeros(0, dtype=np.float32)
        model = self.model
        index = {t: i for i, t in enumerate(model.config.vocab)}
        rows = [[index[BOS], *(index.get(t, index[UNK]) for t in tokenize(s))] for s in templates]
        latent = np.asarray(grounding.latent, dtype=np.float32)[None, :]
        target = model.conditioning(latent, [grounding.attributes], [grounding.record.title])
        blank = model.conditioning(np.zeros_like(latent), [{}], [""])
        scores = [model.log_likelihood(rows, np.repeat(cond, len(rows), 0)) for cond in (target, blank)]
        return (scores[0] - scores[1]).astype(np.float32)

    def sample_texts(
        self, grounding: Grounding, seed: int, prefix: Sequence[str] = (), samples: int | None = None
    ) -> list[str]:
        """Decoder drafts with the target's slot values filled in; each continues ``prefix`` (tokens of a
        delexicalised sentence) when one is given."""
        values = slot_values(grounding.record, self.lexicon)
        return [fill(text, values) for text in self.sample_delexicalised(grounding, seed, prefix, samples)]

    def sample_delexicalised(
        self, grounding: Grounding, seed: int, prefix: Sequence[str] = (), samples: int | None = None
    ) -> list[str]:
        """Decoder drafts in whole sentences, slots not yet filled (only slots the target can fill)."""
        import torch

        from critic.writer.decoder import conditioning_inputs, to_decoder

        values = slot_values(grounding.record, self.lexicon)
        config = self.model.config
        if self._decoder is None:
            self._decoder = to_decoder(config, self.model.weights)
        n = samples or self.samples
        latent = np.repeat(np.asarray(grounding.latent, dtype=np.float32)[None, :], n, 0)
        inputs = conditioning_inputs(config, latent, [grounding.attributes] * n, [grounding.record.title] * n)
        index = {t: i for i, t in enumerate(config.vocab)}
        prefix_ids = [index.get(t, index[UNK]) for t in prefix]
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            cond = self._decoder.conditioning(*inputs)
            banned = torch.from_numpy(self.banned_tokens(grounding.record, values))
            ids = self._decoder.sample(cond, banned, generator, self.temperature, self.top_p, prefix=prefix_ids)
        texts = []
        for row in ids:
            text = detokenize([*prefix, *(config.vocab[i] for i in row)])
            complete = sentences(text)
            if complete and not re.search(r"[.!?]$", complete[-1]) and len(complete) > 1:
                complete = complete[:-1]  # cut off by the length limit mid-sentence
            text = " ".join(complete)
            if text and text[-1] not in ".!?":
                text += "."
            texts.append(text)
        return texts

    def candidates(self, grounding: Grounding, seed: int) -> list[tuple[str, str]]:
        """Free decoder samples; then, per neighbour, its refilled description and decoder continuations
        of its first sentence the target can fill."""
        pool = [(t, "decoder") for t in self.sample_texts(grounding, seed)]
        lexicon = self.lexicon
        values = slot_values(grounding.record, lexicon)
        for rank, n in enumerate(grounding.neighbours[: self.neighbours], start=1):
            if not n.record.description.strip():
                continue
            delexicalised = delexicalise(n.record.description, n.record, lexicon)
            text = supported_sentences(fill_or_drop(delexicalised, values), grounding.record, lexicon)
            pool.append((text, f"neighbour:{n.record.id}"))
            fillable = [s for s in sentences(delexicalised) if set(unfilled_slots(s)) <= set(values)]
            if self.prompted and fillable:
                prefix = tokenize(fillable[0])
                continued = self.sample_texts(grounding, seed + rank, prefix, self.prompted)
                pool.extend((t, f"decoder+neighbour:{n.record.id}") for t in continued)
        return pool

    def draft(self, grounding: Grounding, seed: int = 0) -> Draft:
        return pick(self.candidates(grounding, seed), grounding, self.embed, self.lexicon, self.name, self.lead)


class RetrievalDrafter:
    """Baseline: the nearest neighbour's description with its slots refilled for the target, keeping only
    the sentences that pass the fact check (``supported_sentences``)."""

    name = "retrieval"

    def __init__(self, lexicon: Lexicon, embed: Embedder):
        self.lexicon = lexicon
        self.embed = embed

    def draft(self, grounding: Grounding, seed: int = 0) -> Draft:
        values = slot_values(grounding.record, self.lexicon)
        for n in grounding.neighbours:
            if n.record.description.strip():
                refilled = neighbour_text(n.record, self.lexicon, values)
                text = supported_sentences(refilled, grounding.record, self.lexicon)
                if text:
                    score = float(self.embed([text])[0] @ grounding.embedding)
                    return Draft(text, self.name, f"neighbour:{n.record.id}", score, 1, 0, values)
        return template_draft(grounding, self.lexicon, self.embed, self.name)


class TemplateDrafter:
    """Baseline: the metadata-only template."""

    name = "template"

    def __init__(self, lexicon: Lexicon, embed: Embedder):
        self.lexicon = lexicon
        self.embed = embed

    def draft(self, grounding: Grounding, seed: int = 0) -> Draft:
        return template_draft(grounding, self.lexicon, self.embed, self.name)
