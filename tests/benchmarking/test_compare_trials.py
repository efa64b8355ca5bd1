"""The A/B harness as a statistical property, counted over trials (not a timing assertion).

compare() must say "no difference" for two identical functions and find a 10% difference,
each in at least 19 of 20 trials. The workload is a pure-Python loop whose work is exactly
proportional to n (no memory traffic, one thread), so B = spin(1.1 n) is 10% more work by
construction. The clock is this thread's CPU time: the work is single-threaded and the machine is shared (on
a loaded 2-core machine, wall time adds whatever the other programs take). Each sample is at least
3 ms of that clock (``min_time``): at compare()'s default of 1 ms, an interrupt or a cache refill in one
sample moved the p-value of a true 10% difference above alpha in 2 of 20 trials on a quiet machine.
"""
from __future__ import annotations

import pytest

from tinytorch.benchmarking.benchmark import compare

TRIALS = 20
N = 8_000


def spin(n):
    acc = 0
    for i in range(n):
        acc += i
    return acc


@pytest.mark.slow
def test_identical_functions_are_not_different_in_19_of_20_trials():
    results = [compare(lambda: spin(N), lambda: spin(N), timer="thread") for _ in range(TRIALS)]
    same = sum(not r.different for r in results)
    assert same >= 19, f"identical functions called different in {TRIALS - same}/{TRIALS} trials: " \
                       f"{[round(r.ratio, 3) for r in results]}"


@pytest.mark.slow
def test_ten_percent_more_work_is_found_in_19_of_20_trials():
    results = [compare(lambda: spin(N), lambda: spin(N + N // 10), timer="thread", min_time=0.003)
               for _ in range(TRIALS)]
    found = sum(r.different and r.ratio > 1 for r in results)
    assert found >= 19, f"a 10% difference found in only {found}/{TRIALS} trials: " \
                        f"{[(round(r.ratio, 3), round(r.p_value, 4)) for r in results]}"
    ratios = sorted(r.ratio for r in results)
    assert 1.03 < ratios[TRIALS // 2] < 1.2, f"the median ratio should be near 1.10: {ratios}"


def test_mann_whitney_matches_the_exact_distribution_for_small_samples():
    import itertools

    import numpy as np

    from tinytorch.benchmarking.benchmark import mann_whitney_u

    a, b = [1, 2, 3, 5, 8, 9, 10], [4, 6, 7, 11, 12, 13, 14]
    u, p = mann_whitney_u(a, b)
    us = np.array([sum(c) - 28 for c in itertools.combinations(range(1, 15), 7)])
    exact = np.mean(np.abs(us - 24.5) >= abs(u - 24.5))
    assert abs(p - exact) < 0.015, (u, p, exact)
