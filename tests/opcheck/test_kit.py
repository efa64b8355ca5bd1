"""The kit itself must fail on wrong ops: a check that cannot fail would be worthless."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch  # noqa: F401
from opcheck import OpCase, check_case, check_op, golden_path
from tinytorch.core.autograd import Function


class _Square(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return a * a

    def backward(self, grad_out):
        (a,) = self.saved
        return (grad_out * 2 * a,)


class _WrongSquare(_Square):
    def backward(self, grad_out):
        (a,) = self.saved
        return (grad_out * a,)


class _Float64Leak(_Square):
    def forward(self, a):
        self.save_for_backward(a)
        return (a * a).astype(np.float64)


X = [np.array([[0.5, -1.0, 2.0]])]


def test_correct_op_passes_gradcheck_and_float32():
    ran = check_op("kit_square", lambda t: _Square.apply(t), X, torch_fn=None)
    assert ran["gradcheck"] and ran["float32"]


def test_wrong_backward_is_caught_by_gradcheck():
    with pytest.raises(AssertionError, match="argument 0"):
        check_op("kit_wrong", lambda t: _WrongSquare.apply(t), X, torch_fn=None)


def test_wrong_backward_is_caught_by_reference_without_gradcheck():
    torch = pytest.importorskip("torch")  # noqa: F841
    with pytest.raises(AssertionError, match="gradient of input 0 differs from PyTorch"):
        check_op("kit_wrong_ref", lambda t: _WrongSquare.apply(t), X, lambda t: t * t, gradcheck=False)


def test_float64_leak_is_caught():
    with pytest.raises(AssertionError, match="float64 output"):
        check_op("kit_leak", lambda t: _Float64Leak.apply(t), X, torch_fn=None)


def test_golden_fixture_is_used_and_checked(tmp_path, monkeypatch):
    import opcheck

    monkeypatch.setenv("OPCHECK_NO_TORCH", "1")
    monkeypatch.setattr(opcheck, "GOLDEN_DIR", tmp_path)
    monkeypatch.setattr(opcheck, "golden_path", lambda name: tmp_path / f"{name}.npz")
    case = OpCase("kit_golden", lambda t: _Square.apply(t), X, torch_fn=lambda t: t * t)
    with pytest.raises(pytest.skip.Exception, match="no golden"):
        check_case(case)
    R = opcheck._projection("kit_golden", (1, 3))
    good = {"out": X[0] ** 2, "grad_0": 2 * X[0] * R, "input_0": X[0]}
    np.savez(tmp_path / "kit_golden.npz", **good)
    assert check_case(case)["golden"]
    np.savez(tmp_path / "kit_golden.npz", **{**good, "grad_0": X[0] * R})
    with pytest.raises(AssertionError, match="golden fixture"):
        check_case(case)
    np.savez(tmp_path / "kit_golden.npz", **{**good, "input_0": X[0] + 1})
    with pytest.raises(AssertionError, match="other inputs"):
        check_case(case)


def test_committed_fixtures_are_small():
    total = sum(p.stat().st_size for p in golden_path("x").parent.glob("*.npz"))
    assert total < 2_000_000, f"golden fixtures take {total} bytes: keep inputs small"


def test_torch_fn_defaults_to_the_same_expression():
    case = OpCase("kit_same", lambda a: a * a, X)
    assert case.torch_fn is case.fn
    assert OpCase("kit_none", lambda a: a * a, X, torch_fn=None).torch_fn is None
