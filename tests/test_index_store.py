"""VectorIndex: exact and IVF search, filters inside it, stable ties, add/remove, atomic persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexStoreError
from index.store import VectorIndex
from index.synthetic import clustered_vectors

N = 600
DIM = 32


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray]:
    vectors, _ = clustered_vectors(N, dim=DIM, clusters=12, seed=1)
    return [f"a{i:04d}" for i in range(N)], vectors


def exact_top(ids: list[str], vectors: np.ndarray, query: np.ndarray, k: int, allowed=None) -> list[str]:
    scores = vectors @ (query / np.linalg.norm(query))
    order = sorted(
        (i for i in range(len(ids)) if allowed is None or ids[i] in allowed),
        key=lambda i: (-scores[i], ids[i]),
    )
    return [ids[i] for i in order[:k]]


def build(data, kind: str) -> VectorIndex:
    ids, vectors = data
    index = VectorIndex.build(ids, vectors, ivf_threshold=200 if kind == "ivf" else 10_000, nprobe=2)
    assert index.kind == kind
    return index


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_finds_the_exact_neighbours(data, kind):
    ids, vectors = data
    index = build(data, kind)
    hits = index.search(vectors[7], k=10)
    assert [i for i, _ in hits] == exact_top(ids, vectors, vectors[7], 10)
    assert hits[0] == ("a0007", pytest.approx(1.0, abs=1e-5))
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.parametrize("filter_depth", [0, 2048])  # through FAISS's id selector, or the gathered vectors
def test_filters_act_inside_the_search_and_fill_k(data, kind, filter_depth):
    ids, vectors = data
    index = build(data, kind)
    index.filter_depth = filter_depth
    # Far from the query: a post-filter of the top few hundred hits would find none of them.
    far = exact_top(ids, -vectors, vectors[3], 25)
    allowed = set(far[::2])  # 13 ids
    hits = index.search(vectors[3], k=10, allow=allowed)
    assert [i for i, _ in hits] == exact_top(ids, vectors, vectors[3], 10, allowed)
    assert len(index.search(vectors[3], k=50, allow=allowed)) == len(allowed)
    assert index.search(vectors[3], k=10, allow=["not-indexed"]) == []


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_excluded_ids_never_come_back(data, kind):
    ids, vectors = data
    index = build(data, kind)
    top = [i for i, _ in index.search(vectors[0], k=20)]
    hits = index.search(vectors[0], k=20, exclude=top[:10])
    assert [i for i, _ in hits] == top[10:] + [i for i, _ in hits][10:]
    assert not set(top[:10]) & {i for i, _ in hits}
    assert len(hits) == 20
    allowed = set(top[:15])
    assert {i for i, _ in index.search(vectors[0], k=20, allow=allowed, exclude=top[:10])} == set(top[10:15])


@pytest.mark.parametrize(("threshold", "filtered"), [(10_000, False), (50, False), (50, True)])
def test_ties_are_broken_by_id_and_more_hits_never_reorder_the_first(threshold, filtered):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 8)).astype(np.float32)
    vectors = np.repeat(base, 40, axis=0)  # 40 identical copies of each of 3 vectors
    ids = [f"id{n:03d}" for n in rng.permutation(120)]
    index = VectorIndex.build(ids, vectors, ivf_threshold=threshold)
    allow = ids if filtered else None  # a small filter is ranked from the gathered vectors alone
    first_group = sorted(ids[:40])
    for k in (1, 5, 39, 40, 41):
        hits = index.search(base[0], k=k, allow=allow)
        assert [i for i, _ in hits[:40]] == first_group[: min(k, 40)]
    deep = index.search(base[0], k=120, allow=allow)
    assert sorted(i for i, _ in deep) == sorted(ids)
    for k in (3, 17, 55, 90):
        assert index.search(base[0], k=k, allow=allow) == deep[:k]


def test_ivf_beyond_the_probed_lists_stays_complete_and_prefix_consistent(data):
    ids, vectors = data
    index = build(data, "ivf")
    index.nprobe, index.filter_depth = 1, 0  # force the probed-lists-first ranking
    everything = index.search(vectors[11], k=N)
    assert sorted(i for i, _ in everything) == sorted(ids)
    for k in (5, 60, 200, 599):
        assert index.search(vectors[11], k=k) == everything[:k]
    allowed = set(ids[::37])
    filtered = index.search(vectors[11], k=10, allow=allowed)
    assert len(filtered) == 10 and {i for i, _ in filtered} <= allowed


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_upsert_and_remove_keep_search_consistent(data, kind):
    ids, vectors = data
    index = build(data, kind)
    removed = [i for i, _ in index.search(vectors[20], k=8)]
    assert index.remove(removed + ["never-there"]) == 8
    assert len(index) == N - 8 and "a0020" not in index
    assert not {i for i, _ in index.search(vectors[20], k=50)} & set(removed)
    with pytest.raises(KeyError):
        index.vector("a0020")

    newcomer = -vectors[20]
    index.upsert(["new"], newcomer[None, :], ["h-new"])
    assert index.search(newcomer, k=1)[0][0] == "new"
    assert index.fingerprint("new") == "h-new"

    # Replacing a vector moves the id and leaves no stale copy behind.
    index.upsert(["a0100"], vectors[30][None, :])
    assert len(index) == N - 8 + 1
    assert [i for i, _ in index.search(vectors[30], k=2)] == sorted(["a0030", "a0100"])
    np.testing.assert_allclose(index.vector("a0100"), vectors[30], atol=1e-6)


def test_the_index_turns_ivf_above_the_threshold_and_back_below_half(data):
    ids, vectors = data
    index = VectorIndex(DIM, ivf_threshold=300)
    index.upsert(ids[:299], vectors[:299])
    assert index.kind == "flat"
    index.upsert(ids[299:], vectors[299:])
    assert index.kind == "ivf" and len(index) == N
    assert [i for i, _ in index.search(vectors[5], k=5)] == exact_top(ids, vectors, vectors[5], 5)
    index.remove(ids[:460])
    assert index.kind == "flat" and len(index) == N - 460
    assert [i for i, _ in index.search(vectors[500], k=5)] == exact_top(ids[460:], vectors[460:], vectors[500], 5)


def test_diff_names_what_to_encode_and_remove(data):
    ids, vectors = data
    index = VectorIndex.build(ids[:3], vectors[:3], fingerprints=["h0", "h1", "h2"])
    diff = index.diff({"a0000": "h0", "a0001": "changed", "b": "hb"})
    assert (diff.missing, diff.changed, diff.removed) == (["b"], ["a0001"], ["a0002"])
    assert diff.to_encode == ["b", "a0001"]


def test_bad_vectors_are_refused_with_a_clear_error():
    index = VectorIndex(4)
    with pytest.raises(ValueError, match="shape"):
        index.upsert(["a"], np.ones((1, 3)))
    with pytest.raises(ValueError, match="zero vector"):
        index.upsert(["a"], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        index.upsert(["a"], np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="duplicate"):
        index.upsert(["a", "a"], np.ones((2, 4)))
    assert len(index) == 0


def test_keys_stay_with_their_artwork_and_are_never_reused(data, tmp_path):
    ids, vectors = data
    index = VectorIndex.build(ids[:10], vectors[:10])
    assert [index.key_of(i) for i in ids[:10]] == list(range(10)) and index.key_of("other") is None
    index.upsert([ids[3]], vectors[20][None, :])  # a new vector keeps the key
    index.remove([ids[9]])
    index.upsert([ids[9], "new"], vectors[21:23])  # a returning id gets a fresh key, like any newcomer
    assert (index.key_of(ids[3]), index.key_of(ids[9]), index.key_of("new")) == (3, 10, 11)
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    loaded.upsert(["newer"], vectors[23][None, :])
    assert [loaded.key_of(i) for i in (ids[3], "new", "newer")] == [3, 11, 12]


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_save_and_load_give_identical_results(data, kind, tmp_path):
    ids, vectors = data
    index = build(data, kind)
    index.upsert(["a0001"], vectors[2][None, :], ["fp"])
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx", dim=DIM, identity={})
    assert loaded.kind == kind and len(loaded) == len(index) and loaded.fingerprint("a0001") == "fp"
    allowed = set(ids[::3])
    for q in (0, 9, 333):
        assert loaded.search(vectors[q], k=15) == index.search(vectors[q], k=15)
        assert loaded.search(vectors[q], k=15, allow=allowed) == index.search(vectors[q], k=15, allow=allowed)
    loaded.remove(["a0009"])  # still changeable after loading (the IVF direct map survived)
    assert "a0009" not in {i for i, _ in loaded.search(vectors[9], k=5)}


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_memory_mapped_index_searches_alike_and_is_copied_into_memory_on_the_first_change(data, kind, tmp_path):
    ids, vectors = data
    index = build(data, kind)
    index.save(tmp_path / "idx")
    mapped = VectorIndex.load(tmp_path / "idx", dim=DIM, identity={}, mapped=True)
    assert mapped._mapped
    allowed = set(ids[::3])
    for q in (0, 9, 333):
        assert mapped.search(vectors[q], k=15) == index.search(vectors[q], k=15)
        assert mapped.search(vectors[q], k=15, allow=allowed) == index.search(vectors[q], k=15, allow=allowed)
    # FAISS aborts the whole process on a write to a mapped flat index: each change must copy it first.
    for changed in (index, mapped):
        changed.upsert(["a0001", "new"], vectors[[2, 3]], ["fp", "fp2"])
        changed.remove(["a0009"])
    assert not mapped._mapped and mapped.fingerprint("new") == "fp2"
    for q in (1, 9, 333):
        assert mapped.search(vectors[q], k=15) == index.search(vectors[q], k=15)
    remapped = VectorIndex.load(tmp_path / "idx", dim=DIM, identity={}, mapped=True)
    remapped.remove(["a0002"])  # a remove alone copies too
    assert "a0002" not in {i for i, _ in remapped.search(vectors[2], k=5)}


def test_the_manifest_records_identity_sizes_and_checksums(data, tmp_path):
    ids, vectors = data
    identity = {"embedding_model": "all-MiniLM-L6-v2", "vae": "sha256:abc", "latent_dim": DIM}
    VectorIndex.build(ids, vectors, identity=identity).save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["identity"] == identity
    assert (manifest["dim"], manifest["count"], manifest["index_type"]) == (DIM, N, "flat")
    assert set(manifest["files"]) == {"index", "ids"}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())


def test_saving_again_replaces_the_files_and_leaves_no_debris(data, tmp_path):
    ids, vectors = data
    index = VectorIndex.build(ids[:50], vectors[:50])
    index.save(tmp_path)
    index.upsert(ids[50:60], vectors[50:60])
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json", *(entry["name"] for entry in manifest["files"].values())]
    )
    assert len(VectorIndex.load(tmp_path)) == 60


def saved(data, tmp_path) -> tuple[VectorIndex, dict]:
    ids, vectors = data
    index = VectorIndex.build(ids, vectors, identity={"vae": "v1"})
    index.save(tmp_path)
    return index, json.loads((tmp_path / "manifest.json").read_text())


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("role", ["index", "ids"])
def test_a_truncated_file_is_detected(data, tmp_path, role):
    _, manifest = saved(data, tmp_path)
    path = tmp_path / manifest["files"][role]["name"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IndexCorruptError) as error:
        VectorIndex.load(tmp_path)
    assert "truncated" in one_line(error)


@pytest.mark.parametrize("role", ["index", "ids"])
def test_a_flipped_byte_is_detected(data, tmp_path, role):
    _, manifest = saved(data, tmp_path)
    path = tmp_path / manifest["files"][role]["name"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(IndexCorruptError) as error:
        VectorIndex.load(tmp_path)
    assert "checksum" in one_line(error)


def test_a_missing_file_or_a_broken_manifest_is_detected(data, tmp_path):
    _, manifest = saved(data, tmp_path)
    (tmp_path / manifest["files"]["index"]["name"]).unlink()
    with pytest.raises(IndexCorruptError) as error:
        VectorIndex.load(tmp_path)
    assert "missing" in one_line(error)
    (tmp_path / "manifest.json").write_text('{"format": 1, "dim": ')
    with pytest.raises(IndexCorruptError):
        VectorIndex.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 1}')
    with pytest.raises(IndexCorruptError):
        VectorIndex.load(tmp_path)


def test_a_manifest_whose_count_lies_is_detected(data, tmp_path):
    _, manifest = saved(data, tmp_path)
    manifest["count"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError) as error:
        VectorIndex.load(tmp_path)
    assert "disagrees" in one_line(error)


def test_no_index_at_all_is_reported_as_missing(tmp_path):
    with pytest.raises(IndexMissingError) as error:
        VectorIndex.load(tmp_path / "nothing-here")
    assert issubclass(IndexMissingError, IndexStoreError)
    one_line(error)


def test_another_identity_or_dimension_is_a_mismatch(data, tmp_path):
    saved(data, tmp_path)
    with pytest.raises(IndexMismatchError) as error:
        VectorIndex.load(tmp_path, identity={"vae": "v2"})
    assert "vae" in one_line(error)
    with pytest.raises(IndexMismatchError) as error:
        VectorIndex.load(tmp_path, dim=64)
    assert "32-d" in one_line(error)
    assert len(VectorIndex.load(tmp_path, dim=DIM, identity={"vae": "v1"})) == N
    for error_type in (IndexCorruptError, IndexMismatchError):
        assert issubclass(error_type, IndexStoreError)


def test_above_the_pq_threshold_the_index_is_compressed_and_still_finds_neighbours(tmp_path):
    vectors, _ = clustered_vectors(3000, dim=DIM, clusters=12, seed=2)
    ids = [f"p{i:04d}" for i in range(3000)]
    index = VectorIndex.build(ids, vectors, ivf_threshold=200, pq_threshold=2000, nprobe=16)
    assert index.kind == "ivfpq"
    queries = range(0, 3000, 60)
    found = [index.search(vectors[q], k=10) for q in queries]
    recall = np.mean([len({i for i, _ in hits} & set(exact_top(ids, vectors, vectors[q], 10))) / 10
                      for q, hits in zip(queries, found, strict=True)])
    # 32-d in sixteen 8-bit codes (128 bytes a vector become 16) on noisy synthetic clusters: 0.86 here.
    assert recall >= 0.75
    loaded = VectorIndex.load(index.save(tmp_path).parent)
    assert loaded.kind == "ivfpq" and loaded.search(vectors[7], k=10) == index.search(vectors[7], k=10)
    index.remove(ids[:2001])
    assert index.kind == "ivf" and len(index) == 999


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_a_streamed_index_is_the_one_build_makes(data, kind):
    """Filled batch by batch, sized and trained in advance: the same type and, probing every list, the same hits."""
    ids, vectors = data
    thresholds = {"flat": (10_000, 20_000), "ivf": (200, 20_000), "ivfpq": (200, 500)}[kind]
    batches = [(ids[i : i + 100], vectors[i : i + 100], ["x"] * len(ids[i : i + 100])) for i in range(0, N, 100)]
    index = VectorIndex.streamed(N, vectors[::2], batches, ivf_threshold=thresholds[0], pq_threshold=thresholds[1])
    built = VectorIndex.build(ids, vectors, ivf_threshold=thresholds[0], pq_threshold=thresholds[1])
    assert index.kind == built.kind == kind and len(index) == N and index.fingerprint("a0007") == "x"
    if kind != "ivfpq":  # PQ codes depend on what they were trained on
        index.nprobe = built.nprobe = index.nlist or 1
        for q in (3, 300, 599):
            assert [i for i, _ in index.search(vectors[q], k=5)] == exact_top(ids, vectors, vectors[q], 5)
