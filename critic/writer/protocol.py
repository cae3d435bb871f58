"""The writer on the split of docs/design.md: what ``critic train writer`` and ``critic eval writer`` run.

Both take the whole collection and split it by creator (critic.split); the writer trains on the train
side's descriptions only, and the evaluation drafts for the test side with neighbours from the train
side only, so no held-out description reaches a drafter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from critic.embed import MODEL_ID
from critic.records import Artwork
from critic.split import split_by_creator
from critic.writer.critique import CritiqueWriter
from critic.writer.drafter import DecoderDrafter, Drafter, Embedder, RetrievalDrafter, TemplateDrafter
from critic.writer.evaluate import evaluate_writer
from critic.writer.grounding import Grounder, StyleLike, VectorNeighbours
from critic.writer.inputs import WriterInputError
from critic.writer.lexicon import Lexicon, build_lexicon
from critic.writer.llm import LLM_DRAFTER, LlamaDrafter, LlamaUnavailableError, llm_available
from critic.writer.model import WriterModel, WriterModelError, load_writer
from critic.writer.train import WriterTrainConfig, train_writer

#: The drafter the service uses; the evaluation measures it beside the others.
DEFAULT_DRAFTER = "decoder+lead"


def metadata_only(record: Artwork) -> Artwork:
    """The record without its description: what a drafter may see of a held-out artwork."""
    return replace(record, description="")


def make_drafters(model: WriterModel | None, embed: Embedder, lexicon: Lexicon | None = None) -> dict[str, Drafter]:
    """Every drafter by name: decoder variants, both baselines and, when the optional extra ``llm`` is
    installed, the SmolLM2 drafter "smollm2" (critic.writer.llm), sharing one embedder. Without a trained
    ``model`` (None) only the drafters that need none; give a lexicon then.

    ``embed`` here embeds draft texts; give it no cache (drafts are never asked for twice).
    """
    if lexicon is None and model is None:
        raise ValueError("make_drafters needs a lexicon when no writer model is given")
    lexicon = lexicon or model.lexicon
    decoders = [] if model is None else [
        DecoderDrafter(model, embed, samples=8, lexicon=lexicon),
        DecoderDrafter(model, embed, samples=8, neighbours=3, lexicon=lexicon),
        DecoderDrafter(model, embed, samples=4, neighbours=3, prompted=2, lexicon=lexicon),
        DecoderDrafter(model, embed, samples=8, lead=True, lexicon=lexicon),
        DecoderDrafter(model, embed, samples=8, neighbours=3, lead=True, lexicon=lexicon),
    ]
    baselines = [RetrievalDrafter(lexicon, embed), TemplateDrafter(lexicon, embed)]
    optional = [LlamaDrafter(embed, lexicon, name=LLM_DRAFTER)] if llm_available() else []
    return {d.name: d for d in [*decoders, *baselines, *optional]}


def default_drafter(model: WriterModel, embed: Embedder, lexicon: Lexicon | None = None) -> Drafter:
    """The service's drafter; pass a lexicon of the whole collection so the fact check knows every
    creator's name."""
    return make_drafters(model, embed, lexicon)[DEFAULT_DRAFTER]


def split_records(records: Sequence[Artwork], seed: int = 0) -> tuple[list[Artwork], list[Artwork]]:
    """(train, test) records by critic.split.split_by_creator."""
    train_ids, test_ids = split_by_creator(records, seed=seed)
    by_id = {r.id: r for r in records}
    return [by_id[i] for i in train_ids], [by_id[i] for i in test_ids]


def train_writer_on_split(
    records: Sequence[Artwork],
    style: StyleLike,
    embed: Embedder,
    config: WriterTrainConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[WriterModel, dict]:
    """`critic train writer`: train on the descriptions of the train split, conditioned on ``style``.

    ``embed`` should be the cached embedder of the build (the train texts are already embedded there);
    the metadata-only texts it embeds once are cached too.
    """
    train, _ = split_records(records)
    described = [r for r in train if r.description.strip()]
    texts = [r.text() for r in described]
    metadata_texts = [metadata_only(r).text() for r in described]
    latents = style.latents(embed(texts), texts)
    metadata_latents = style.latents(embed(metadata_texts), metadata_texts)
    return train_writer(
        described,
        latents,
        style.attributes(latents),
        metadata_latents=metadata_latents,
        lexicon=build_lexicon(train),
        config=config,
        embedding_model=MODEL_ID,
        log=log,
    )


def writer_identity(style_hash: str, config: WriterTrainConfig) -> str:
    """What a trained writer depends on: the style model (its training-data hash) and the writer's settings."""
    payload = json.dumps([MODEL_ID, style_hash, asdict(config)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_writer(
    directory: Path,
    records: Sequence[Artwork],
    style: StyleLike,
    style_hash: str,
    embed: Embedder,
    config: WriterTrainConfig | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """The writer in ``directory``, reused when it was trained for this style model and config, else trained
    on the train split and saved. Returns its provenance (training sizes, perplexities, seconds, reused)."""
    config = config or WriterTrainConfig()
    identity = writer_identity(style_hash, config)
    if not force:
        try:
            existing = load_writer(directory, latent_dim=style.latent_dim, embedding_model=MODEL_ID)
            if existing.config.provenance.get("identity") == identity:
                return {**existing.config.provenance, "reused": True}
        except WriterModelError:
            pass
    model, metrics = train_writer_on_split(records, style, embed, config, log)
    last = metrics["history"][-1]
    model.config.provenance.update(
        identity=identity,
        seconds=round(metrics["seconds"], 1),
        vocab_size=metrics["vocab_size"],
        **{k: round(v, 2) for k, v in last.items() if k.endswith("perplexity")},
    )
    model.save(directory)
    return {**model.config.provenance, "reused": False}


def evaluate_writer_on_split(
    records: Sequence[Artwork],
    style: StyleLike,
    model: WriterModel | None,
    embed: Embedder,
    embed_drafts: Embedder,
    *,
    drafters: Sequence[str] | None = None,
    limit: int | None = None,
    critique_samples: int = 50,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict:
    """`critic eval writer`: the writing protocol of docs/design.md for every drafter and both baselines.

    ``embed`` (cached) embeds record texts, ``embed_drafts`` (uncached) the drafts. ``drafters`` picks
    names from ``make_drafters`` (default: all; with ``model`` None, those that need no trained writer, and
    no per-critique latency). ``limit`` evaluates a seeded sample of the test side.
    """
    train, test = split_records(records)
    described = [r for r in train if r.description.strip()]
    texts = [r.text() for r in described]
    index_vectors = style.index_vectors(style.latents(embed(texts), texts))
    grounder = Grounder(embed, style, VectorNeighbours(described, index_vectors))
    judge = build_lexicon(records)
    available = make_drafters(model, embed_drafts, judge)
    if LLM_DRAFTER in (drafters or ()) and LLM_DRAFTER not in available:
        raise LlamaUnavailableError(f"drafter {LLM_DRAFTER!r} needs the optional extra 'llm' (see the README)")
    unknown = [name for name in drafters or () if name not in available]
    if unknown:
        raise WriterInputError(f"unknown drafter {unknown[0]!r}; choose from {', '.join(available)}")
    chosen = [available[name] for name in (drafters or available)]
    result = evaluate_writer(
        test,
        chosen,
        grounder,
        embed_drafts,
        judge,
        critique_writer=CritiqueWriter(available[DEFAULT_DRAFTER], judge) if DEFAULT_DRAFTER in available else None,
        critique_samples=critique_samples,
        limit=limit,
        seed=seed,
        log=log,
    )
    result["split"] = {"train": len(train), "test": len(test), "train_with_description": len(described)}
    return result
