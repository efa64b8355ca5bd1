"""The op-verification kit: check a differentiable TinyTorch op three ways.

``check_op(name, fn, inputs, torch_fn)`` (or ``check_case(OpCase(...))``); ``torch_fn``
defaults to ``fn`` itself (tinygrad's default: most ops are the same expression in both),
``torch_fn=None`` means there is no PyTorch reference:

(a) gradcheck: central differences in float64 against ``backward()``;
(b) PyTorch, when importable: forward and backward (float64) against ``torch_fn``;
(c) otherwise the golden fixture ``tests/golden/<name>.npz`` written from PyTorch by
    ``scripts/make_golden.py`` (when torch is present and a fixture exists, both are checked,
    so a stale fixture fails too);
plus a float32 run: output and gradients must stay float32 (no silent float64).

``inputs`` are NumPy arrays: float arrays are differentiated, integer/bool arrays (labels,
indices, masks) are passed as constants. ``fn`` receives TinyTorch Tensors, ``torch_fn``
receives torch tensors, in the same order. Non-scalar outputs are reduced with a fixed random
projection ``sum(out * R)`` (R seeded from the name), which checks the whole Jacobian-vector
product in one backward pass. Keep inputs small: gradcheck costs two forwards per element.

See README.md in this directory.
"""
from __future__ import annotations

import importlib.util
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TESTS_DIR = Path(__file__).resolve().parent.parent
GOLDEN_DIR = TESTS_DIR / "golden"
SAME = "same as fn"  # OpCase.torch_fn's default: PyTorch runs the very same expression

__all__ = ["OpCase", "SAME", "check_op", "check_case", "torch_available", "golden_path", "reference_with_torch",
           "GOLDEN_DIR", "case_files", "load_cases_file", "all_cases", "load_golden", "distinct"]


def torch_available() -> bool:
    """torch importable (set OPCHECK_NO_TORCH=1 to test the golden-fixture path without it)."""
    if os.environ.get("OPCHECK_NO_TORCH"):
        return False
    return importlib.util.find_spec("torch") is not None


@dataclass
class OpCase:
    """One op to verify. ``name`` is also the golden fixture's file name (letters, digits, _ -)."""
    name: str
    fn: Callable
    inputs: Sequence[np.ndarray]
    torch_fn: Callable | str | None = SAME  # None: no PyTorch reference (gradcheck and float32 only)
    atol: float = 1e-6          # forward/backward vs reference, float64
    rtol: float = 1e-5
    gradcheck: bool = True      # finite differences (turn off for non-smooth points, huge inputs)
    gc_atol: float = 1e-5
    gc_rtol: float = 1e-3
    float32: bool = True        # also run in float32 and demand float32 results
    f32_rtol: float = 1e-3
    f32_atol: float = 1e-4
    const: tuple = ()           # indices of float inputs that are constants (targets, masks)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.inputs = [np.asarray(x) for x in self.inputs]
        if self.torch_fn is SAME:
            self.torch_fn = self.fn


def case_files() -> list[Path]:
    """Every table of op cases and PyTorch fixtures: ``tests/**/*opcases*.py``."""
    return sorted(TESTS_DIR.rglob("*opcases*.py"))


def load_cases_file(path: Path):
    """The module of one cases file (its ``CASES`` list of OpCase and its ``FIXTURES`` dict)."""
    spec = importlib.util.spec_from_file_location(f"_opcases_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_cases() -> list[OpCase]:
    """The op cases of every cases file, in file order; names are unique (they name fixtures)."""
    cases = [c for path in case_files() for c in getattr(load_cases_file(path), "CASES", [])]
    names = [c.name for c in cases]
    dup = sorted({n for n in names if names.count(n) > 1})
    assert not dup, f"op case names name golden fixtures and must be unique: {dup}"
    return cases


def load_golden(name: str) -> dict:
    """The arrays of ``tests/golden/<name>.npz`` (a ``FIXTURES`` entry of a cases file)."""
    path = golden_path(name)
    assert path.is_file(), f"missing golden fixture {path.name}: run scripts/make_golden.py where torch is installed"
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def distinct(rng: np.random.Generator, *shape) -> np.ndarray:
    """Values of ``shape`` with no ties (for max and max-pool, whose gradient needs a unique winner)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 + rng.uniform(0, 0.1, n)).reshape(shape) - n * 0.15


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.npz"


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.floating)


def _differentiable(case: OpCase, i: int) -> bool:
    return _is_float(case.inputs[i]) and i not in case.const


def _projection(name: str, shape: tuple) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.standard_normal(shape)


def _run_tinytorch(case: OpCase, dtype) -> tuple:
    """(output array, [grad array or None per input], R) with float inputs cast to ``dtype``."""
    from tinytorch.core.tensor import Tensor

    tensors = []
    for i, x in enumerate(case.inputs):
        if _is_float(x):
            tensors.append(Tensor(np.array(x, dtype=dtype), dtype=dtype,
                                  requires_grad=_differentiable(case, i)))
        else:
            tensors.append(Tensor(x))
    out = case.fn(*tensors)
    R = _projection(case.name, out.shape).astype(out.dtype if _is_float(out.data) else np.float64)
    if out.requires_grad:
        out.backward(R)
    grads = [None if t.grad is None else t.grad.data for t in tensors]
    return out.data, grads, R


def reference_with_torch(case: OpCase) -> dict:
    """Forward and backward of ``case.torch_fn`` in float64: {'out', 'grad_i' ...}."""
    import torch

    ts = []
    for i, x in enumerate(case.inputs):
        if _is_float(x):
            ts.append(torch.tensor(np.array(x, dtype=np.float64), requires_grad=_differentiable(case, i)))
        else:
            ts.append(torch.from_numpy(np.array(x)))
    out = case.torch_fn(*ts)
    result = {"out": out.detach().numpy().astype(np.float64)}
    R = _projection(case.name, tuple(out.shape))
    if out.requires_grad:
        out.backward(torch.from_numpy(R))
    for i, (x, t) in enumerate(zip(case.inputs, ts)):
        if _differentiable(case, i):
            g = t.grad
            result[f"grad_{i}"] = np.zeros(x.shape) if g is None else g.numpy().astype(np.float64)
    for i, x in enumerate(case.inputs):
        result[f"input_{i}"] = x
    return result


def _compare(case: OpCase, out, grads, ref: dict, source: str) -> None:
    if ref["out"].shape != out.shape:
        raise AssertionError(f"{case.name}: output shape {out.shape}, {source} says {ref['out'].shape}")
    np.testing.assert_allclose(out, ref["out"], rtol=case.rtol, atol=case.atol,
                               err_msg=f"{case.name}: forward differs from {source}")
    for i, g in enumerate(grads):
        key = f"grad_{i}"
        if key not in ref:
            continue
        got = np.zeros(case.inputs[i].shape) if g is None else g
        np.testing.assert_allclose(got, ref[key], rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case.name}: gradient of input {i} differs from {source}")


def check_case(case: OpCase) -> dict:
    """Run every check on ``case``; raise AssertionError on any mismatch. Returns what ran."""
    from tinytorch.core.autograd import gradcheck
    from tinytorch.core.tensor import Tensor

    ran = {"gradcheck": False, "torch": False, "golden": False, "float32": False}
    # (a) finite differences
    if case.gradcheck:
        fixed = {i: (Tensor(np.array(x, dtype=np.float64), dtype=np.float64) if _is_float(x) else Tensor(x))
                 for i, x in enumerate(case.inputs) if not _differentiable(case, i)}
        free = [i for i in range(len(case.inputs)) if i not in fixed]

        def fn_of_free(*values):
            args = dict(fixed)
            args.update(zip(free, values))
            return case.fn(*(args[i] for i in range(len(case.inputs))))

        gradcheck(fn_of_free, *(Tensor(np.array(case.inputs[i], dtype=np.float64), dtype=np.float64)
                                for i in free), atol=case.gc_atol, rtol=case.gc_rtol)
        ran["gradcheck"] = True
    # float64 run compared with PyTorch and/or the golden fixture
    out, grads, _ = _run_tinytorch(case, np.float64)
    if case.torch_fn is not None and torch_available():
        _compare(case, out, grads, reference_with_torch(case), "PyTorch")
        ran["torch"] = True
    path = golden_path(case.name)
    if path.exists():
        with np.load(path) as z:
            ref = {k: z[k] for k in z.files}
        for i, x in enumerate(case.inputs):
            key = f"input_{i}"
            if key in ref and (ref[key].shape != x.shape or not np.allclose(ref[key], x)):
                raise AssertionError(f"{case.name}: golden fixture {path.name} was made from other "
                                     f"inputs (input {i}); rerun scripts/make_golden.py")
        _compare(case, out, grads, ref, f"golden fixture {path.name}")
        ran["golden"] = True
    # float32 in, float32 out
    if case.float32:
        out32, grads32, _ = _run_tinytorch(case, np.float32)
        if _is_float(out32):
            assert out32.dtype == np.float32, f"{case.name}: float32 inputs gave a {out32.dtype} output"
        for i, g in enumerate(grads32):
            if g is not None:
                assert g.dtype == np.float32, f"{case.name}: gradient of input {i} is {g.dtype}, not float32"
        np.testing.assert_allclose(out32, out, rtol=case.f32_rtol, atol=case.f32_atol,
                                   err_msg=f"{case.name}: float32 forward far from float64")
        ran["float32"] = True
    if case.torch_fn is not None and not (ran["torch"] or ran["golden"]):
        import pytest

        pytest.skip(f"{case.name}: gradcheck passed, but torch is not installed and there is no golden "
                    f"fixture {path.name} (run scripts/make_golden.py where torch is installed)")
    return ran


def check_op(name: str, fn: Callable, inputs: Sequence[np.ndarray], torch_fn: Callable | str | None = SAME,
             **options) -> dict:
    """Shorthand for ``check_case(OpCase(name, fn, inputs, torch_fn, **options))``."""
    return check_case(OpCase(name, fn, inputs, torch_fn, **options))
