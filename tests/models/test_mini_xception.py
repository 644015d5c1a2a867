import numpy as np

from fervid.models.mini_xception import build_mini_xception


def test_paper_sized_model_has_about_58k_parameters_and_softmax_output():
    model = build_mini_xception(width=1.0)
    assert 50_000 < model.count_params() < 65_000
    probs = np.asarray(model(np.zeros((3, 48, 48, 1), np.float32)))
    assert probs.shape == (3, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_width_multiplier_scales_the_model():
    assert build_mini_xception(width=2.0).count_params() > 3 * build_mini_xception(width=1.0).count_params()
