"""Integration: module 19's harness on the exported package (tinytorch only)."""
import json

import numpy as np

from tinytorch.benchmarking.benchmark import benchmark, compare, single_stream
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor


def test_benchmark_compare_and_a_scenario_on_a_layer():
    lin = Linear(64, 64, seed=0)
    x = Tensor(np.ones((8, 64), np.float32))

    def infer():
        with no_grad():
            return lin(x)
    r = benchmark(infer, repeats=9, min_time=0.0005)
    assert r.ci[0] <= r.median <= r.ci[1] and json.dumps(r.to_dict())

    def spin(n):
        return sum(range(n))
    c = compare(lambda: spin(3000), lambda: spin(6000), rounds=11, timer="thread")
    assert c.different and c.ratio > 1.3, c
    ss = single_stream(infer, min_queries=64)
    assert len(ss.latencies) == 64 and ss.p50 <= ss.p99
