"""The noise of a release: OpenDP's discrete Laplace mechanism, on whole numbers.

Why OpenDP, and why whole numbers:
- Laplace noise drawn by inverse transform on doubles (what Spark's rand()
  allowed) leaks through the gaps in floating-point values: some outputs
  can only come from some inputs (Mironov, CCS 2012). Counts and cents are
  integers, and the discrete Laplace distribution on the integers has no
  such gaps.
- OpenDP samples it exactly (Canonne, Kamath & Steinke 2020) from the
  operating system's cryptographic random source. Nothing can seed it, so
  nobody can regenerate the noise and subtract it.
- The epsilon a release records is OpenDP's own privacy map at the
  sensitivity, not our arithmetic.

OpenDP lists its mechanisms under the "contrib" feature (their proofs have
not finished OpenDP's vetting); that is the only feature enabled here. The
"floating-point" feature, which would allow float mechanisms, is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp

from sflux.core.errors import UserError

dp.enable_features("contrib")

# Relative slack when comparing OpenDP's epsilon with the requested one: the
# map rounds conservatively, so it may exceed sensitivity / scale by an ulp.
EPSILON_SLACK = 1e-9


@dataclass(frozen=True)
class LaplaceMechanism:
    """Discrete Laplace noise of `scale` on a vector of whole numbers whose
    L1 sensitivity is `sensitivity`; `epsilon` is what one use spends."""

    sensitivity: int
    scale: float
    epsilon: float
    measurement: Any

    def __call__(self, values: Sequence[int]) -> list[int]:
        return list(self.measurement([int(v) for v in values]))


def discrete_laplace(sensitivity: int, epsilon: float) -> LaplaceMechanism:
    """The mechanism that makes an integer vector of L1 sensitivity
    `sensitivity` epsilon-differentially private (scale = sensitivity / epsilon)."""
    if sensitivity <= 0 or epsilon <= 0:
        raise UserError(f"a Laplace mechanism needs sensitivity > 0 and epsilon > 0,"
                        f" got {sensitivity} and {epsilon}")
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=scale)
    spent = float(measurement.map(sensitivity))
    if spent > epsilon * (1 + EPSILON_SLACK):
        raise UserError(f"OpenDP charges epsilon {spent} for sensitivity {sensitivity} at scale"
                        f" {scale}, more than the {epsilon} allotted")
    return LaplaceMechanism(sensitivity=sensitivity, scale=scale, epsilon=spent, measurement=measurement)
