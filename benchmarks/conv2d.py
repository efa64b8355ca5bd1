"""Benchmark: Conv2d forward+backward on a CIFAR batch (128, 3, 32, 32) with 32 5x5 filters.

Three implementations in one run, same data, same weights:
  1. seven explicit loops (tinytorch.core.spatial.conv2d_loops): timed on a SUBSET (a few
     images and filters) and EXTRAPOLATED by the MAC count to the full batch, labelled so.
     Backward is not timed for the loops: it has twice the forward's MACs, so the full
     forward+backward estimate is 3x the forward's MACs at the measured loop rate.
  2. tinytorch's vectorized Conv2dFunction (im2col + batched matmul), forward and backward
     (gradients of input, weight and bias: both frameworks compute all three).
  3. PyTorch CPU (torch.nn.functional.conv2d + autograd), when torch is installed.
Every timing comes from module 19's harness: benchmark() for each phase, compare() for the
forward+backward ratio (interleaved rounds). Results are checked to agree first.

Run:   python benchmarks/conv2d.py               (1 thread, writes benchmarks/results/conv2d.md)
       python benchmarks/conv2d.py --threads 2
       python benchmarks/conv2d.py --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    ap.add_argument("--timer", choices=("cpu", "wall"), default=None,
                    help="clock (default: cpu with 1 thread, where it equals wall time on an idle machine "
                         "and is not inflated by other programs; wall with more threads)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=3, help="each sample: fastest of this many timings")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per sample (loop calibration)")
    ap.add_argument("--loop-images", type=int, default=1, help="images in the seven-loop subset")
    ap.add_argument("--loop-filters", type=int, default=2, help="filters in the seven-loop subset")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    timer = args.timer or ("cpu" if args.threads == 1 else "wall")

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import benchmark, compare
    from tinytorch.core.spatial import Conv2dFunction, conv2d_loops

    load0 = load1()
    N, C, H, W, O, K = 128, 3, 32, 32, 32, 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)      # (128, 3, 32, 32)
    w = (rng.standard_normal((O, C, K, K)) * 0.1).astype(np.float32)  # (32, 3, 5, 5)
    b = np.zeros(O, np.float32)
    Ho, Wo = H - K + 1, W - K + 1
    macs = N * O * Ho * Wo * C * K * K                               # 240,844,800
    g = rng.standard_normal((N, O, Ho, Wo)).astype(np.float32)       # upstream gradient

    # 1. seven loops on a subset, extrapolated
    xs, ws = x[:args.loop_images], w[:args.loop_filters]
    sub_macs = args.loop_images * args.loop_filters * Ho * Wo * C * K * K
    ref_sub = conv2d_loops(xs, ws, b[:args.loop_filters])
    loops_res = benchmark(lambda: conv2d_loops(xs, ws, b[:args.loop_filters]), name="seven loops (subset)",
                          warmup=0, repeats=9, loops=1, timer=timer)
    loop_rate = sub_macs / loops_res.median
    t_loop_fwd, t_loop_fb = macs / loop_rate, 3 * macs / loop_rate

    # 2. vectorized tinytorch
    fn = Conv2dFunction()
    fn.needs_input_grad = (True, True, True)
    out_tiny = fn.forward(x, w, b)
    np.testing.assert_allclose(out_tiny[:args.loop_images, :args.loop_filters], ref_sub, rtol=1e-4, atol=1e-4)

    def tiny_f():
        return fn.forward(x, w, b)

    def tiny_b():
        return fn.backward(g)             # uses what the last forward saved

    def tiny_fb():
        f = Conv2dFunction()
        f.needs_input_grad = (True, True, True)
        f.forward(x, w, b)
        return f.backward(g)

    rows = [("seven loops (EXTRAPOLATED from a subset)", t_loop_fwd, t_loop_fb - t_loop_fwd, t_loop_fb)]
    settings = [f"seven loops: {loops_res.settings}"]
    bf = benchmark(tiny_f, name="tinytorch forward", repeats=9, min_time=args.min_time, timer=timer)
    bb = benchmark(tiny_b, name="tinytorch backward", repeats=9, min_time=args.min_time, timer=timer)
    settings.append(f"each phase: {bf.settings}")

    # 3. PyTorch
    torch = None
    try:
        import torch as _torch
        torch = _torch
        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    res = None
    if torch is not None:
        tx = torch.from_numpy(x).clone().requires_grad_(True)   # input gradient too, like tinytorch
        tw = torch.from_numpy(w).clone().requires_grad_(True)
        tb = torch.from_numpy(b).clone().requires_grad_(True)
        tg = torch.from_numpy(g)

        def torch_f():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb)

        def torch_fb():
            tx.grad = tw.grad = tb.grad = None
            out = torch.nn.functional.conv2d(tx, tw, tb)
            out.backward(tg)
            return out

        out_t = torch_fb()
        np.testing.assert_allclose(out_tiny, out_t.detach().numpy(), rtol=1e-3, atol=1e-3)
        tf = benchmark(torch_f, name="torch forward", repeats=9, min_time=args.min_time, timer=timer)
        tfb = benchmark(torch_fb, name="torch forward+backward", repeats=9, min_time=args.min_time, timer=timer)
        res = compare(torch_fb, tiny_fb, names=(f"PyTorch {torch.__version__}", "tinytorch"), timer=timer,
                      rounds=args.rounds, inner=args.inner, min_time=args.min_time)
        settings.append(f"forward + backward ratio: {res.settings}")
        tiny_fb_med = float(np.median(res.b))
        rows.append(("tinytorch im2col + matmul", bf.median, bb.median, tiny_fb_med))
        rows.append((f"PyTorch {torch.__version__} CPU", tf.median, tfb.median - tf.median, float(np.median(res.a))))
    else:
        fb = benchmark(tiny_fb, name="tinytorch forward+backward", repeats=9, min_time=args.min_time, timer=timer)
        tiny_fb_med = fb.median
        rows.append(("tinytorch im2col + matmul", bf.median, bb.median, tiny_fb_med))

    lines = header("Conv2d forward + backward: seven loops vs im2col vs PyTorch", "conv2d.py",
                   argv or sys.argv[1:], load0, settings)
    lines += [f"Batch (128, 3, 32, 32), 32 filters 5x5, no padding, stride 1: {macs:,} MACs forward "
              f"(backward: 2x that). float32. {args.threads} thread(s).", "",
              f"Seven loops: {sub_macs:,} MACs ({args.loop_images} image(s) x {args.loop_filters} filters), median "
              f"{fmt_s(loops_res.median)} = {loop_rate / 1e6:.2f} M MACs/s; full-batch figures extrapolated by MAC "
              "count (backward assumed 2x forward MACs at the same rate). PyTorch's backward column is its "
              "forward+backward median minus its forward median.", "",
              "| implementation | forward | backward | forward + backward |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {n} | {fmt_s(f)} | {fmt_s(bw)} | {fmt_s(fb)} |" for n, f, bw, fb in rows]
    lines += ["", f"Speed-up of im2col over the loops (forward + backward): {t_loop_fb / tiny_fb_med:,.0f}x.",
              f"Vectorized forward throughput: {2 * macs / bf.median / 1e9:.1f} GFLOP/s."]
    if res is not None:
        lines.append(f"tinytorch / PyTorch, forward + backward, interleaved: **{res.ratio:.2f}x** "
                     f"(95% CI {res.ci[0]:.2f}-{res.ci[1]:.2f}, Mann-Whitney p = {res.p_value:.2g}).")
    else:
        lines.append("PyTorch is not installed: its row is missing.")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('conv2d', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
