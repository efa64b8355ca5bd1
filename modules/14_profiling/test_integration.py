"""Integration: module 14's profiler on the exported package, over layers of modules 03-13
(tinytorch only)."""
import numpy as np

from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten
from tinytorch.core.tensor import Tensor
from tinytorch.profiling.profiler import Profiler, count_flops, profile_memory


def test_conv_and_linear_flops_and_a_profiled_step():
    model = Sequential(Conv2d(3, 4, 3, padding=1, seed=0), Flatten(), Linear(4 * 8 * 8, 5, seed=1))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    fc = count_flops(model, x)
    assert fc.flops == 2 * 2 * 4 * 8 * 8 * 3 * 9 + 2 * 2 * 256 * 5 and fc.macs * 2 == fc.flops
    with Profiler(model) as prof:
        loss = CrossEntropyLoss()(model(x), Tensor(np.array([0, 3])))
        loss.backward()
    phases = {(r["op"], r["phase"]) for r in prof.op_table()}
    assert ("Conv2dFunction", "forward") in phases and ("Conv2dFunction", "backward") in phases
    assert prof.peak_bytes > 0 and model.layers[0].weight.grad is not None
    mem = profile_memory(model, x)
    assert mem["param_bytes"] == sum(p.data.nbytes for p in model.parameters()) and mem["peak_bytes"] > 0
