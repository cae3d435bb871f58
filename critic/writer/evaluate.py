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
from critic.writer.collection import CLOSENESS_K, CollectionStats
from critic.writer.critique import CritiqueWriter
from critic.writer.drafter import Drafter, Embedder
from critic.writer.factcheck import check_draft
from critic.writer.faithfulness import unsupported_rate, visible_text
from critic.writer.grounding import Grounder
from critic.writer.lexicon import Lexicon, words
from critic.writer.reference import MISSING, perplexities, reference_available
from critic.writer.slots import SENTENCE_END, sentences

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


def _interval(values: Sequence[float]) -> list[float]:
    """A normal-approximation 95% interval of the mean."""
    v = np.asarray(values, dtype=float)
    half = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return [round(float(v.mean() - half), 4), round(float(v.mean() + half), 4)]


def ratio_interval(
    drafted: Sequence[float], curated: Sequence[float], seed: int = 0, rounds: int = 2000
) -> list[float]:
    """A 95% bootstrap interval of median(drafted) / median(curated), the works resampled in pairs.

    Example:
        >>> ratio_interval([2.0] * 10, [1.0] * 10)
        [2.0, 2.0]
    """
    a, b = np.asarray(drafted, dtype=float), np.asarray(curated, dtype=float)
    rows = np.random.default_rng(seed).integers(0, len(a), size=(rounds, len(a)))
    ratios = np.nanmedian(a[rows], axis=1) / np.nanmedian(b[rows], axis=1)
    return [round(float(x), 3) for x in np.percentile(ratios, [2.5, 97.5])]


def _cited(source: str, by_id: dict[str, Artwork]) -> list[Artwork]:
    """The neighbours a draft's source names ("neighbour:12+decoder" -> record 12)."""
    return [by_id[i] for i in re.findall(r"neighbour:([^+]+)", source) if i in by_id]


def first_sentences(text: str, n: int = 3) -> str:
    return " ".join(sentences(text)[:n])


def evaluate_writer(
    side: Sequence[Artwork],
    drafters: Sequence[Drafter],
    grounder: Grounder,
    embed: Embedder,
    judge: Lexicon,
    *,
    limit: int | None = None,
    fluency_samples: int = 40,
    seed: int = 0,
    log=None,
) -> dict:
    """Every drafter on the described artworks of ``side`` (a seeded sample of ``limit``), descriptions hidden.

    ``judge`` is the lexicon of the whole collection (the fact check's flag rate). The reference LM scores the
    first ``fluency_samples`` drafts of each drafter and the curators' first three sentences of the same works.
    """
    references = [r for r in side if r.description.strip()]
    if limit is not None and limit < len(references):
        references = random.Random(seed).sample(references, limit)
    if not references:
        raise ValueError("no held-out artwork has a description to compare with")
    hidden = [replace(r, description="") for r in references]
    started = time.perf_counter()
    groundings = grounder.ground_many(hidden)
    grounding_seconds = (time.perf_counter() - started) / len(hidden)
    neighbours = {n.record.id: n.record for g in groundings for n in g.neighbours}
    reference_vectors = embed([r.description for r in references])
    scored = references[:fluency_samples]
    fluent = reference_available() and bool(scored)
    reference_ppl = perplexities([first_sentences(r.description) for r in scored]) if fluent else []
    rows = []
    examples: dict[str, list[dict]] = {}
    for drafter in drafters:
        drafts, latencies = [], []
        for g in groundings:
            t0 = time.perf_counter()
            drafts.append(drafter.draft(g, seed))
            latencies.append(time.perf_counter() - t0)
        texts = [d.text for d in drafts]
        cosine = np.sum(embed(texts) * reference_vectors, axis=1)
        pairs = zip(texts, references, strict=True)
        counts = [
            unsupported_rate(t, h, _cited(d.source, neighbours)) for t, h, d in zip(texts, hidden, drafts, strict=True)
        ]
        flagged = [bool(check_draft(t, r, judge)) for t, r in zip(texts, references, strict=True)]
        row = {
            "drafter": drafter.name,
            "sbert_cosine": float(cosine.mean()),
            "sbert_cosine_95ci": _interval(cosine),
            "rouge_l": float(np.mean([rouge_l(t, r.description) for t, r in pairs])),
            "bleu4": bleu4(texts, [r.description for r in references]),
            "unsupported_content_rate": sum(u for u, _ in counts) / max(sum(n for _, n in counts), 1),
            "fact_check_flag_rate": float(np.mean(flagged)),
            "template_fallback_rate": float(np.mean([d.source == "template" for d in drafts])),
            "distinct_2": distinct_n(texts, 2),
            "mean_words": float(np.mean([len(t.split()) for t in texts])),
            "latency_p50_s": _percentile(latencies, 50),
        }
        if fluent:
            ppl = perplexities(texts[: len(scored)])
            row["fluency_median_ppl"] = float(np.nanmedian(ppl))
            row["curator_median_ppl"] = float(np.nanmedian(reference_ppl))
            row["fluency_ratio"] = row["fluency_median_ppl"] / row["curator_median_ppl"]
            row["fluency_ratio_95ci"] = ratio_interval(ppl, reference_ppl, seed)
        rows.append(row)
        examples[drafter.name] = [
            {"id": r.id, "title": r.title, "draft": t, "reference": r.description}
            for r, t in list(zip(references, texts, strict=True))[:3]
        ]
        if log:
            log(f"{drafter.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)))
    return {
        "artworks": len(references),
        "fluency_artworks": len(scored) if fluent else 0,
        **({} if fluent else {"fluency": MISSING}),
        "grounding_seconds_per_artwork": grounding_seconds,
        "rows": rows,
        "examples": examples,
    }


_QUOTED = re.compile(r'“[^”]*”|"[^"]*"')
_PARENS = re.compile(r"\([^()]*\)")


def template_key(sentence: str, vocabulary: set[str]) -> str:
    """A sentence with what varies from work to work masked: quotations, parentheses, numbers and any word of
    the record's or its neighbours' fields become placeholders.

    Example:
        >>> template_key("Its medium, bronze, is rare here: 12 of 900 works.", {"bronze"})
        'its medium, x, is rare here: # of # works.'
    """
    text = _PARENS.sub("(…)", _QUOTED.sub("“…”", sentence))
    text = re.sub(r"\d[\d,.]*\d|\d", "#", text)
    text = re.sub(r"[A-Za-zÀ-ÿ][\w'’-]*", lambda m: "x" if m.group(0).lower() in vocabulary else m.group(0), text)
    text = re.sub(r"\bx(?:[\s,;]+x)+\b", "x", text)
    return text.lower()


def _vocabulary(critique: dict, record: Artwork, others: Sequence[Artwork]) -> set[str]:
    texts = [visible_text(record), *(visible_text(o) for o in others)]
    texts += [a["value"] for a in critique["evidence"].get("attributes", {}).values()]
    return {w.lower() for t in texts for w in words(t)}


def evaluate_critiques(
    side: Sequence[Artwork],
    writer: CritiqueWriter,
    grounder: Grounder,
    below: Sequence[Artwork],
    judge: Lexicon,
    *,
    samples: int = 200,
    tone: str = "critique",
    seed: int = 0,
) -> dict:
    """Critiques of a seeded sample of ``side`` as a reader gets them (descriptions visible, neighbours from
    ``below``): how often each sentence template recurs, latency p50/p99 with grounding, evidence first.

    The facts line ("What it is") and the attributed quotation of the record's own description are left out
    of the template count: the first is the catalogue's data in one fixed form, the second quotes the museum.
    """
    rng = random.Random(seed)
    chosen = rng.sample(list(side), min(samples, len(side)))
    probe = rng.sample(list(below), min(300, len(below)))
    probed = grounder.ground_many(probe, CLOSENESS_K)
    closeness = [float(np.mean([n.score for n in g.neighbours])) for g in probed if g.neighbours]
    writer.collection = CollectionStats.build([*below, *side], judge, closeness)
    by_id = {r.id: r for r in below}
    latencies, counts = [], Counter()
    quoted = described = 0
    drafted_sections = 0
    for record in chosen:
        t0 = time.perf_counter()
        critique = writer.critique(grounder.ground(record, 8), tone=tone, seed=seed).to_json()
        latencies.append(time.perf_counter() - t0)
        evidence = critique["evidence"]
        if record.description.strip():
            described += 1
            used = evidence["description"].get("sentences", [])
            quoted += bool(used) and all(s in record.description for s in used)
        else:
            drafted_sections += evidence["description"]["source"] == "draft"
        others = [by_id[n["id"]] for n in evidence["neighbours"] if n["id"] in by_id]
        vocabulary = _vocabulary(critique, record, others)
        keys = set()
        for section in critique["sections"]:
            if section["title"] in ("What it is", "Description") and evidence["description"]["source"] != "draft":
                continue
            if section["title"] == "What it is":
                continue
            keys.update(template_key(s, vocabulary) for s in SENTENCE_END.split(section["text"]) if s.strip())
        counts.update(keys)
    top = counts.most_common(5)
    return {
        "critiques": len(chosen),
        "tone": tone,
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p99_s": _percentile(latencies, 99),
        "most_frequent_templates": [{"template": k, "share": n / len(chosen)} for k, n in top],
        "top_template_share": top[0][1] / len(chosen) if top else 0.0,
        "described": described,
        "described_quoting_own_description": quoted / described if described else None,
        "undescribed_with_drafted_description": drafted_sections,
    }


def format_table(result: dict) -> str:
    """One side's rows as a Markdown table."""
    columns = [
        ("drafter", "drafter", "{}"),
        ("sbert_cosine", "SBERT cos", "{:.3f}"),
        ("rouge_l", "ROUGE-L", "{:.3f}"),
        ("bleu4", "BLEU-4", "{:.4f}"),
        ("unsupported_content_rate", "unsupported", "{:.1%}"),
        ("fact_check_flag_rate", "fact-check flags", "{:.1%}"),
        ("fluency_ratio", "fluency ratio", "{:.2f}"),
        ("fluency_ratio_95ci", "its 95% CI", "{}"),
        ("distinct_2", "distinct-2", "{:.3f}"),
        ("mean_words", "words", "{:.0f}"),
        ("template_fallback_rate", "template", "{:.0%}"),
        ("latency_p50_s", "p50 s/draft", "{:.3f}"),
    ]
    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in result["rows"]:
        cells = [fmt.format(row[key]) if key in row else "n/a" for key, _, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """`critic eval writer` as text: both sides' tables, the critiques' figures and the calibration."""
    choice = result["validation_choice"]
    lines = [
        f"default drafter: {result['default_drafter']}; the validation rule ({choice['rule']}) picks: "
        f"{choice['drafter'] or 'none (no drafter but the template is within the bound)'}"
    ]
    for side in ("validation", "test"):
        part = result[side]
        fluency = f"fluency on {part['fluency_artworks']}" if part["fluency_artworks"] else part.get("fluency", "")
        lines += ["", f"{side}: {part['artworks']} held-out described artworks ({fluency})", format_table(part)]
    c = result["critiques"]
    lines += [
        "",
        f"critiques ({c['critiques']} test-side works, {c['tone']} tone, grounding included): "
        f"p50 {c['latency_p50_s']:.3f} s, p99 {c['latency_p99_s']:.3f} s",
        f"described works quoting their own description: {c['described_quoting_own_description']:.0%} "
        f"of {c['described']}",
        "most frequent sentence templates (share of critiques):",
        *(f"  {t['share']:.1%}  {t['template']}" for t in c["most_frequent_templates"]),
        "",
        "attribute thresholds (calibrated on validation, target agreement "
        f"{result['calibration']['target_precision']:.0%}): "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["calibration"]["thresholds"].items()),
        f"fluency gate: SLOR >= {result['fluency_gate']['threshold']} "
        f"(passed by {result['fluency_gate']['quantile']:.0%} of validation curator sentences)",
    ]
    return "\n".join(lines)
