"""bench/resampled.py: the synthetic catalogue of bench/distributed.py has distinct texts made of real ones, and
`critic build --catalog` reads it back as written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from critic.corpus import import_catalog

# Loaded from its file: with bench/ on sys.path, bench/api.py would shadow the project's `api` package.
_spec = importlib.util.spec_from_file_location("resampled", Path(__file__).parents[1] / "bench" / "resampled.py")
resampled = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resampled)
resampled_records, write_jsonl = resampled.resampled_records, resampled.write_jsonl


def test_records_are_distinct_mixtures_of_real_ones(walters_slice, tmp_path):
    records = resampled_records(500, seed=1, source=walters_slice)
    assert len({r.text_hash() for r in records}) == 500 == len({r.id for r in records})
    real = [w.description for w in walters_slice if w.description]
    described = [r for r in records if r.description]
    assert 0.5 < len(described) / len(records) < 0.95  # the slice's share of described records, about 0.7
    assert all(r.title in {w.title for w in walters_slice} for r in records)
    assert all(any(r.description[:10] in d for d in real) and r.description not in real for r in described)
    assert resampled_records(50, seed=1, source=walters_slice) == records[:50]
    write_jsonl(records, tmp_path / "c.jsonl")
    assert import_catalog(tmp_path / "c.jsonl", {}).records == records
