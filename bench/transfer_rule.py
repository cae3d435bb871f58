"""Chooses the drafter's transfer rule (critic.writer.edit.MIN_WORD_RATE) on the validation side.

A neighbour's curator sentence may be refilled for the target only if every word of it that the target's record
does not use occurs at least N times per 10,000 of the fit side's curator sentences. For each N this drafts for the same
seeded sample of held-out described works (descriptions hidden, as `critic eval writer` does) and prints the
reference LM's fluency ratio with its interval, the independent unsupported-content rate, SBERT cosine to the
hidden description and how often the template stands in, then applies the rule: the smallest N whose fluency
ratio's upper 95% bound is within critic.writer.protocol.FLUENCY_BOUND. The test side is never read.

    python bench/transfer_rule.py --home /path/to/a/full/build [--limit 150]
"""

from __future__ import annotations

import argparse
import sys

from critic.embed import EmbeddingCache, memory_embedder
from critic.home import Home
from critic.store import ArtworkStore
from critic.style_model import load_style_model
from critic.writer.edit import SentenceDrafter
from critic.writer.evaluate import evaluate_writer
from critic.writer.fluency import fit_fluency
from critic.writer.lexicon import build_lexicon
from critic.writer.protocol import FLUENCY_BOUND, described_grounder, split_sides

RATES = (0.0, 2.0, 7.0, 18.0, 50.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--limit", type=int, default=150, help="held-out described works drafted for (150)")
    args = parser.parse_args()
    home = Home.resolve(args.home)
    records, style = ArtworkStore(home.store_path).all(), load_style_model(home.vae_dir)
    cache = EmbeddingCache(home.cache_path)
    embed, embed_drafts = memory_embedder(cache, maxsize=50_000), memory_embedder(cache)
    sides = split_sides(records)
    judge = build_lexicon(records)
    fluency = fit_fluency(sides.fit, sides.validation, judge)
    grounder = described_grounder(sides.fit, style, embed)
    drafters = []
    for n in RATES:
        drafter = SentenceDrafter(None, embed_drafts, judge, fluency, min_word_rate=n)
        drafter.name = f"N={n}"
        drafters.append(drafter)
    result = evaluate_writer(
        sides.validation, drafters, grounder, embed_drafts, judge, limit=args.limit, fluency_samples=args.limit,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(f"validation: {result['artworks']} held-out described works, fluency on {result['fluency_artworks']}")
    print("| N per 10k sentences | fluency ratio [95% CI] | unsupported | SBERT cos | template | words |")
    print("|---|---|---|---|---|---|")
    for row in result["rows"]:
        low, high = row.get("fluency_ratio_95ci", ["n/a", "n/a"])
        print(f"| {row['drafter'][2:]} | {row.get('fluency_ratio', float('nan')):.2f} [{low}, {high}] "
              f"| {row['unsupported_content_rate']:.1%} | {row['sbert_cosine']:.3f} "
              f"| {row['template_fallback_rate']:.0%} | {row['mean_words']:.0f} |")
    within = [float(r["drafter"][2:]) for r in result["rows"]
              if r.get("fluency_ratio_95ci", [0, 9])[1] <= FLUENCY_BOUND]
    print(f"rule (smallest N whose upper bound is <= {FLUENCY_BOUND}): N = {min(within) if within else 'none'}")


if __name__ == "__main__":
    main()
