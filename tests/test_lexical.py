import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from critic.lexical import LexicalProjector
from critic.vectors import normalise

FIT = [
    "Gilt bronze mantel clock by the Paris workshop of Thomire",
    "Bronze statuette of Hercules, Italian, Renaissance",
    "Ivory diptych with scenes of the Passion; Gothic, French",
    "Ivory comb carved with lovers in a garden",
    "Book of Hours, Use of Rome, illuminated by the Master of the Dresden Prayer Book",
    "Celadon-glazed stoneware bowl, Korean, Goryeo dynasty",
    "Stoneware jar with ash glaze; the bowl's foot is unglazed",
    "Portrait of a man in a fur-lined coat, oil on panel, Netherlandish",
]
QUERIES = [
    "A BRONZE clock, gilt; by Thomire (Paris)",
    "Ivory ivory ivory comb",
    "Café au lait stoneware — Goryeo",
    "",
    "words the vocabulary never saw",
]


def test_the_transform_is_scikit_learns_tfidf_projected_without_scikit_learn():
    projector = LexicalProjector.fit(FIT, dims=4)
    reference = TfidfVectorizer(sublinear_tf=True, stop_words="english", vocabulary=projector.vocabulary)
    reference.idf_ = projector.idf
    expected = normalise(np.asarray(reference.transform(QUERIES) @ projector.components.T, dtype=np.float32))
    got = projector.transform(QUERIES)
    assert np.allclose(got, expected, atol=1e-6)
    assert not got[3].any() and not got[4].any()
    assert np.allclose(np.linalg.norm(got[:3], axis=1), 1.0, atol=1e-6)
