import numpy as np
import pytest

from training.llm2rec.geometry import geometry


def test_geometry_tells_a_collapsed_space_from_a_spread_one():
    rng = np.random.default_rng(0)
    spread = rng.standard_normal((500, 64))
    collapsed = np.outer(rng.standard_normal(500), rng.standard_normal(64)) + 5.0 + 0.01 * spread
    assert geometry(spread)["mean_pairwise_cosine"] == pytest.approx(0.0, abs=0.02)
    assert geometry(spread)["effective_rank"] > 50
    assert geometry(collapsed)["effective_rank"] < 3
    assert geometry(collapsed)["mean_pairwise_cosine"] > 0.9
