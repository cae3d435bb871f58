import os
import shutil

import numpy as np
import pytest

from critic.embed import MODEL_ID, load_sentence_model, model_cache_dir
from critic.fast_embed import (
    BASE_MODEL_ID,
    FAST_MODEL_ID,
    FastEncoder,
    ensure_exported,
    export_path,
    load_fast_encoder,
    model_id_for,
    verify_export,
)

SHORT = ["a marble bust of a Roman emperor", "stormy seascape with a lighthouse", "x"]
LONG = "An illuminated leaf from a Book of Hours, painted in Bruges. " * 40  # far past 256 tokens: truncated


@pytest.fixture(scope="session")
def model_cache():
    return model_cache_dir()  # the export the build uses: made once per test run


@pytest.fixture(scope="session")
def int8_file(model_cache):
    return ensure_exported(model_cache, "int8")


@pytest.fixture(scope="session")
def fp32_file(model_cache):
    return ensure_exported(model_cache, "fp32")


@pytest.fixture(scope="session")
def texts(walters_slice):
    return [r.text() for r in walters_slice[:40]] + SHORT + [LONG]


@pytest.fixture(scope="session")
def reference(texts):
    return load_sentence_model().encode(texts, batch_size=64, normalize_embeddings=True)


def cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_int8_vectors_match_sentence_transformers(int8_file, texts, reference):
    vectors = FastEncoder(int8_file, precision="int8").encode(texts)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = cosines(vectors, reference)
    # int8 drifts most on very short texts ("x": about 0.98); the mean is what the benchmark holds to 0.99
    assert cos.mean() >= 0.99 and cos.min() >= 0.97


def test_fp32_export_reproduces_the_pipeline_exactly(fp32_file, texts, reference):
    # Same tokenizer, truncation, mean pooling and normalisation: only float rounding may differ.
    vectors = FastEncoder(fp32_file, precision="fp32").encode(texts)
    assert cosines(vectors, reference).min() > 0.9999


def test_rows_come_back_in_input_order_whatever_the_batching(fp32_file, texts):
    by_one = FastEncoder(fp32_file, precision="fp32", threads=1).encode(texts, batch_size=1)
    sorted_parallel = FastEncoder(fp32_file, precision="fp32", threads=2).encode(texts, batch_size=4)
    split_operators = FastEncoder(fp32_file, precision="fp32", threads=2, parallel_batches=False)
    input_order = FastEncoder(fp32_file, precision="fp32", sort_by_length=False)
    assert np.allclose(sorted_parallel, by_one, atol=1e-5)
    assert np.allclose(split_operators.encode(texts, batch_size=7), by_one, atol=1e-5)
    assert np.allclose(input_order.encode(texts, batch_size=5), by_one, atol=1e-5)


def test_int8_vector_of_a_text_does_not_depend_on_its_batch_mates(int8_file, texts):
    # one text per run by default, so per-run activation scales are the text's own: a query matches the build
    encoder = FastEncoder(int8_file, precision="int8")
    together = encoder.encode(texts)
    assert np.array_equal(encoder.encode(texts[3]), together[3])
    assert np.array_equal(encoder.encode(texts[::-1])[::-1], together)


def test_single_text_empty_input_and_unnormalised_output(int8_file):
    encoder = FastEncoder(int8_file, precision="int8")
    assert encoder.encode([]).shape == (0, 384)
    one = encoder.encode(SHORT[0])
    assert one.shape == (384,) and np.allclose(one, encoder.encode(SHORT[:1])[0])
    raw = encoder.encode(SHORT, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), encoder.encode(SHORT), atol=1e-6)
    assert encoder.get_embedding_dimension() == 384


def test_bad_arguments_are_refused(int8_file):
    encoder = FastEncoder(int8_file, precision="int8")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(SHORT, batch_size=0)
    with pytest.raises(ValueError, match="numpy"):
        encoder.encode(SHORT, convert_to_numpy=False)
    with pytest.raises(ValueError, match="unknown precision"):
        model_id_for("int4")


def test_variants_have_their_own_model_ids():
    ids = {BASE_MODEL_ID, model_id_for("fp32"), model_id_for("int8")}
    assert len(ids) == 3 and FAST_MODEL_ID == model_id_for("int8") == MODEL_ID
    assert all(i.startswith(BASE_MODEL_ID) for i in ids)


def test_export_is_cached_and_reused(model_cache, int8_file):
    before = os.stat(int8_file)
    assert verify_export(int8_file, precision="int8")
    assert ensure_exported(model_cache, "int8") == int8_file
    after = os.stat(int8_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # load_fast_encoder goes through the same cache
    assert load_fast_encoder(model_cache, "int8").model_id == FAST_MODEL_ID
    assert os.stat(int8_file).st_mtime_ns == before.st_mtime_ns


def copy_export(source, folder):
    folder.mkdir(exist_ok=True)
    target = export_path(folder, "int8")
    shutil.copy(source, target)
    shutil.copy(source.with_suffix(".json"), target.with_suffix(".json"))
    assert verify_export(target, precision="int8")
    return target


def test_altered_or_mismatched_exports_are_not_trusted(int8_file, tmp_path):
    target = copy_export(int8_file, tmp_path)
    assert not verify_export(target, precision="fp32")  # another variant's file
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    target.write_bytes(bytes(data))
    assert not verify_export(target, precision="int8")
    target = copy_export(int8_file, tmp_path / "sidecar")
    target.with_suffix(".json").write_text("{not json")
    assert not verify_export(target, precision="int8")
    target.with_suffix(".json").unlink()
    assert not verify_export(target, precision="int8")


def test_truncated_export_is_exported_again(int8_file, tmp_path, texts, reference):
    target = copy_export(int8_file, tmp_path)
    target.write_bytes(target.read_bytes()[:1000])
    assert ensure_exported(tmp_path, "int8") == target
    assert verify_export(target, precision="int8") and target.stat().st_size > 1_000_000
    vectors = FastEncoder(target, precision="int8").encode(texts)
    assert cosines(vectors, reference).mean() >= 0.99
