"""critic.vectors.normalise: the one L2 normalisation."""

import numpy as np

from critic.vectors import normalise


def test_rows_get_unit_length_and_keep_their_direction():
    out = normalise(np.array([[3.0, 4.0], [0.0, -2.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)


def test_a_single_vector_and_a_zero_row():
    np.testing.assert_allclose(normalise(np.array([1.0, 1.0, 1.0, 1.0])), [0.5, 0.5, 0.5, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(normalise(np.zeros((1, 3))), [[0.0, 0.0, 0.0]])
