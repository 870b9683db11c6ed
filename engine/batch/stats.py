"""The statistics of a batch summary: Wilson intervals, unbiased pass@k, means and
standard errors.

- ``wilson(passed, n)``: the 95% Wilson score interval of a pass rate (it stays inside
  [0, 1] and is sensible for 0 or n passes and small n, unlike the normal interval).
- ``pass_at_k(n, c, k)``: the unbiased estimator of Chen et al. 2021 ("Evaluating Large
  Language Models Trained on Code", eq. 1): the chance that at least one of ``k`` runs
  drawn without replacement from ``n`` runs, ``c`` of them passing, passes:
  ``1 - C(n - c, k) / C(n, k)``, computed as a product so it never overflows.
- ``mean_se(values)``: the mean and its standard error (sample standard deviation
  over sqrt(n); None for fewer than two values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The two-sided 95% normal quantile.
Z95 = 1.959963984540054


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``passed`` out of ``n`` (None when ``n`` is 0)."""
    if n <= 0:
        return None
    if not 0 <= passed <= n:
        raise ValueError(f"passed must be between 0 and n={n}, got {passed}")
    p = passed / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if passed == 0 else max(0.0, centre - half)
    hi = 1.0 if passed == n else min(1.0, centre + half)
    return lo, hi


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k from ``n`` runs of which ``c`` passed (None when k > n or k < 1)."""
    if not 0 <= c <= n:
        raise ValueError(f"c must be between 0 and n={n}, got {c}")
    if k < 1 or k > n:
        return None
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(mean, standard error of the mean); (None, None) for no values, SE None for one."""
    n = len(values)
    if n == 0:
        return None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


__all__ = ["Z95", "mean_se", "pass_at_k", "wilson"]
