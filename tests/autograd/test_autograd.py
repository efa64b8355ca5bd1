"""The autograd engine of module 05: graph, backward, accumulation, no_grad, numerics, dtypes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch  # noqa: F401  (enables autograd)
from tinytorch.core.autograd import Function, enable_autograd, gradcheck, is_grad_enabled, no_grad, unbroadcast
from tinytorch.core.tensor import Tensor

REPO = Path(__file__).resolve().parents[2]


def test_function_apply_records_graph_only_when_needed():
    class Twice(Function):
        def forward(self, a):
            return 2 * a

        def backward(self, grad_out):
            return (2 * grad_out,)

    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Twice.apply(x)
    assert y.requires_grad and isinstance(y._ctx, Twice) and y._ctx.inputs == (x,)
    assert y._ctx.needs_input_grad == (True,)
    const = Twice.apply(Tensor([1.0]))
    assert not const.requires_grad and const._ctx is None
    with no_grad():
        assert not is_grad_enabled()
        z = Twice.apply(x)
    assert is_grad_enabled() and not z.requires_grad and z._ctx is None


def test_no_grad_nests_restores_and_decorates():
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    try:
        with no_grad():
            raise KeyError("x")
    except KeyError:
        pass
    assert is_grad_enabled(), "an exception inside no_grad() must restore grad mode"

    @no_grad()
    def evaluate(t):
        return t * 2

    assert not evaluate(Tensor([1.0], requires_grad=True)).requires_grad


def test_unbroadcast():
    g = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_allclose(unbroadcast(g, (4,)), g.sum((0, 1)))
    np.testing.assert_allclose(unbroadcast(g, (3, 1)), g.sum(0).sum(1, keepdims=True))
    np.testing.assert_allclose(unbroadcast(g, (1, 1, 1)), g.sum().reshape(1, 1, 1))
    np.testing.assert_allclose(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g


def test_accumulation_freeing_and_reuse():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * x  # used twice below: gradients from both uses add up
    loss = (y + y * 3).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 8 * x.data)
    assert loss._ctx is None and y._ctx is None, "graph freed after backward"
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad.data, 8 * x.data + 1)
    g = x.grad
    (x * 1).sum().backward()
    assert x.grad is g, "accumulation updates the existing grad Tensor"


def test_leaf_grads_do_not_alias():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data *= 10  # e.g. in-place gradient clipping of one parameter
    np.testing.assert_allclose(b.grad.data, [1, 1])


def test_backward_errors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"non-scalar output of shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3, dtype=np.float32))

    class BadShape(Function):
        def forward(self, a):
            return a.sum()

        def backward(self, grad_out):
            return (np.ones(3),)

    with pytest.raises(RuntimeError, match=r"BadShape.*\(3,\).*\(2,\)"):
        BadShape.apply(x).backward()


def test_deep_graph_no_recursion_limit():
    x = Tensor([1.0], requires_grad=True)
    h = x
    for _ in range(sys.getrecursionlimit() * 3):
        h = h * 1.0 + 0.0
    h.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0])


def test_enable_autograd_is_idempotent():
    from tinytorch.core import activations, losses

    add, relu = Tensor.__add__, activations.ReLU.forward
    enable_autograd()
    enable_autograd()
    assert Tensor.__add__ is add and activations.ReLU.forward is relu
    x = Tensor([1.0, -1.0], requires_grad=True)
    losses.MSELoss()(activations.ReLU()(x), Tensor([0.0, 0.0])).backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 0.0])


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_softmax_logsoftmax_ce_finite_for_huge_logits(big):
    from tinytorch.core.activations import Softmax
    from tinytorch.core.losses import CrossEntropyLoss, log_softmax

    x = Tensor(np.array([[big, 0.0, -big], [0.0, big, big]], dtype=np.float32), requires_grad=True)
    for out in (Softmax(dim=1)(x), log_softmax(x, dim=1), CrossEntropyLoss()(x, np.array([2, 0]))):
        x.zero_grad()
        assert np.isfinite(out.data).all()
        (out * Tensor(np.ones(out.shape, dtype=np.float32))).sum().backward()
        assert np.isfinite(x.grad.data).all()


def test_bce_predictions_exactly_zero_and_one():
    from tinytorch.core.losses import BinaryCrossEntropyLoss

    p = Tensor(np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32), requires_grad=True)
    t = Tensor(np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32))
    loss = BinaryCrossEntropyLoss()(p, t)
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() > 5, "confidently wrong must cost a lot"
    assert np.isfinite(p.grad.data).all()
    assert p.grad.data[0] < 0 < p.grad.data[1], "gradients push the wrong predictions back"


def test_training_step_keeps_everything_float32():
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.losses import CrossEntropyLoss

    model = Sequential(Linear(6, 8, seed=0), ReLU(), Linear(8, 3, seed=1))
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 6)))  # float64 data -> float32
    y = np.array([0, 2, 1, 1, 0])
    h = model.layers[0](x)
    a = model.layers[1](h)
    logits = model.layers[2](a)
    loss = CrossEntropyLoss()(logits, y)
    for t in (x, h, a, logits, loss):
        assert t.dtype == np.float32, f"activation of dtype {t.dtype}"
    loss.backward()
    params = model.parameters()
    assert len(params) == 4
    for p in params:
        assert p.grad is not None and p.grad.dtype == np.float32 and p.grad.shape == p.shape
    try:
        from tinytorch.core.optimizers import Adam
    except ImportError:  # optimizers not exported yet: a plain SGD step
        with no_grad():
            for p in params:
                p.data -= 0.1 * p.grad.data
    else:
        Adam(params, lr=1e-2).step()
    for p in params:
        assert p.dtype == np.float32, f"parameter became {p.dtype} after the step"
    loss2 = CrossEntropyLoss()(model(x), y)
    assert loss2.dtype == np.float32 and loss2.item() < loss.item()


def test_gradcheck_reports_argument_index_expected_got():
    class Wrong(Function):
        def forward(self, a, b):
            self.save_for_backward(a, b)
            return a * b

        def backward(self, grad_out):
            a, b = self.saved
            return grad_out * b, grad_out * b  # second one is wrong

    a = Tensor(np.array([1.0, 2.0, 3.0]))
    b = Tensor(np.array([4.0, 5.0, 6.0]))
    with pytest.raises(AssertionError, match=r"argument 1 \(shape \(3,\)\) at index \(0,\): expected \(numerical\) .*, got \(analytic\) "):
        gradcheck(lambda p, q: Wrong.apply(p, q).sum(), a, b)
    assert gradcheck(lambda p, q: (p * q).sum(), a, b)
    # integer inputs are passed through untouched
    assert gradcheck(lambda p, i: p[i].sum(), a, Tensor(np.array([0, 0, 2])))


def test_gradcheck_does_not_modify_inputs():
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32))
    gradcheck(lambda t: (t * t).sum(), a)
    assert a.dtype == np.float32 and a.grad is None and a.data.tolist() == [1.0, 2.0]


def test_integer_tensor_ops_do_not_break():
    i = Tensor(np.array([1, 2, 3]))
    assert (i + 1).data.tolist() == [2, 3, 4]
    assert (i == 2).data.tolist() == [False, True, False]
    assert i.mean().dtype == np.float32
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w * i).sum().backward()
    np.testing.assert_allclose(w.grad.data, [1, 2, 3])


def _lessons_before_autograd():
    """The lessons autograd builds on: module autograd's prerequisites, from the manifest."""
    from tito.manifest import load_manifest

    manifest = load_manifest(REPO)
    autograd = manifest.by_package()["tinytorch.core.autograd"]
    return [manifest.module(n).lesson_relpath.as_posix() for n in autograd.prerequisites]


@pytest.mark.parametrize("lesson", _lessons_before_autograd())
def test_lessons_01_to_04_still_pass_with_autograd_on(lesson):
    """The lessons import tinytorch (autograd on) and run all their unit tests."""
    path = REPO / lesson
    if not path.exists():
        pytest.skip(f"{lesson} not written yet")
    code = ("import runpy, tinytorch; from tinytorch.core.tensor import Tensor; "
            "assert Tensor.__add__.__module__ == 'tinytorch.core.autograd', 'autograd is not on'; "
            f"runpy.run_path({str(path)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{lesson} failed with autograd on:\n{proc.stderr[-3000:]}"


def test_training_loop_does_not_leak_graph_memory():
    """After each step no Function node may survive: the graph is freed and optimizer
    updates (under no_grad) do not record one."""
    import gc

    from tinytorch.core.activations import Tanh
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.losses import MSELoss

    model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 1, seed=1))
    x = Tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    y = Tensor(np.zeros((8, 1), dtype=np.float32))

    def live_nodes():
        gc.collect()
        return sum(isinstance(o, Function) for o in gc.get_objects())

    counts = []
    for step in range(12):
        for p in model.parameters():
            p.zero_grad()
        loss = MSELoss()(model(x), y)
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.1 * p.grad.data
        for p in model.parameters():
            assert p._ctx is None and p.requires_grad
        del loss
        if step in (3, 11):
            counts.append(live_nodes())
    assert counts[1] <= counts[0], f"Function nodes grow across steps: {counts}"


def test_module01_tensor_alone_has_dormant_backward():
    """Before enable_autograd (tensor module loaded on its own), backward() does nothing."""
    code = ("import importlib.util, numpy as np; "
            "spec = importlib.util.spec_from_file_location('t01', 'tinytorch/core/tensor.py'); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "w = m.Tensor([1.0, 2.0], requires_grad=True); y = (w * w).sum(); "
            "assert y._ctx is None and y.backward() is None and w.grad is None; print('dormant')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "dormant" in proc.stdout, proc.stderr


FAULTS_SCRIPT = """
import resource, sys
import numpy as np
import tinytorch
from tinytorch.core.autograd import keep_freed_memory

x = np.ones((12, 64, 512), dtype=np.float32)         # 1.5 MB: 384 pages of 4 KB

def faults_per_array(live=6, repeats=5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        kept = [x * x for _ in range(live)]
        del kept
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (live * repeats)

faults_per_array()                                   # after import: kept (the heap grows once)
kept = faults_per_array()
assert keep_freed_memory(False) is True
fresh = faults_per_array()
assert keep_freed_memory(True) is True
faults_per_array()
print(kept, fresh, faults_per_array())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and ru_minflt are Linux's")
def test_keep_freed_memory_reuses_blocks_without_page_faults():
    """Section 8c: with freed memory kept (the default after import) a 1.5 MB temporary comes
    back from the heap without page faults; returned to the OS, it faults on every page."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    kept, fresh, again = map(float, out.stdout.split())
    assert kept < 10 and again < 10, f"page faults per reused 1.5 MB array: {kept}, {again}"
    assert fresh > 300, f"a block fresh from the OS should fault on most of its 384 pages, got {fresh}"
