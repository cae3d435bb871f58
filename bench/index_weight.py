"""Chooses the index's latent weight (critic.style_model.INDEX_LATENT_WEIGHT) on the validation side.

For each weight w the index stores [w * latent, sqrt(1 - w^2) * input]; this prints macro precision@10 per
variant of `critic eval recommend` and their mean over the three variants a gallery's catalogue meets
(other creators, label-blind, metadata-only). The test side is never read.

    python bench/index_weight.py --home /path/to/a/full/build
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from critic.eval_recommend import Protocol
from critic.evaluate import dense_scorer
from critic.home import Home
from critic.style_model import mix_vectors

WEIGHTS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CHOSEN_FROM = ("other-creators", "label-blind", "metadata-only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    protocol = Protocol.load(Home.resolve(args.home), side="validation")
    hits: dict[str, dict[float, dict[str, np.ndarray]]] = {}
    for variant in protocol.variants(log=lambda line: print(line, file=sys.stderr, flush=True)):
        parts = variant.catalogue.style.index_parts(variant.catalogue.embeddings, variant.catalogue.records)
        for w in WEIGHTS:
            scores = protocol.precision(variant, dense_scorer(mix_vectors(parts.latent_block, parts.input_block, w)))
            hits.setdefault(variant.name, {}).setdefault(w, {}).update(scores)
    macro = {v: {w: float(np.mean([h.mean() for h in by_label.values()])) for w, by_label in ws.items()}
             for v, ws in hits.items()}
    print("| variant | " + " | ".join(f"w={w}" for w in WEIGHTS) + " |")
    print("|---|" + "---|" * len(WEIGHTS))
    for variant, row in macro.items():
        print(f"| {variant} | " + " | ".join(f"{row[w]:.3f}" for w in WEIGHTS) + " |")
    mean = {w: float(np.mean([macro[v][w] for v in CHOSEN_FROM])) for w in WEIGHTS}
    print("| mean of " + ", ".join(CHOSEN_FROM) + " | " + " | ".join(f"{mean[w]:.3f}" for w in WEIGHTS) + " |")
    print(f"best weight on validation: {max(mean, key=mean.get)}")


if __name__ == "__main__":
    main()
