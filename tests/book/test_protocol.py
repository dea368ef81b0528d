"""The comparison protocol: Student's t from its density, the detectable effect, verdicts and divergence."""

import math

import numpy as np
import pytest
import torch

from lmbasics.book.protocol import compare, detectable_effect, diverged, student_t_cdf, student_t_quantile

# Critical values from printed t tables (two-sided 5% and one-sided 80%), for 1, 2, 4 and 9 degrees of freedom.
TABLE = {
    (0.975, 1): 12.706,
    (0.975, 2): 4.303,
    (0.975, 4): 2.776,
    (0.975, 9): 2.262,
    (0.80, 2): 1.061,
    (0.80, 9): 0.883,
}


@pytest.mark.parametrize(("p", "df"), list(TABLE))
def test_t_quantiles_match_printed_tables(p, df):
    assert student_t_quantile(p, df) == pytest.approx(TABLE[(p, df)], abs=1e-3)


def test_t_cdf_matches_torch_sampling_and_the_cauchy_closed_form():
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-9)  # df = 1 is Cauchy: 1/2 + atan(x)/pi
    generator = torch.Generator().manual_seed(0)
    normal = torch.randn(400_000, generator=generator, dtype=torch.float64)
    chi2 = torch.randn(400_000, 3, generator=generator, dtype=torch.float64).pow(2).sum(1)
    samples = (normal / torch.sqrt(chi2 / 3)).numpy()
    assert student_t_cdf(1.5, 3) == pytest.approx(float(np.mean(samples <= 1.5)), abs=3e-3)
    assert student_t_cdf(-1.5, 3) == pytest.approx(1 - student_t_cdf(1.5, 3))


def test_detectable_effect_scales_with_spread_and_seeds():
    assert detectable_effect(0.01, 3) == pytest.approx((4.303 + 1.061) * 0.01 / math.sqrt(3), rel=1e-3)
    assert detectable_effect(0.01, 10) < detectable_effect(0.01, 3) < detectable_effect(0.02, 3)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        detectable_effect(0.01, 1)


def test_a_consistent_difference_is_resolved_and_a_noisy_one_is_not():
    clear = compare("RoPE", [4.00, 4.10, 4.05], "NoPE", [4.13, 4.23, 4.19])
    assert clear.resolved and clear.mean == pytest.approx(0.1333, abs=1e-3)
    assert clear.verdict.startswith("RoPE is lower than NoPE by 0.133")
    noisy = compare("SwiGLU", [4.00, 4.10, 4.05], "SiLU", [4.05, 4.06, 4.12])
    assert not noisy.resolved and noisy.verdict.startswith("no difference larger than")
    assert noisy.row()["verdict"] == "no difference"
    mixed = compare("a", [1.0, 1.0, 1.0], "b", [1.5, 1.6, 0.99])  # a large mean with one seed against it
    assert not mixed.resolved


def test_comparisons_refuse_unpaired_or_diverged_runs():
    with pytest.raises(ValueError, match="paired seeds"):
        compare("a", [1.0, 2.0], "b", [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="not finite"):
        compare("a", [1.0, 2.0], "b", [1.0, math.nan])


def test_divergence_is_non_finite_or_above_uniform():
    assert diverged(math.nan, 4096) and diverged(math.inf, 4096) and diverged(8.4, 4096)
    assert not diverged(8.3, 4096) and not diverged(3.0, 4096)  # ln 4096 = 8.318
