"""Integration: module 18's kernels are what module 09's layers run once the module is exported
(one Conv2d, one MaxPool2d, one BatchNorm2d); switched off they are module 09's again, and a
CNN's loss and gradients do not change; incomplete kernels are refused with a warning."""
import inspect
import os
import warnings

import numpy as np
import pytest

import tinytorch  # noqa: F401  (the package switches module 18's kernels on)
from tinytorch.core.autograd import gradcheck
from tinytorch.core.spatial import BatchNorm2dFunction, Conv2dFunction, MaxPool2dFunction
from tinytorch.core.tensor import Tensor
from tinytorch.optimization import acceleration as acc


def _cnn(seed):
    from tinytorch.nn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
    return Sequential(Conv2d(3, 8, 3, padding=1, bias=False, seed=seed), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                      Conv2d(8, 6, 3, stride=2, padding=1, seed=seed + 1), BatchNorm2d(6), ReLU(),
                      MaxPool2d(3, stride=1), Flatten(), Linear(6, 3, seed=seed + 2))


def test_the_package_runs_module_18_kernels():
    assert acc.is_accelerated()
    for cls, name in acc._KERNELS:
        method = cls.__dict__[name]
        assert method.__name__ == name and method.__qualname__ == f"{cls.__qualname__}.{name}"
        assert inspect.unwrap(method) is acc._ORIGINALS[(cls, name)], "__wrapped__ must be module 09's"


def test_activations_stay_channels_last():
    from tinytorch.nn import BatchNorm2d, Conv2d, MaxPool2d, ReLU, Sequential
    x = Tensor(np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32))
    out = Sequential(Conv2d(3, 4, 3, padding=1, seed=0), BatchNorm2d(4), ReLU(), MaxPool2d(2))(x)
    assert out.shape == (2, 4, 4, 4)
    assert acc.channels_last(out.data).flags.c_contiguous, "(N, C, H, W) views of (N, H, W, C) memory"


def test_same_training_with_and_without():
    r = np.random.default_rng(0)
    x, y = r.standard_normal((5, 3, 12, 12)).astype(np.float32), r.integers(0, 3, 5)
    from tinytorch.nn import CrossEntropyLoss
    runs = []
    for on in (False, True, False):
        with acc.accelerated(on):
            net = _cnn(1)
            for _ in range(2):                     # two steps: running statistics and updates too
                for p in net.parameters():
                    p.grad = None
                loss = CrossEntropyLoss()(net(Tensor(x)), Tensor(y))
                loss.backward()
                for p in net.parameters():
                    p.data -= 0.1 * p.grad.data
            net.eval()
            runs.append([net(Tensor(x)).data] + [p.grad.data for p in net.parameters()]
                        + [v for k, v in net.state_dict().items()])
    assert acc.is_accelerated()
    for a, b, c in zip(*runs):
        np.testing.assert_array_equal(a, c)        # off, on, off: the switch leaves nothing behind
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("shape, w, s, p", [((2, 3, 6, 6), (4, 3, 3, 3), 1, 1), ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
                                            ((2, 2, 5, 5), (2, 2, 5, 5), 1, 2), ((1, 2, 6, 6), (2, 2, 3, 3), 1, 0),
                                            ((1, 8, 4, 6), (3, 8, 3, 3), 1, 1)])   # the last one: Winograd
def test_gradcheck_accelerated_conv(shape, w, s, p):
    r = np.random.default_rng(1)
    assert acc.winograd_applies(shape, w, s, p) == (shape[1] == 8)
    gradcheck(lambda x, w, b: Conv2dFunction.apply(x, w, b, stride=s, padding=p),
              *(Tensor(r.standard_normal(sh), dtype=np.float64) for sh in (shape, w, w[:1])))


def test_gradcheck_accelerated_pool_and_batchnorm():
    r = np.random.default_rng(2)
    for shape, k in (((2, 2, 6, 6), 2), ((1, 2, 7, 5), 2), ((1, 1, 6, 6), 3)):
        x = Tensor(r.permutation(np.prod(shape)).reshape(shape) / 10.0, dtype=np.float64)
        gradcheck(lambda x: MaxPool2dFunction.apply(x, kernel_size=k), x)
    for training in (True, False):
        rm, rv = r.standard_normal(2), r.uniform(0.5, 2, 2)

        def bn(x, g, b):
            mean, var = (x.data.mean(axis=(0, 2, 3)), x.data.var(axis=(0, 2, 3))) if training else (rm, rv)
            return BatchNorm2dFunction.apply(x, g, b, mean=mean, var=var, eps=1e-5, training=training)
        gradcheck(bn, *(Tensor(r.standard_normal(s), dtype=np.float64) for s in ((3, 2, 3, 3), (2,), (2,))))


def _off_by_a_little(right):
    def kernel(*args, **kwargs):
        result = right(*args, **kwargs)
        if isinstance(result, tuple):
            return (result[0] * 1.001,) + tuple(result[1:])
        return result * 1.001
    return kernel


@pytest.mark.parametrize("name", ["conv2d_nhwc", "conv2d_input_grad", "conv3x3_winograd",
                                  "conv3x3_winograd_backward", "winograd_weights"])
def test_incomplete_or_wrong_kernels_keep_module_09(monkeypatch, name):
    def stub(*args, **kwargs):
        raise NotImplementedError

    try:
        for kernel in (stub, _off_by_a_little(getattr(acc, name))):
            monkeypatch.setattr(acc, name, kernel)
            with pytest.warns(RuntimeWarning, match="not complete"):
                assert acc.enable_acceleration() is False
            assert not acc.is_accelerated()
            assert Conv2dFunction.__dict__["forward"] is acc._ORIGINALS[(Conv2dFunction, "forward")]
    finally:
        monkeypatch.undo()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert acc.enable_acceleration()
    assert acc.is_accelerated()


def test_winograd_chunks_and_threads_give_the_same_numbers(monkeypatch):
    """Chunked (many small chunks, on one or two threads) and whole-batch Winograd agree exactly."""
    r = np.random.default_rng(5)
    x = acc.as_nchw(r.standard_normal((6, 4, 6, 9)).astype(np.float32))      # (6, 9, 4, 6), NHWC memory
    w = r.standard_normal((5, 9, 3, 3)).astype(np.float32)
    g = r.standard_normal((6, 5, 4, 6)).astype(np.float32)                  # NCHW memory
    monkeypatch.setattr(acc, "WINOGRAD_CHUNK_BYTES", 1 << 40)
    whole = (acc.conv3x3_winograd(x, w),) + acc.conv3x3_winograd_backward(g, x, w)
    monkeypatch.setattr(acc, "WINOGRAD_CHUNK_BYTES", 1)                      # one image per chunk
    for threads in (1, 2):
        with acc.blas_threads(threads) as got:
            if threads == 2 and got is None:
                pytest.skip("no OpenBLAS found to set two threads")
            assert acc.conv_threads() == min(threads, os.cpu_count() or 1)
            chunked = (acc.conv3x3_winograd(x, w),) + acc.conv3x3_winograd_backward(g, x, w)
        for a, b in zip(chunked, whole):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
