"""Benchmark: module 18's kernels against module 09's, one kernel at a time, and the candidates tried.

Shapes are the milestone-4 CNN's at batch 128 (the layer named in each row). Every row is one
module 19 compare() of two implementations run interleaved in the same process, after a check
that they compute the same values. Rows marked "candidate" isolate one idea inside module 18's
channels-last layout (kept in the package or not; the table says which):
  - one large GEMM for the whole batch vs one GEMM per image (np.matmul over the batch axis),
  - the input gradient as a transposed convolution vs the channels-last col2im scatter,
  - channels-last memory for im2col vs gathering from NCHW memory,
  - Winograd F(2,3) for the 3x3 stride-1 layers (module 18's conv3x3_winograd, forward and
    backward) vs im2col + GEMM; the whole batch at once vs cache-blocked chunks,
  - fused BatchNorm+ReLU (forward and backward in one kernel) vs BatchNorm then ReLU,
  - batch-norm statistics with the centred array reused vs recomputed.

Run:   python benchmarks/acceleration.py            (1 thread, writes benchmarks/results/acceleration.md)
       python benchmarks/acceleration.py --quick    (batch 16, fewer rounds; --no-write to only print)
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="batch 16")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    if args.quick:
        args.batch = 16
    timer = "cpu" if args.threads == 1 else "wall"

    import numpy as np
    from _report import fmt_s, header, load1

    import tinytorch.optimization.acceleration as acc
    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.core.spatial import BatchNorm2dFunction, Conv2dFunction, MaxPool2dFunction, im2col

    load0 = load1()
    B = args.batch
    rng = np.random.default_rng(0)
    orig = acc._ORIGINALS
    nhwc = lambda a: acc.as_nchw(np.ascontiguousarray(acc.channels_last(a)))   # noqa: E731  same values, NHWC memory

    def layer(C, O, H):
        x = rng.standard_normal((B, C, H, H)).astype(np.float32)
        w = (rng.standard_normal((O, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
        g = rng.standard_normal((B, O, H, H)).astype(np.float32)
        return x, nhwc(x), w, g, nhwc(g)

    rows, settings = [], []

    def row(what, layer_name, a, b, names, kept, check=None):
        if check is not None:
            got, want = check
            for u, v in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                np.testing.assert_allclose(u, v, rtol=2e-3, atol=2e-3, err_msg=what)
        res = compare(a, b, names=names, timer=timer, rounds=args.rounds, inner=args.inner, loops=1)
        if not settings:
            settings.append(res.settings)
        rows.append((what, layer_name, names, float(np.median(res.a)), float(np.median(res.b)), res, kept))
        print(f"{what:60s} {layer_name:22s} {np.median(res.a) * 1e3:8.2f} {np.median(res.b) * 1e3:8.2f} ms "
              f"{1 / res.ratio:5.2f}x", flush=True)

    def f09(x, w):
        f = Conv2dFunction()
        return f, orig[(Conv2dFunction, "forward")](f, x, w, stride=1, padding=1)

    def f18(x, w):
        f = Conv2dFunction()
        f.needs_input_grad = (True, True)
        return f, acc._conv_forward(f, x, w, stride=1, padding=1)

    for (C, O, H) in ((32, 32, 32), (64, 64, 16)):
        x9, x18, w, g9, g18 = layer(C, O, H)
        name = f"conv {C}->{O}, {H}x{H}"
        fa, ya = f09(x9, w)
        fb, yb = f18(x18, w)
        row("Conv2d forward: module 09 vs module 18 (kept)", name, lambda: f09(x9, w), lambda: f18(x18, w),
            ("module 09", "module 18"), "kept", (yb, ya))
        fa.needs_input_grad = (True, True)
        row("Conv2d backward (dW, dx): module 09 vs module 18 (kept)", name,
            lambda: orig[(Conv2dFunction, "backward")](fa, g9), lambda: acc._conv_backward(fb, g18),
            ("module 09", "module 18"), "kept", (acc._conv_backward(fb, g18), orig[(Conv2dFunction, "backward")](fa, g9)))
        cols, (ho, wo) = acc.im2col_nhwc(acc.channels_last(x18), 3, 1, 1)
        wk = w.transpose(0, 2, 3, 1).reshape(O, -1)
        per_image = lambda: np.matmul(cols.reshape(B, ho * wo, -1), wk.T)     # noqa: E731
        row("candidate: one large GEMM vs one GEMM per image", name, per_image, lambda: cols @ wk.T,
            ("per image", "one GEMM"), "kept (the batch is one call either way; no gain of its own)",
            (cols @ wk.T, per_image().reshape(-1, O)))
        row("candidate: im2col from NCHW memory vs channels-last memory (im2col: first layer, strides > 1)", name,
            lambda: acc.im2col_nhwc(acc.channels_last(x9), 3, 1, 1), lambda: acc.im2col_nhwc(acc.channels_last(x18), 3, 1, 1),
            ("NCHW memory", "NHWC memory"), "kept")
        row("  (module 09's im2col, NCHW, for reference)", name, lambda: im2col(x9, 3, 1, 1),
            lambda: acc.im2col_nhwc(acc.channels_last(x18), 3, 1, 1), ("module 09 im2col", "im2col_nhwc"), "kept")
        scatter = lambda: _scatter(g18, w, x18.shape)                       # noqa: E731
        row("candidate: dx by col2im scatter vs transposed convolution", name, scatter,
            lambda: acc.conv2d_input_grad(g18, w, x18.shape, 1, 1), ("col2im scatter", "transposed conv"), "kept",
            (acc.conv2d_input_grad(g18, w, x18.shape, 1, 1), scatter()))
        wino = lambda: acc.conv3x3_winograd(x18, w)                          # noqa: E731
        row("candidate: Winograd F(2,3) forward vs im2col + one GEMM", name,
            lambda: acc.conv2d_nhwc(x18, w, None, 1, 1), wino,
            ("im2col + GEMM", "Winograd F(2,3)"), "kept (3x3, stride 1, >= 8 channels)",
            (wino(), acc.conv2d_nhwc(x18, w, None, 1, 1)[0]))
        im2col_bwd = lambda: (acc.channels_last(g18).reshape(-1, O).T @ cols,                  # noqa: E731
                              acc.conv2d_input_grad(g18, w, x18.shape, 1, 1))
        wino_bwd = lambda: acc.conv3x3_winograd_backward(g18, x18, w)        # noqa: E731
        dw_i, dx_i = im2col_bwd()
        row("candidate: Winograd backward (dW, dx) vs im2col dW + transposed-conv dx", name, im2col_bwd, wino_bwd,
            ("im2col", "Winograd F(2,3)"), "kept",
            (wino_bwd(), (dx_i, dw_i.reshape(O, 3, 3, C).transpose(0, 3, 1, 2))))
        row("candidate: Winograd, the whole batch at once vs chunks of 4 MB", name,
            lambda: _with(acc, "WINOGRAD_CHUNK_BYTES", 1 << 40, wino), wino,
            ("whole batch", "4 MB chunks"), "kept", (wino(), _with(acc, "WINOGRAD_CHUNK_BYTES", 1 << 40, wino)))

    # max pooling 2x2 on the first block's output
    x9 = rng.standard_normal((B, 32, 32, 32)).astype(np.float32)
    x18 = nhwc(x9)

    def pool(fwd, bwd, x):
        f = MaxPool2dFunction()
        y = fwd(f, x, kernel_size=2)
        return bwd(f, np.ones_like(y))

    k09 = (orig[(MaxPool2dFunction, "forward")], orig[(MaxPool2dFunction, "backward")])
    k18 = (acc._pool_forward, acc._pool_backward)
    row("MaxPool2d 2x2 forward + backward: module 09 vs reshape (kept)", "pool 32x32x32",
        lambda: pool(*k09, x9), lambda: pool(*k18, x18), ("module 09", "module 18"), "kept",
        (pool(*k18, x18), pool(*k09, x9)))

    # batch norm (statistics, normalise, backward) and the fused BN + ReLU candidate
    gamma, beta = rng.uniform(0.5, 1.5, 32).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    g9 = rng.standard_normal(x9.shape).astype(np.float32)
    g18 = nhwc(g9)

    def bn09():
        mean = x9.mean(axis=(0, 2, 3))
        var = ((x9 - mean.reshape(1, -1, 1, 1)) ** 2).mean(axis=(0, 2, 3))
        f = BatchNorm2dFunction()
        orig[(BatchNorm2dFunction, "forward")](f, x9, gamma, beta, mean=mean, var=var)
        return orig[(BatchNorm2dFunction, "backward")](f, g9)

    def bn18(reuse=True):
        mean, var, xc = acc.batch_norm_stats(x18)
        f = BatchNorm2dFunction()
        acc._bn_forward(f, x18, gamma, beta, mean=mean, var=var, centered=xc if reuse else None)
        return acc._bn_backward(f, g18)

    row("BatchNorm2d forward + backward: module 09 vs module 18 (kept)", "BN 32x32x32", bn09, bn18,
        ("module 09", "module 18"), "kept", (bn18(), bn09()))
    row("candidate: BN statistics' centred array recomputed vs reused", "BN 32x32x32", lambda: bn18(False), bn18,
        ("recomputed", "reused"), "kept", (bn18(), bn18(False)))

    def bn_then_relu():
        mean, var, xc = acc.batch_norm_stats(x18)
        f = BatchNorm2dFunction()
        y = acc._bn_forward(f, x18, gamma, beta, mean=mean, var=var, centered=xc)
        r = np.maximum(y, 0)                                   # ReLU forward (module 05's ReLUFn)
        return acc._bn_backward(f, g18 * (y > 0))[0], r         # ReLU backward, then BN backward

    def bn_relu_fused():
        mean, var, xc = acc.batch_norm_stats(x18)
        invstd = (1.0 / np.sqrt(var + 1e-5)).astype(np.float32)
        xc *= invstd
        y = xc * gamma
        y += beta
        np.maximum(y, 0, out=y)                                # in place: one array less
        g = acc.channels_last(g18) * (y > 0)
        dx, _, _ = acc.batch_norm_backward(acc.as_nchw(g), xc, gamma, invstd)
        return dx, acc.as_nchw(y)

    row("candidate: BatchNorm then ReLU vs fused BatchNorm+ReLU", "BN+ReLU 32x32x32", bn_then_relu, bn_relu_fused,
        ("BN, then ReLU", "fused"), "not kept (needs a graph rewrite)", (bn_relu_fused(), bn_then_relu()))

    lines = header("Module 18's kernels against module 09's, kernel by kernel", "acceleration.py",
                   argv if argv is not None else sys.argv[1:], load0, settings)
    lines += [f"Shapes of the milestone-4 CNN at batch {B}, float32, {args.threads} thread(s); "
              "each row one compare() of A and B interleaved (B / A > 1: B is faster); both checked to agree first.",
              "", "| kernel | shape | A | B | A (median) | B (median) | speed-up A/B (95% CI) | in the package |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
    for what, shape, (na, nb), ta, tb, res, kept in rows:
        lo, hi = 1 / res.ci[1], 1 / res.ci[0]
        lines.append(f"| {what} | {shape} | {na} | {nb} | {fmt_s(ta)} | {fmt_s(tb)} | "
                     f"{1 / res.ratio:.2f}x ({lo:.2f}-{hi:.2f}) | {kept} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('acceleration', text)}")
    return 0


def _with(module, name, value, fn):
    """fn() with module.name set to value for the call."""
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        return fn()
    finally:
        setattr(module, name, before)


def _scatter(g, weight, x_shape):
    """The channels-last col2im input gradient (module 18's path for strides other than 1)."""
    import numpy as np

    from tinytorch.optimization.acceleration import as_nchw, channels_last
    N, O, Ho, Wo = g.shape
    _, C, KH, KW = weight.shape
    H, W = x_shape[2:]
    dcols = (channels_last(g).reshape(-1, O) @ weight.transpose(0, 2, 3, 1).reshape(O, -1)).reshape(N, Ho, Wo, KH, KW, C)
    dxp = np.zeros((N, H + 2, W + 2, C), g.dtype)
    for ki in range(KH):
        for kj in range(KW):
            dxp[:, ki:ki + Ho, kj:kj + Wo] += dcols[:, :, :, ki, kj]
    return as_nchw(dxp[:, 1:H + 1, 1:W + 1])


if __name__ == "__main__":
    sys.exit(main())
