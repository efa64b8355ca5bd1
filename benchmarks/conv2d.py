"""Benchmark: Conv2d forward+backward on a CIFAR batch (128, 3, 32, 32) with 32 5x5 filters.

Three implementations in one run, same data, same weights:
  1. seven explicit loops (tinytorch.core.spatial.conv2d_loops): timed on a SUBSET (a few
     images and filters) and EXTRAPOLATED by the MAC count to the full batch, labelled so.
     Backward is not timed for the loops: it has twice the forward's MACs, so the full
     forward+backward estimate is 3x the forward's MACs at the measured loop rate.
  2. tinytorch's vectorized Conv2dFunction (im2col + batched matmul), forward and backward
     (gradients of input, weight and bias: both frameworks compute all three).
  3. PyTorch CPU (torch.nn.functional.conv2d + autograd), when torch is installed.
The vectorized and PyTorch timings are interleaved in rounds so that load from other
processes hits both alike; the median is reported. Results are checked to agree first.

Run:   python benchmarks/conv2d.py               (1 thread, writes benchmarks/results/conv2d.md)
       python benchmarks/conv2d.py --threads 2
       python benchmarks/conv2d.py --no-write
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys


from tito.machine import cpu_model, display_path, set_blas_threads, write_result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds for vectorized vs PyTorch")
    ap.add_argument("--loop-images", type=int, default=1, help="images in the seven-loop subset")
    ap.add_argument("--loop-filters", type=int, default=2, help="filters in the seven-loop subset")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    import statistics
    import time

    import numpy as np

    import tinytorch
    from tinytorch.core.spatial import Conv2dFunction, conv2d_loops

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
    t0 = time.perf_counter()
    ref_sub = conv2d_loops(xs, ws, b[:args.loop_filters])
    t_loop_sub = time.perf_counter() - t0
    loop_rate = sub_macs / t_loop_sub
    t_loop_fwd = macs / loop_rate
    t_loop_fb = 3 * macs / loop_rate

    # 2. vectorized tinytorch
    def tiny_fb():
        fn = Conv2dFunction()
        t0 = time.perf_counter()
        out = fn.forward(x, w, b)
        t1 = time.perf_counter()
        fn.backward(g)
        t2 = time.perf_counter()
        return out, t1 - t0, t2 - t1

    out_tiny, _, _ = tiny_fb()
    np.testing.assert_allclose(out_tiny[:args.loop_images, :args.loop_filters], ref_sub, rtol=1e-4, atol=1e-4)

    # 3. PyTorch
    torch = None
    try:
        import torch as _torch
        torch = _torch
        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    if torch is not None:
        tx = torch.from_numpy(x).clone().requires_grad_(True)   # input gradient too, like tinytorch
        tw = torch.from_numpy(w).clone().requires_grad_(True)
        tb = torch.from_numpy(b).clone().requires_grad_(True)
        tg = torch.from_numpy(g)

        def torch_fb():
            tw.grad = None
            tb.grad = None
            tx.grad = None
            t0 = time.perf_counter()
            out = torch.nn.functional.conv2d(tx, tw, tb)
            t1 = time.perf_counter()
            out.backward(tg)
            t2 = time.perf_counter()
            return out, t1 - t0, t2 - t1

        out_t, _, _ = torch_fb()
        np.testing.assert_allclose(out_tiny, out_t.detach().numpy(), rtol=1e-3, atol=1e-3)

    tiny_f, tiny_b, torch_f, torch_b = [], [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        _, f, bw = tiny_fb()
        tiny_f.append(f)
        tiny_b.append(bw)
        if torch is not None:
            _, f, bw = torch_fb()
            torch_f.append(f)
            torch_b.append(bw)
    load_after = os.getloadavg()[0]
    med = statistics.median
    tiny_fb_med = med([f + bw for f, bw in zip(tiny_f, tiny_b)])
    rows = [
        ("seven loops (EXTRAPOLATED from a subset)", t_loop_fwd, t_loop_fb - t_loop_fwd, t_loop_fb),
        ("tinytorch im2col + matmul", med(tiny_f), med(tiny_b), tiny_fb_med),
    ]
    if torch is not None:
        torch_fb_med = med([f + bw for f, bw in zip(torch_f, torch_b)])
        rows.append((f"PyTorch {torch.__version__} CPU", med(torch_f), med(torch_b), torch_fb_med))

    lines = [
        "# Conv2d forward + backward: seven loops vs im2col vs PyTorch",
        "",
        f"Batch (128, 3, 32, 32), 32 filters 5x5, no padding, stride 1: {macs:,} MACs forward "
        f"(backward: 2x that). float32.",
        "",
        f"- command: `python benchmarks/conv2d.py --threads {args.threads}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, threads used {args.threads}, "
        f"numpy {np.__version__}, python {platform.python_version()}",
        f"- tinytorch: {display_path(tinytorch.__file__)}",
        f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- load average (1 min) before/after: {load_before:.1f} / {load_after:.1f} "
        f"(the machine is shared: numbers above ~{os.cpu_count()} mean contention)",
        f"- seven loops: {sub_macs:,} MACs ({args.loop_images} image(s) x {args.loop_filters} filters) "
        f"measured in {t_loop_sub:.2f} s = {loop_rate / 1e6:.2f} M MACs/s; full-batch figures "
        f"extrapolated by MAC count (backward assumed 2x forward MACs at the same rate)",
        f"- vectorized and PyTorch: median of {args.rounds} interleaved rounds",
        "",
        "| implementation | forward | backward | forward + backward | vs PyTorch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    ref = rows[-1][3] if torch is not None else None

    def fmt(s):
        return f"{s:.1f} s" if s >= 1 else f"{s * 1e3:.1f} ms"
    for name, f, bw, fb in rows:
        ratio = f"{fb / ref:,.1f}x" if ref else "n/a"
        lines.append(f"| {name} | {fmt(f)} | {fmt(bw)} | {fmt(fb)} | {ratio} |")
    lines += ["", f"Speed-up of im2col over the loops (forward + backward): {t_loop_fb / tiny_fb_med:,.0f}x.",
              f"Vectorized forward throughput: {2 * macs / med(tiny_f) / 1e9:.1f} GFLOP/s."]
    if torch is None:
        lines.append("PyTorch is not installed: its row is missing.")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('conv2d', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
