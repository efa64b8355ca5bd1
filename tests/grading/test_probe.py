"""The grader's own assert_tensor (tito.probe) judges what the sandbox observed exactly as
module 01's tinytorch.testing.assert_tensor judges the object itself; a graded cell's
assert_tensor calls never reach the learner's copy."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.testing import assert_tensor as reference
from tito import _harness
from tito.probe import assert_tensor as trusted
from tito.probe import build_probe, decode


class Tensorish:  # not a Tensor, though it has .data
    def __init__(self):
        self.data = np.zeros(3, np.float32)


CASES = [
    (lambda: Tensor(np.zeros((2, 3), np.float32)), (2, 3), np.float32),
    (lambda: Tensor(np.zeros((2, 3), np.float32)), (3, 2), np.float32),
    (lambda: Tensor(np.zeros((2, 3), np.float64)), (2, 3), np.float32),
    (lambda: Tensor(np.zeros((2, 3), np.float64)), (2, 3), None),
    (lambda: Tensor(np.arange(4)), (4,), np.int64),
    (lambda: Tensor(np.float32(2.0)), (), np.float32),
    (lambda: np.zeros((2, 3), np.float32), (2, 3), np.float32),
    (lambda: [1.0, 2.0], (2,), np.float32),
    (lambda: Tensorish(), (3,), np.float32),
]


def _verdict(check, obj, shape, dtype):
    try:
        check(obj, shape, dtype, name="out")
    except AssertionError as e:
        return str(e).split(":")[0] + ":" + str(e).split(":")[1][:30]
    return "ok"


@pytest.mark.parametrize("i", range(len(CASES)))
def test_the_graders_copy_agrees_with_module_01(i):
    make, shape, dtype = CASES[i]
    observed = decode(_harness.encode(make(), np))
    assert _verdict(trusted, observed, shape, dtype) == _verdict(reference, make(), shape, dtype)


def test_observed_shape_is_the_datas_not_what_the_class_claims():
    class Liar(Tensor):
        @property
        def shape(self):
            return (2, 3)
    lie = Liar(np.zeros(6, np.float32))
    reference(lie, (2, 3))                                     # the learner's check is fooled
    with pytest.raises(AssertionError, match="expected shape"):
        trusted(decode(_harness.encode(lie, np)), (2, 3))


def test_assert_tensor_calls_leave_the_sandbox():
    src = ("from tinytorch.testing import assert_tensor\n"
           "y = assert_tensor(f(x), (2, 3), np.float32, name='f(x)')\n"
           "np.testing.assert_allclose(assert_tensor(y + 1, y.shape).data, 1)\n"
           "assert_tensor(g(), (4,), np.int64)\n")
    probe = build_probe("test-x", src)
    assert "assert_tensor(" not in probe.code.replace("import assert_tensor", "")  # only the recorder runs
    calls = [c for c in probe.checks.values() if c.expr.startswith("assert_tensor(")]
    assert [c.leaves[0] for c in calls] == ["f(x)", "y + 1", "g()"]
    assert calls[1].expr == "assert_tensor(_v[0], _v[1])" and calls[1].leaves[1] == "y.shape"
