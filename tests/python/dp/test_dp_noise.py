"""The release's noise: OpenDP's discrete Laplace sampler, checked
statistically against the distribution the epsilon relies on, never
replayable, charged by OpenDP's own privacy map; and no SQL of the project
draws noise from Spark's rand(). Pure Python, no Spark."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from dbt_helpers import REPO_ROOT
from sflux.dp import noise

pytestmark = pytest.mark.unit

SCALE = 3.0
DRAWS = 200_000


def _draws(mechanism: noise.LaplaceMechanism, n: int) -> np.ndarray:
    values = mechanism([0] * n)
    assert all(type(v) is int for v in values[:1000]), "noise on counts must be whole numbers"
    return np.asarray(values, dtype=np.int64)


def _pmf(k: np.ndarray, scale: float) -> np.ndarray:
    """Discrete Laplace: P(k) = (1 - p) / (1 + p) * p^|k|, p = exp(-1/scale)."""
    p = math.exp(-1 / scale)
    return (1 - p) / (1 + p) * p ** np.abs(k)


def test_discrete_laplace_has_the_distribution_the_epsilon_relies_on():
    """A wrong scale, a bias or a lopsided tail would silently change the
    guarantee. Tolerances are about 5 standard errors for n = 200 000, so a
    correct sampler fails with probability < 1e-6 per check, while a 2 %
    error in the scale fails the mean |X| check."""
    mechanism = noise.discrete_laplace(sensitivity=3, epsilon=1.0)
    assert mechanism.scale == SCALE
    x = _draws(mechanism, DRAWS)
    p = math.exp(-1 / SCALE)
    variance = 2 * p / (1 - p) ** 2  # 17.83 for scale 3
    mean_abs = 2 * p / (1 - p**2)  # 2.945
    # mean: SE = sqrt(17.83 / n) = 0.0094 -> 0.05
    assert abs(x.mean()) < 0.05
    # mean |X|: Var|X| = 17.83 - 2.945^2 = 9.16, SE = 0.0068 -> 0.035
    assert abs(np.abs(x).mean() - mean_abs) < 0.035
    # variance: SE ~ sqrt(20) * scale^2 / sqrt(n) = 0.09 -> 0.45
    assert abs(x.var() - variance) < 0.45
    # Chi-square over k = -15..15 and both tails (df = 32): 90 is far
    # beyond the 1e-6 critical value.
    ks = np.arange(-15, 16)
    expected = _pmf(ks, SCALE) * DRAWS
    tail = (DRAWS - expected.sum()) / 2
    observed = np.array([np.count_nonzero(x == k) for k in ks])
    cells = np.concatenate([observed, [np.count_nonzero(x < -15), np.count_nonzero(x > 15)]])
    chi2 = float((((cells - np.concatenate([expected, [tail, tail]])) ** 2)
                  / np.concatenate([expected, [tail, tail]])).sum())
    assert chi2 < 90, chi2


def test_noise_is_fresh_every_release_and_cannot_be_replayed():
    """Noise anyone could regenerate (a seed, a predictable generator) could
    be subtracted. OpenDP draws from the OS's cryptographic source: two
    releases of the same values differ, and consecutive draws are
    uncorrelated (SE of the correlation = 1 / sqrt(50 000) = 0.0045 -> 0.025)."""
    mechanism = noise.discrete_laplace(sensitivity=3, epsilon=1.0)
    first, second = _draws(mechanism, 50_000), _draws(mechanism, 50_000)
    assert not np.array_equal(first, second)
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.025
    assert abs(np.corrcoef(first[:-1], first[1:])[0, 1]) < 0.025


def test_the_epsilon_charged_is_opendps_privacy_map():
    """The ledger records what OpenDP says the release costs at its
    sensitivity, and a larger sensitivity at the same scale costs more."""
    mechanism = noise.discrete_laplace(sensitivity=200, epsilon=0.25)
    assert mechanism.scale == 800.0
    assert mechanism.epsilon == pytest.approx(0.25, rel=1e-9)
    assert mechanism.epsilon == float(mechanism.measurement.map(200))
    assert float(mechanism.measurement.map(400)) == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize(("sensitivity", "epsilon"), [(0, 1.0), (10, 0.0), (-1, 1.0)])
def test_a_mechanism_needs_a_positive_sensitivity_and_epsilon(sensitivity, epsilon):
    with pytest.raises(Exception, match="sensitivity > 0 and epsilon > 0"):
        noise.discrete_laplace(sensitivity, epsilon)


def test_no_sql_of_the_project_draws_noise_from_spark_rand():
    """Spark's rand() is neither cryptographic nor safe for Laplace noise
    by inverse transform on doubles (Mironov 2012), and it can be seeded:
    no model, macro or SQL test may use it (or randn/random/uniform)."""
    pattern = re.compile(r"\b(rand|randn|random|uniform)\s*\(", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for folder in ("models", "macros", "tests")
        for path in sorted((REPO_ROOT / folder).rglob("*.sql"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
