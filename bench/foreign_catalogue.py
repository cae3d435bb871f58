"""A catalogue the model was not tuned for, through `critic build --catalog`: Walters without its descriptions and
without the four labels the protocol scores (period, style, culture, classification), as a gallery's export
with title, artist, date, medium, object type and keywords would be. The labels are held back and scored.

It writes that CSV, builds it with the real command (style model and index trained on the catalogue itself),
then measures precision@10 of the built index (what `critic similar` searches) against MiniLM and TF-IDF on
the same texts, over the build's own test side, with paired bootstrap intervals.

    python bench/foreign_catalogue.py --out /tmp/foreign [--size 6000]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

from critic.corpus import load_walters
from critic.embed import EmbeddingCache, embed_texts
from critic.evaluate import (
    EVAL_LABELS,
    dense_scorer,
    label_values,
    paired_difference,
    precision_at_k,
    summarise,
    tfidf_scorer,
)
from critic.home import Home
from critic.split import three_way_split
from critic.store import ArtworkStore
from critic.style_model import load_style_model

COLUMNS = ("ObjectNumber", "Title", "Artist", "Date", "Medium", "ObjectType", "Subjects")
MAPPING = (
    "id=ObjectNumber,title=Title,creators=Artist,date_text=Date,medium=Medium,object_type=ObjectType,keywords=Subjects"
)


def write_catalogue(path: Path, size: int, seed: int) -> dict[str, dict[str, str]]:
    """The stripped CSV of a seeded sample of Walters; returns the held-back labels by id."""
    records = load_walters()
    sample = random.Random(seed).sample(records, min(size, len(records)))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in sample:
            writer.writerow([r.id, r.title, "|".join(r.creators), r.date_text, r.medium, r.object_type,
                             "|".join(r.keywords)])
    return {r.id: {name: getattr(r, name) for name in EVAL_LABELS} for r in sample}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a folder for the CSV and the build")
    parser.add_argument("--size", type=int, default=6000, help="artworks in the catalogue (default 6000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    held_back = write_catalogue(out / "catalogue.csv", args.size, args.seed)
    home = Home(out / "home")
    command = [sys.executable, "-m", "critic.cli", "build", "--catalog", str(out / "catalogue.csv"),
               "--map", MAPPING, "--home", str(home.root), "--no-writer"]
    print("$", " ".join(command[2:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    subprocess.run([sys.executable, "-m", "critic.cli", "info", "--home", str(home.root)], check=True)

    records = ArtworkStore(home.store_path).all()
    for r in records:  # the labels come back for scoring only: the build never saw them
        for name, value in held_back[r.id].items():
            setattr(r, name, value)
    style = load_style_model(home.vae_dir)
    embeddings, _ = embed_texts([r.text() for r in records], EmbeddingCache(home.cache_path))
    split = three_way_split(records)
    row_of = {r.id: i for i, r in enumerate(records)}
    queries = np.array([row_of[i] for i in split.test], dtype=np.int64)
    methods = {
        "tfidf": tfidf_scorer([r.text() for r in records]),
        "minilm": dense_scorer(embeddings),
        "index (critic similar)": dense_scorer(style.index_vectors(embeddings, records)),
    }
    hits = {m: precision_at_k(scorer, records, queries) for m, scorer in methods.items()}
    labelled = {n: int((label_values(records, n)[queries] != "").sum()) for n in EVAL_LABELS}
    print(f"\n{len(records)} artworks, {len(queries)} test-side queries; labelled queries: {labelled}\n")
    print("| method | " + " | ".join([*EVAL_LABELS, "macro"]) + " |")
    print("|---|" + "---|" * (len(EVAL_LABELS) + 1))
    for method, per_label in hits.items():
        row = summarise(per_label)
        cells = [f"{row[n]['p']:.3f} [{row[n]['low']:.3f}, {row[n]['high']:.3f}]" for n in [*EVAL_LABELS, "macro"]]
        print(f"| {method} | " + " | ".join(cells) + " |")
    shipped = hits["index (critic similar)"]
    for baseline in ("minilm", "tfidf"):
        d = paired_difference(shipped, hits[baseline])
        print(f"index minus {baseline} (macro): {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")


if __name__ == "__main__":
    main()
