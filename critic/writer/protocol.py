"""The writer on the creator split with a validation side: what ``critic train writer`` and ``critic eval writer``
run (docs/design.md, "Evaluation protocol").

critic.split.three_way_split gives fit, validation and test. The decoder and the fluency gate learn from the
fit side only; the validation side calibrates the gate's threshold and the attribute confidences and chooses
the default drafter; the test side is reported once. Drafts for an evaluated side see neighbours from the
sides below it only (validation: fit; test: fit and validation), never a held-out description.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from critic.atomic import write_atomically
from critic.embed import MODEL_ID
from critic.records import Artwork
from critic.split import three_way_split
from critic.writer.calibration import CALIBRATION_FILE, calibrate_attributes
from critic.writer.critique import CritiqueWriter
from critic.writer.drafter import DecoderDrafter, Drafter, Embedder, RetrievalDrafter, TemplateDrafter
from critic.writer.edit import DEFAULT_DRAFTER, SentenceDrafter, default_drafter
from critic.writer.evaluate import evaluate_critiques, evaluate_writer
from critic.writer.fluency import FLUENCY_FILE, NgramModel, fit_fluency
from critic.writer.grounding import Grounder, StyleLike, VectorNeighbours, attribute_confidences
from critic.writer.inputs import WriterInputError
from critic.writer.lexicon import Lexicon, build_lexicon
from critic.writer.llm import LLM_DRAFTER, LlamaDrafter, LlamaUnavailableError, llm_available
from critic.writer.model import WriterModel, WriterModelError, load_writer
from critic.writer.train import WriterTrainConfig, train_writer

#: Bumped when what the writer trains on changes (2: the fit side only, no longer fit + validation).
TRAINING_SET = 2


@dataclass
class Sides:
    """Records of each side of critic.split.three_way_split, in input order."""

    fit: list[Artwork]
    validation: list[Artwork]
    test: list[Artwork]


def split_sides(records: Sequence[Artwork], seed: int = 0) -> Sides:
    split = three_way_split(records, seed=seed)
    by_id = {r.id: r for r in records}
    return Sides(*([by_id[i] for i in ids] for ids in (split.fit, split.validation, split.test)))


def metadata_only(record: Artwork) -> Artwork:
    """The record without its description: what a drafter may see of a held-out artwork."""
    return replace(record, description="")


def make_drafters(
    model: WriterModel | None, embed: Embedder, lexicon: Lexicon, fluency: NgramModel
) -> dict[str, Drafter]:
    """Every drafter the evaluation compares, by name: retrieve-and-edit with and without the decoder (its
    ranking, its samples), the decoder's own samples, both baselines and, with the optional extra ``llm``, the
    SmolLM2 drafter. Without a trained ``model`` (None) only those that need none.

    ``embed`` embeds draft texts: give it no persistent cache (critic.embed.memory_embedder).
    """
    drafters: list[Drafter] = [SentenceDrafter(None, embed, lexicon, fluency)]
    if model is not None:
        drafters += [
            default_drafter(model, embed, lexicon, fluency),
            SentenceDrafter(model, embed, lexicon, fluency, samples=8, decoder_weight=0.1),
            DecoderDrafter(model, embed, samples=8, lexicon=lexicon),
        ]
    drafters += [RetrievalDrafter(lexicon, embed), TemplateDrafter(lexicon, embed)]
    if llm_available():
        drafters.append(LlamaDrafter(embed, lexicon))
    return {d.name: d for d in drafters}


def train_writer_on_split(
    records: Sequence[Artwork],
    style: StyleLike,
    embed: Embedder,
    config: WriterTrainConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[WriterModel, dict]:
    """`critic train writer`: train on the descriptions of the fit side, conditioned on ``style``.

    ``embed`` should be the cached embedder of the build (the fit texts are already embedded there);
    the metadata-only texts it embeds once are cached too.
    """
    sides = split_sides(records)
    described = [r for r in sides.fit if r.description.strip()]
    texts = [r.text() for r in described]
    metadata_records = [metadata_only(r) for r in described]
    latents = style.latents(embed(texts), described)
    metadata_latents = style.latents(embed([r.text() for r in metadata_records]), metadata_records)
    return train_writer(
        described,
        latents,
        style.attributes(latents),
        metadata_latents=metadata_latents,
        lexicon=build_lexicon(sides.fit),
        config=config,
        embedding_model=MODEL_ID,
        log=log,
    )


def writer_identity(style_hash: str, config: WriterTrainConfig) -> str:
    """What a trained writer depends on: the style model (its training-data hash), the writer's settings and
    the side it trains on."""
    payload = json.dumps([MODEL_ID, style_hash, asdict(config), TRAINING_SET], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def calibrate_on_validation(sides: Sides, style: StyleLike, embed: Embedder) -> dict:
    """Attribute confidence thresholds and reliability on the validation side (critic.writer.calibration)."""
    latents = style.latents(embed([r.text() for r in sides.validation]), sides.validation)
    return calibrate_attributes(sides.validation, style.attributes(latents), attribute_confidences(style, latents))


def ensure_gates(directory: Path, records: Sequence[Artwork], style: StyleLike, embed: Embedder, identity: str) -> dict:
    """The fluency gate (``fluency.npz``) and attribute calibration (``calibration.json``) beside the writer,
    made on the fit and validation sides unless they were made for this ``identity``. Returns the calibration."""
    try:
        calibration = json.loads((directory / CALIBRATION_FILE).read_text())
        if calibration.get("identity") == identity and (directory / FLUENCY_FILE).is_file():
            return calibration
    except (OSError, ValueError):
        pass
    sides = split_sides(records)
    lexicon = build_lexicon(records)
    fit_fluency(sides.fit, sides.validation, lexicon).save(directory / FLUENCY_FILE)
    calibration = {"identity": identity, **calibrate_on_validation(sides, style, embed)}
    write_atomically(directory / CALIBRATION_FILE, json.dumps(calibration, indent=1).encode())
    return calibration


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
    on the fit side and saved; its gates (ensure_gates) likewise. Returns its provenance (training sizes,
    perplexities, seconds, reused)."""
    config = config or WriterTrainConfig()
    identity = writer_identity(style_hash, config)
    if not force:
        try:
            existing = load_writer(directory, latent_dim=style.latent_dim, embedding_model=MODEL_ID)
            if existing.config.provenance.get("identity") == identity:
                ensure_gates(directory, records, style, embed, identity)
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
    ensure_gates(directory, records, style, embed, identity)
    return {**model.config.provenance, "reused": False}


#: The issue's bound on drafted text: median reference-LM perplexity at most this multiple of the curators'.
FLUENCY_BOUND = 1.3


def choose_drafter(rows: Sequence[dict]) -> dict:
    """The validation rule for the default: the highest SBERT cosine among drafters whose fluency ratio is within
    FLUENCY_BOUND (all drafters when the reference LM is missing), the template aside (it is the fallback)."""
    drafting = [r for r in rows if r["drafter"] != "template"]
    fluent = [r for r in drafting if r.get("fluency_ratio", 0.0) <= FLUENCY_BOUND]
    best = max(fluent, key=lambda r: r["sbert_cosine"], default=None)
    return {
        "rule": f"highest SBERT cosine with fluency ratio <= {FLUENCY_BOUND}",
        "drafter": best["drafter"] if best else None,
        "candidates": [r["drafter"] for r in fluent],
    }


def described_grounder(records: Sequence[Artwork], style: StyleLike, embed: Embedder) -> Grounder:
    """Grounding whose neighbours are the described works of ``records``: what a held-out side drafts from."""
    described = [r for r in records if r.description.strip()]
    vectors = style.index_vectors(embed([r.text() for r in described]), described)
    return Grounder(embed, style, VectorNeighbours(described, vectors))


def evaluate_writer_on_split(
    records: Sequence[Artwork],
    style: StyleLike,
    model: WriterModel | None,
    embed: Embedder,
    embed_drafts: Embedder,
    *,
    drafters: Sequence[str] | None = None,
    limit: int | None = 150,
    fluency_samples: int = 40,
    critique_samples: int = 200,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict:
    """`critic eval writer`: every drafter on the validation side (where the default is chosen), then on the
    test side once; then critiques as a reader gets them on a sample of the test side (stock-sentence share,
    latency, evidence first).

    ``embed`` (cached) embeds record texts, ``embed_drafts`` (uncached) the drafts. ``drafters`` picks names
    from ``make_drafters`` (default: all). ``limit`` drafts for a seeded sample of each side's described works,
    ``fluency_samples`` of them are scored by the reference LM (slow on a CPU).
    """
    sides = split_sides(records)
    judge = build_lexicon(records)
    fluency = fit_fluency(sides.fit, sides.validation, judge)
    calibration = calibrate_on_validation(sides, style, embed)
    available = make_drafters(model, embed_drafts, judge, fluency)
    if LLM_DRAFTER in (drafters or ()) and LLM_DRAFTER not in available:
        raise LlamaUnavailableError(f"drafter {LLM_DRAFTER!r} needs the optional extra 'llm' (see the README)")
    unknown = [name for name in drafters or () if name not in available]
    if unknown:
        raise WriterInputError(f"unknown drafter {unknown[0]!r}; choose from {', '.join(available)}")
    chosen = [available[name] for name in (drafters or available)]
    result: dict = {
        "split": {"fit": len(sides.fit), "validation": len(sides.validation), "test": len(sides.test)},
        "default_drafter": DEFAULT_DRAFTER,
        "fluency_gate": {"quantile": 0.9, "threshold": round(fluency.threshold, 2)},
        "calibration": calibration,
    }
    below = {"validation": sides.fit, "test": [*sides.fit, *sides.validation]}
    grounders = {}
    for side in ("validation", "test"):
        grounders[side] = described_grounder(below[side], style, embed)
        if log:
            log(f"{side}: drafting for {limit or 'all'} held-out described artworks")
        result[side] = evaluate_writer(
            getattr(sides, side),
            chosen,
            grounders[side],
            embed_drafts,
            judge,
            limit=limit,
            fluency_samples=fluency_samples,
            seed=seed,
            log=log,
        )
    result["validation_choice"] = choose_drafter(result["validation"]["rows"])
    default = available.get(DEFAULT_DRAFTER) or chosen[0]
    writer = CritiqueWriter(default, judge, None, calibration["thresholds"])
    result["critiques"] = evaluate_critiques(
        sides.test, writer, grounders["test"], below["test"], judge, samples=critique_samples, seed=seed
    )
    return result
