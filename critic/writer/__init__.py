"""The writer: descriptions and critiques grounded in the record, its style latent, its neighbours and the
collection.

Public API for inference (see each module for details); training and evaluation live in critic.writer.train,
critic.writer.protocol and critic.writer.evaluate, which importing this package does not load:
- ``load_writer`` / ``WriterModel`` (model.py): the VAE-conditioned decoder
- ``Grounder`` / ``VectorNeighbours`` (grounding.py) build a ``Grounding`` for an artwork
- ``SentenceDrafter`` / ``default_drafter`` (edit.py): the service's drafter; ``DecoderDrafter``,
  ``RetrievalDrafter``, ``TemplateDrafter`` (drafter.py)
- ``CritiqueWriter`` (critique.py) writes ``Critique``s in the tones label, critique and scholarly
- ``NgramModel`` (fluency.py): the drafter's fluency gate; ``CollectionStats`` (collection.py)
- ``artwork_from_text``, ``WriterInputError`` (inputs.py) for artworks given as text
- ``check_draft`` (factcheck.py)
"""

from critic.writer.collection import CollectionStats
from critic.writer.critique import RULES_VERSION, Critique, CritiqueWriter, Section
from critic.writer.drafter import (
    DecoderDrafter,
    Draft,
    Drafter,
    Grounding,
    Neighbour,
    RetrievalDrafter,
    TemplateDrafter,
)
from critic.writer.edit import DEFAULT_DRAFTER, SentenceDrafter, default_drafter
from critic.writer.factcheck import Violation, check_draft
from critic.writer.fluency import NgramModel
from critic.writer.grounding import Grounder, VectorNeighbours
from critic.writer.inputs import TONES, WriterInputError, artwork_from_text
from critic.writer.lexicon import Lexicon, build_lexicon
from critic.writer.model import WriterModel, WriterModelError, load_writer

__all__ = [
    "DEFAULT_DRAFTER",
    "RULES_VERSION",
    "TONES",
    "CollectionStats",
    "Critique",
    "CritiqueWriter",
    "DecoderDrafter",
    "Draft",
    "Drafter",
    "Grounder",
    "Grounding",
    "Lexicon",
    "Neighbour",
    "NgramModel",
    "RetrievalDrafter",
    "Section",
    "SentenceDrafter",
    "TemplateDrafter",
    "VectorNeighbours",
    "Violation",
    "WriterInputError",
    "WriterModel",
    "WriterModelError",
    "artwork_from_text",
    "build_lexicon",
    "check_draft",
    "default_drafter",
    "load_writer",
]
