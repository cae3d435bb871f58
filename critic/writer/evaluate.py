"""The writing evaluation of docs/design.md: draft a description for each held-out artwork, compare with the
curator's.

The drafter sees the artwork without its description (its embedding, latent and neighbours come from the
metadata-only composed text; neighbours from the train split only) and is scored against the hidden
reference: SBERT cosine, ROUGE-L, BLEU-4, the hallucinated-fact rate (the fact check against the full
record, with a lexicon of the whole collection), distinct-2 and latency. All drafters and both baselines
run on the same groundings in one call.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from critic.records import Artwork
from critic.writer.critique import CritiqueWriter
from critic.writer.drafter import Drafter, Embedder
from critic.writer.factcheck import check_draft
from critic.writer.grounding import Grounder
from critic.writer.lexicon import Lexicon

_WORD = re.compile(r"\w+")


def metric_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased words (longest common subsequence).

    Example:
        >>> round(rouge_l("a bronze horse", "a small bronze horse"), 3)
        0.857
    """
    c, r = metric_tokens(candidate), metric_tokens(reference)
    if not c or not r:
        return 0.0
    previous = [0] * (len(r) + 1)
    for word in c:
        current = [0]
        for j, ref_word in enumerate(r):
            current.append(previous[j] + 1 if word == ref_word else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4(candidates: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002): clipped n-gram precisions pooled over the corpus, geometric
    mean of n = 1..4, brevity penalty; one reference per candidate.

    Example:
        >>> bleu4(["the cat sat on the mat"], ["the cat sat on the mat"])
        1.0
    """
    matches, totals = [0] * 4, [0] * 4
    candidate_length = reference_length = 0
    for candidate, reference in zip(candidates, references, strict=True):
        c, r = metric_tokens(candidate), metric_tokens(reference)
        candidate_length += len(c)
        reference_length += len(r)
        for n in range(1, 5):
            counts, ref_counts = _ngrams(c, n), _ngrams(r, n)
            matches[n - 1] += sum(min(k, ref_counts[g]) for g, k in counts.items())
            totals[n - 1] += max(len(c) - n + 1, 0)
    if min(matches) == 0 or candidate_length == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4
    brevity = min(0.0, 1 - reference_length / candidate_length)
    return math.exp(log_precision + brevity)


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Share of distinct word n-grams among all n-grams of ``texts`` (diversity across drafts)."""
    grams = [g for t in texts for g in _ngrams(metric_tokens(t), n).elements()]
    return len(set(grams)) / len(grams) if grams else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def evaluate_writer(
    test: Sequence[Artwork],
    drafters: Sequence[Drafter],
    grounder: Grounder,
    embed: Embedder,
    judge: Lexicon,
    *,
    critique_writer: CritiqueWriter | None = None,
    critique_samples: int = 50,
    limit: int | None = None,
    seed: int = 0,
    log=None,
) -> dict:
    """Run the writing protocol on the test artworks that have a description.

    ``judge`` is the lexicon the fact check uses to score every drafter (build it from the whole
    collection). ``critique_writer`` (optional) is timed end to end, grounding included, on
    ``critique_samples`` artworks for the per-critique latency. ``limit`` evaluates a seeded sample.
    """
    references = [r for r in test if r.description.strip()]
    if limit is not None and limit < len(references):
        references = random.Random(seed).sample(references, limit)
    if not references:
        raise ValueError("no test artwork has a description to compare with")
    hidden = [replace(r, description="") for r in references]
    started = time.perf_counter()
    groundings = grounder.ground_many(hidden)
    grounding_seconds = (time.perf_counter() - started) / len(hidden)
    reference_vectors = embed([r.description for r in references])
    rows = []
    examples: dict[str, list[dict]] = {}
    for drafter in drafters:
        texts, latencies, candidates, rejected = [], [], 0, 0
        for g in groundings:
            t0 = time.perf_counter()
            draft = drafter.draft(g, seed)
            latencies.append(time.perf_counter() - t0)
            texts.append(draft.text)
            candidates += draft.candidates
            rejected += draft.rejected
        vectors = embed(texts)
        cosine = np.sum(vectors * reference_vectors, axis=1)
        flagged = [bool(check_draft(t, r, judge)) for t, r in zip(texts, references, strict=True)]
        rows.append(
            {
                "drafter": drafter.name,
                "sbert_cosine": float(cosine.mean()),
                "rouge_l": float(np.mean([rouge_l(t, r.description) for t, r in zip(texts, references, strict=True)])),
                "bleu4": bleu4(texts, [r.description for r in references]),
                "hallucination_rate": float(np.mean(flagged)),
                "distinct_2": distinct_n(texts, 2),
                "mean_words": float(np.mean([len(t.split()) for t in texts])),
                "latency_p50_s": _percentile(latencies, 50),
                "candidate_rejection_rate": rejected / candidates if candidates else 0.0,
            }
        )
        examples[drafter.name] = [
            {"id": r.id, "title": r.title, "draft": t, "reference": r.description}
            for r, t in list(zip(references, texts, strict=True))[:3]
        ]
        if log:
            log(f"{drafter.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items() if isinstance(v, float)))
    result = {
        "artworks": len(references),
        "grounding_seconds_per_artwork": grounding_seconds,
        "rows": rows,
        "examples": examples,
    }
    if critique_writer is not None:
        latencies = []
        for record in hidden[:critique_samples]:
            t0 = time.perf_counter()
            critique_writer.critique(grounder.ground(record), tone="critique", seed=seed)
            latencies.append(time.perf_counter() - t0)
        result["critique_latency_p50_s"] = _percentile(latencies, 50)
        result["critique_latency_p90_s"] = _percentile(latencies, 90)
        result["critique_drafter"] = critique_writer.drafter.name
    return result


def format_table(result: dict) -> str:
    """The evaluation rows as a Markdown table."""
    columns = [
        ("drafter", "drafter", "{}"),
        ("sbert_cosine", "SBERT cos", "{:.3f}"),
        ("rouge_l", "ROUGE-L", "{:.3f}"),
        ("bleu4", "BLEU-4", "{:.4f}"),
        ("hallucination_rate", "halluc.", "{:.1%}"),
        ("distinct_2", "distinct-2", "{:.3f}"),
        ("mean_words", "words", "{:.0f}"),
        ("latency_p50_s", "p50 s/draft", "{:.3f}"),
        ("candidate_rejection_rate", "cand. rejected", "{:.1%}"),
    ]
    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in result["rows"]:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")
    return "\n".join(lines)
