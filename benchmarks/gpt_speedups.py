"""Benchmark: each change that made the GPT training step faster, before against after.

The step is benchmarks/gpt_train.py's (milestone 5's step at nanoGPT's shakespeare_char CPU
configuration: batch 12, block 64, 4 layers, 4 heads, 128 dims, vocabulary 65, AdamW,
clipping). The code before each change is kept below verbatim and swapped in for its A runs
(as benchmarks/shared_weight.py does), so that A and B run interleaved in one process on
module 19's harness; each pair is first checked to give the same loss and gradients.

  1. keep_freed_memory (module 05, section 8c): glibc's allocator keeps freed blocks. Its
     default cannot be restored inside a process once changed, so this one runs in child
     processes, alternately with TINYTORCH_KEEP_FREED_MEMORY=0 (glibc's default) and without,
     each timing tinytorch against PyTorch interleaved; the figure is the ratio to PyTorch.
  2. GELUFn (module 05): the derivative factored, 0.5 (1 + t)(1 + x (1 - t) u'), in place.
  3. Adam.step (module 06, AdamW inherits it): one scratch array instead of six temporaries.
  4. ScaledDotProductAttention (module 12): the mask written in place (np.copyto), the softmax
     backward's row sums by np.einsum, dS in dP's buffer.
  5. LayerNormFunction (module 13): row and column dot products by np.einsum, in place.
  6. 2-5 together.

Run:   python benchmarks/gpt_speedups.py              (1 thread, writes benchmarks/results/gpt_speedups.md)
       python benchmarks/gpt_speedups.py --quick --no-write
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------- the code before the changes
def gelu_forward_before(self, x):
    import numpy as np

    from tinytorch.core.autograd import _GELU_C

    t = np.tanh(_GELU_C * (x + 0.044715 * x * x * x))
    self.save_for_backward(x, t)
    return 0.5 * x * (1 + t)


def gelu_backward_before(self, grad_out):
    from tinytorch.core.autograd import _GELU_C

    x, t = self.saved
    du = _GELU_C * (1 + 3 * 0.044715 * x * x)
    return (grad_out * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du),)


def adam_step_before(self):
    import math

    import numpy as np

    from tinytorch.core.autograd import no_grad

    with no_grad():
        self.step_count += 1
        t = self.step_count
        for group, i, p in self._indexed():
            g = self._grad(p)
            if g is None:
                continue
            (b1, b2), eps = group["betas"], group["eps"]
            step_size = group["lr"] / (1.0 - b1 ** t)
            sqrt_bc2 = math.sqrt(1.0 - b2 ** t)
            g = self._decay(p, g, group)
            m = self._buffer(i, "m")
            v = self._buffer(i, "v")
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= sqrt_bc2
            denom += eps
            p.data -= step_size * (m / denom)


def sdpa_forward_before(self, q, k, v, mask=None):
    import numpy as np

    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    s = q @ np.swapaxes(k, -1, -2)                 # (..., Tq, Tk)
    s *= scale
    if mask is not None:
        s = np.where(mask, s, s.dtype.type(-1e30))
    s -= s.max(axis=-1, keepdims=True)
    p = np.exp(s, out=s)                           # (..., Tq, Tk), reuse the buffer
    p /= p.sum(axis=-1, keepdims=True)
    self.save_for_backward(q, k, v, p)
    self.scale = scale
    return p @ v                                   # (..., Tq, dv)


def sdpa_backward_before(self, grad_out):
    import numpy as np

    q, k, v, p = self.saved
    g = grad_out
    dv = np.swapaxes(p, -1, -2) @ g                # (..., Tk, dv)
    dp = g @ np.swapaxes(v, -1, -2)                # (..., Tq, Tk)
    ds = dp - (dp * p).sum(axis=-1, keepdims=True)
    ds *= p
    ds *= self.scale                               # (..., Tq, Tk)
    dq = ds @ k                                    # (..., Tq, d)
    dk = np.swapaxes(ds, -1, -2) @ q               # (..., Tk, d)
    return dq, dk, dv


def layernorm_forward_before(self, x, gamma, beta, eps=1e-5):
    import numpy as np

    mu = x.mean(axis=-1, keepdims=True)                 # (..., 1)
    xc = x - mu                                         # (..., C)
    var = (xc * xc).mean(axis=-1, keepdims=True)        # (..., 1)
    rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))       # (..., 1)
    x_hat = xc * rstd                                   # (..., C)
    self.save_for_backward(x_hat, rstd, gamma)
    return x_hat * gamma + beta


def layernorm_backward_before(self, grad_out):
    x_hat, rstd, gamma = self.saved
    g = grad_out
    C = x_hat.shape[-1]
    g2 = g.reshape(-1, C)
    dgamma = (g2 * x_hat.reshape(-1, C)).sum(axis=0)    # (C,)
    dbeta = g2.sum(axis=0)                              # (C,)
    dxh = g * gamma                                     # (..., C)
    dx = dxh - dxh.mean(axis=-1, keepdims=True)
    dx -= x_hat * (dxh * x_hat).mean(axis=-1, keepdims=True)
    dx *= rstd
    return dx, dgamma, dbeta


def candidates():
    from tinytorch.core.attention import ScaledDotProductAttention
    from tinytorch.core.autograd import GELUFn
    from tinytorch.core.optimizers import Adam
    from tinytorch.models.transformer import LayerNormFunction

    return [
        ("GELUFn (module 05): factored derivative, in place",
         [(GELUFn, "forward", gelu_forward_before), (GELUFn, "backward", gelu_backward_before)]),
        ("Adam.step (module 06): one scratch array", [(Adam, "step", adam_step_before)]),
        ("ScaledDotProductAttention (module 12): in-place mask, einsum row sums",
         [(ScaledDotProductAttention, "forward", sdpa_forward_before),
          (ScaledDotProductAttention, "backward", sdpa_backward_before)]),
        ("LayerNormFunction (module 13): einsum dot products, in place",
         [(LayerNormFunction, "forward", layernorm_forward_before),
          (LayerNormFunction, "backward", layernorm_backward_before)]),
    ]


def under(swaps, fn):
    """fn run with each (cls, name, replacement) of swaps in place (none: as the code is today)."""
    from tinytorch.profiling.profiler import swap_method

    def run():
        with ExitStack() as stack:
            for cls, name, repl in swaps:
                stack.enter_context(swap_method(cls, name, repl))
            return fn()
    return run


# ----------------------------------------------------------------- 1: the allocator, in child processes
def child(args) -> int:
    """One process: tinytorch against PyTorch, interleaved; prints a JSON line."""
    import numpy as np
    from gpt_train import build

    from tinytorch.benchmarking.benchmark import compare

    run = build(args.threads)
    if args.before:                  # every kernel as it was before this change set
        run["tiny_step"] = under([s for _, swaps in candidates() for s in swaps], run["tiny_step"])
    res = compare(run["torch_step"], run["tiny_step"], rounds=args.rounds, inner=args.inner, loops=1,
                  timer=args.timer)
    faults = None
    try:
        import resource
    except ImportError:              # no page-fault counter (Windows)
        resource = None
    if resource is not None:         # minor page faults of 10 tinytorch steps (first touch of fresh memory)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            run["tiny_step"]()
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    print(json.dumps({"tiny": float(np.median(res.b)), "torch": float(np.median(res.a)), "ratio": res.ratio,
                      "faults": faults, "settings": res.settings}))
    return 0


def allocator_rows(args):
    import numpy as np

    cmd = [sys.executable, str(HERE / "gpt_speedups.py"), "--child", "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--inner", str(args.inner), "--timer", args.timer]
    runs = {"before": [], "0": [], "1": []}
    for _ in range(args.processes):               # alternate: before, default, kept, before, ...
        for key in runs:
            env = dict(os.environ, TINYTORCH_KEEP_FREED_MEMORY="1" if key == "1" else "0")
            out = subprocess.run(cmd + (["--before"] if key == "before" else []), env=env, capture_output=True,
                                 text=True, check=True, cwd=HERE)
            runs[key].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {key}: {runs[key][-1]['ratio']:.3f}x PyTorch", flush=True)
    med = {k: {f: float(np.median([r[f] if r[f] is not None else np.nan for r in v]))
               for f in ("tiny", "torch", "ratio", "faults")} for k, v in runs.items()}
    return med, runs, runs["1"][0]["settings"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=21, help="interleaved rounds of each compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=3, help="each sample: fastest of this many steps")
    ap.add_argument("--processes", type=int, default=3, help="child processes per allocator setting")
    ap.add_argument("--timer", choices=("cpu", "wall"), default="cpu",
                    help="clock (default cpu: with one BLAS thread it equals wall time on an idle machine "
                         "and is not inflated by other programs)")
    ap.add_argument("--quick", action="store_true", help="9 rounds, 1 inner, 1 process per setting (a smoke run)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.inner, args.processes = 9, 1, 1
    set_blas_threads(args.threads)
    if args.child:
        return child(args)

    import numpy as np
    from _report import fmt_s, header, load1

    load0 = load1()
    med, runs, alloc_settings = allocator_rows(args)

    from gpt_train import build

    from tinytorch.benchmarking.benchmark import compare

    run = build(args.threads)
    model, step = run["model"], run["tiny_step"]

    def grads():
        loss = step()
        return [loss] + [p.grad.data.copy() for p in model.parameters()]

    cands = candidates()
    cands.append(("2-5 together", [s for _, swaps in cands for s in swaps]))
    rows, settings = [], [alloc_settings]
    for what, swaps in cands:
        # the same numbers first: one step each from the same parameters and optimizer state
        saved = [p.data.copy() for p in model.parameters()]
        ra = under(swaps, grads)()
        for p, d in zip(model.parameters(), saved):
            p.data[...] = d
        rb = grads()
        for a, b in zip(ra, rb):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * max(1.0, float(np.max(np.abs(b)))), err_msg=what)
        res = compare(under(swaps, step), step, names=("before", "after"), rounds=args.rounds, inner=args.inner,
                      loops=1, timer=args.timer)
        settings.append(res.settings)
        a_ms, b_ms = float(np.median(res.a)), float(np.median(res.b))
        rows.append(f"| {what} | {fmt_s(a_ms)} | {fmt_s(b_ms)} | {fmt_s(a_ms - b_ms)} | **{1 / res.ratio:.3f}x** "
                    f"({1 / res.ci[1]:.3f}-{1 / res.ci[0]:.3f}) | {res.p_value:.2g} | {'yes' if res.different else 'no'} |")
        print(rows[-1], flush=True)

    o, d, k = med["before"], med["0"], med["1"]
    each = {key: ", ".join(f"{r['ratio']:.3f}" for r in v) for key, v in runs.items()}
    lines = header("The GPT training step: each speed-up, before against after", "gpt_speedups.py",
                   argv if argv is not None else sys.argv[1:], load0, sorted(set(settings)))
    lines += [f"Step: benchmarks/gpt_train.py's (milestone 5's step at nanoGPT's shakespeare_char CPU configuration, "
              f"batch 12, block 64, 4 layers, 4 heads, 128 dims, vocabulary 65), {args.threads} BLAS thread(s), "
              f"{args.timer} clock.", "",
              "## 1. The allocator: keep_freed_memory (module 05, section 8c)", "",
              f"{args.processes} child process(es) per setting, run in turn; each times tinytorch against "
              "PyTorch interleaved (PyTorch runs in the same process, under the same allocator setting). Medians:", "",
              "| allocator | tinytorch step | page faults per tinytorch step | PyTorch step | tinytorch / PyTorch | "
              "each process |",
              "| --- | ---: | ---: | ---: | ---: | --- |",
              f"| before: glibc's default, the kernels before 2-5 | {fmt_s(o['tiny'])} | {o['faults']:,.0f} | "
              f"{fmt_s(o['torch'])} | {o['ratio']:.3f}x | {each['before']} |",
              f"| glibc's default (TINYTORCH_KEEP_FREED_MEMORY=0), today's kernels | {fmt_s(d['tiny'])} | {d['faults']:,.0f} | "
              f"{fmt_s(d['torch'])} | {d['ratio']:.3f}x | {each['0']} |",
              f"| freed memory kept (the default now) | {fmt_s(k['tiny'])} | {k['faults']:,.0f} | {fmt_s(k['torch'])} | "
              f"**{k['ratio']:.3f}x** | {each['1']} |", "",
              f"tinytorch's own step: {fmt_s(d['tiny'])} -> {fmt_s(k['tiny'])} from the allocator setting alone "
              f"(**{d['tiny'] / k['tiny']:.2f}x**); {fmt_s(o['tiny'])} -> {fmt_s(k['tiny'])} from everything "
              f"(**{o['tiny'] / k['tiny']:.2f}x**).", "",
              "## 2-6. The kernels, in one process (freed memory kept)", "",
              "A = the code before the change (kept verbatim in this script, swapped in), B = today's. Speed-up = "
              "1 / the median of the per-round ratios B/A (A and B timed in the same round), with its 95% interval; "
              "the columns A and B are each side's median, 'saved' their difference. Each pair was checked to give "
              "the same loss and gradients first.", "",
              "| change | A (before) | B (after) | saved per step | speed-up of B | Mann-Whitney p | different |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |", *rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('gpt_speedups', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
