import numpy as np

from critic.embed import DIM, EmbeddingCache, embed_texts, encode_query


def test_embeddings_are_unit_vectors_and_semantic():
    vectors, encoded = embed_texts(["a marble bust of a Roman emperor", "a stone portrait head", "a silver spoon"])
    assert vectors.shape == (3, DIM) and encoded == 3
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_cache_reuses_vectors_and_embeds_only_new_texts(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    first, encoded = embed_texts(["an ivory diptych", "a gilt bronze clock"], cache)
    assert encoded == 2 and len(cache) == 2
    again, encoded = embed_texts(["a gilt bronze clock", "an ivory diptych", "a lacquer box"], cache)
    assert encoded == 1 and len(cache) == 3
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    # a fresh process would open the same file: the vectors persist
    assert len(EmbeddingCache(tmp_path / "cache.sqlite")) == 3


def test_cache_is_keyed_by_model(tmp_path):
    embed_texts(["an ivory diptych"], EmbeddingCache(tmp_path / "c.sqlite"))
    assert len(EmbeddingCache(tmp_path / "c.sqlite", model_id="another-model")) == 0


def test_query_encoding_matches_batch_encoding():
    vectors, _ = embed_texts(["stormy seascape with a lighthouse"])
    assert np.allclose(encode_query("stormy seascape with a lighthouse"), vectors[0], atol=1e-5)
