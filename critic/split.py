"""The evaluation split (docs/design.md, "Protocols"): by creator, and never one text on both sides.

Records that share their first-listed creator, an identical description or an identical embedded text are
joined into one group (union-find over those keys), and whole groups go to one side. Only the first creator
counts: co-credits such as "French | Flemish" or "Francesco Petrarca | Venetian" would otherwise chain
nearly half of the Walters collection into one group that always lands on the train side, leaving the test
side with no Safavid or Byzantine work at all. Records with no creator group by their text alone.

Groups are taken in a seeded shuffled order, and each joins the test side while it fits under the target
count, so one large group (a generic creator such as "Egyptian" holds hundreds of records) cannot make the
share swing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from critic.records import Artwork, fold_case


def split_by_creator(
    records: Sequence[Artwork], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split record ids into (train ids, test ids), each in input order; deterministic for a seed.

    Example:
        >>> from critic.records import Artwork
        >>> records = [Artwork(id=str(i), title=f"Work {i}", creators=[f"Maker {i % 5}"]) for i in range(50)]
        >>> train, test = split_by_creator(records, test_fraction=0.2)
        >>> len(train), len(test)
        (40, 10)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    ids = [record.id for record in records]
    if len(set(ids)) != len(ids):
        raise ValueError("record ids must be unique to split them")
    target = test_fraction * len(records)
    groups = _shuffled_groups(records, seed)
    test_count = 0
    in_test = [False] * len(records)
    # First only groups that fit under the target; then, if it is still short, any group that brings the
    # count closer (a small collection would otherwise get an empty test side).
    for may_overshoot in (False, True):
        for group in groups:
            grown = test_count + len(group)
            if in_test[group[0]] or not (
                grown <= target or (may_overshoot and abs(grown - target) < abs(test_count - target))
            ):
                continue
            test_count = grown
            for index in group:
                in_test[index] = True
    train = [record_id for record_id, test in zip(ids, in_test, strict=True) if not test]
    test = [record_id for record_id, test in zip(ids, in_test, strict=True) if test]
    return train, test


@dataclass(frozen=True)
class Split:
    """Record ids on each side, each in input order: ``fit`` trains the models, ``validation`` makes every
    choice, ``test`` is reported once. ``fit`` and ``validation`` together are the train side of
    ``split_by_creator``, so the test side is the same whether or not a validation split is carved out."""

    fit: list[str]
    validation: list[str]
    test: list[str]


def three_way_split(
    records: Sequence[Artwork], validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> Split:
    """``split_by_creator``'s test side, and a validation side carved out of its train side the same way.

    Example:
        >>> from critic.records import Artwork
        >>> records = [Artwork(id=str(i), title=f"Work {i}", creators=[f"Maker {i % 10}"]) for i in range(100)]
        >>> split = three_way_split(records)
        >>> len(split.fit), len(split.validation), len(split.test)
        (70, 10, 20)
    """
    train, test = split_by_creator(records, test_fraction, seed)
    chosen = set(train)
    train_records = [r for r in records if r.id in chosen]
    fit, validation = split_by_creator(train_records, validation_fraction / (1 - test_fraction), seed)
    return Split(fit, validation, test)


def _shuffled_groups(records: Sequence[Artwork], seed: int) -> list[list[int]]:
    """Groups of record indices that must stay on one side, in a seeded shuffled order."""
    parent = list(range(len(records)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_with_key: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        for key in _group_keys(record):
            other = first_with_key.setdefault(key, index)
            parent[root(index)] = root(other)
    groups: dict[int, list[int]] = {}
    for index in range(len(records)):
        groups.setdefault(root(index), []).append(index)
    # Groups come out ordered by their first record, so the shuffle depends on the seed and the input only.
    ordered = list(groups.values())
    random.Random(seed).shuffle(ordered)
    return ordered


def _group_keys(record: Artwork) -> Iterator[tuple[str, str]]:
    if record.creators:
        yield "creator", fold_case(record.creators[0])
    description = " ".join(record.description.split())
    if description:
        yield "description", description
    yield "text", record.text()
