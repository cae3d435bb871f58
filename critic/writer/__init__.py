"""The writer: drafts descriptions and critiques from the style latent, grounded in the record's facts.

Public API (see each module for details):
- ``train_writer`` / ``WriterTrainConfig`` (train.py), ``load_writer`` / ``WriterModel`` (model.py)
- ``Grounder`` / ``VectorNeighbours`` (grounding.py) build a ``Grounding`` for an artwork
- ``DecoderDrafter``, ``RetrievalDrafter``, ``TemplateDrafter`` (drafter.py) draft a description
- ``CritiqueWriter`` (critique.py) writes ``Critique``s in the tones label, critique and scholarly
- ``artwork_from_text``, ``WriterInputError`` (inputs.py) for artworks given as text
- ``check_draft`` (factcheck.py), ``evaluate_writer`` (evaluate.py)
"""

from critic.writer.critique import Critique, CritiqueWriter, Section
from critic.writer.drafter import (
    DecoderDrafter,
    Draft,
    Drafter,
    Grounding,
    Neighbour,
    RetrievalDrafter,
    TemplateDrafter,
)
from critic.writer.evaluate import evaluate_writer, format_table
from critic.writer.factcheck import Violation, check_draft
from critic.writer.grounding import Grounder, VectorNeighbours
from critic.writer.inputs import TONES, WriterInputError, artwork_from_text
from critic.writer.lexicon import Lexicon, build_lexicon
from critic.writer.model import WriterModel, WriterModelError, load_writer
from critic.writer.train import WriterTrainConfig, train_writer

__all__ = [
    "TONES",
    "Critique",
    "CritiqueWriter",
    "DecoderDrafter",
    "Draft",
    "Drafter",
    "Grounder",
    "Grounding",
    "Lexicon",
    "Neighbour",
    "RetrievalDrafter",
    "Section",
    "TemplateDrafter",
    "VectorNeighbours",
    "Violation",
    "WriterInputError",
    "WriterModel",
    "WriterModelError",
    "WriterTrainConfig",
    "artwork_from_text",
    "build_lexicon",
    "check_draft",
    "evaluate_writer",
    "format_table",
    "load_writer",
    "train_writer",
]
