"""Profile the milestone-4 CNN and the milestone-5 GPT, and test Amdahl's law on them.

For each model, one training step (forward, cross-entropy, backward, optimizer) on random data
of the milestone's shapes: the CIFAR CNN at batch 128, the Shakespeare GPT (4 layers, 4 heads,
128 dims, context 64) at batch 12. Module 14's Profiler gives the bottleneck tables (per op
and per layer, forward and backward, median over repeats) and its own overhead. Then the
Amdahl experiment: take an op, make it faster for real (a different implementation, checked
to give the same gradients), measure the op's own speed-up s in a profile, predict the step's
speed-up 1 / ((1 - p) + p / s) from the op's share p, and measure the step's speed-up with
module 19's compare() (old and new step interleaved).
  CNN: the top op, Conv2dFunction.backward, with its stride-1 input gradient computed as a
       convolution of the output gradient (tinytorch.profiling.profiler.conv_backward_fast).
  GPT: the top op, MatMul.backward. Every Linear runs on (B, T, C) with a shared (C, N) weight;
       "before" is the textbook broadcast rule (a batched product, then a sum over the batch:
       tinytorch.profiling.profiler.matmul_backward_batched), the faster op is module 05's
       MatMul.backward, which folds the batch into the rows and does one 2-D product.

Run:   python benchmarks/profile_models.py            (writes benchmarks/results/profile_models.md,
                                                       bottlenecks_cnn.png, bottlenecks_gpt.png)
       python benchmarks/profile_models.py --quick --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def build(name, batch=None, seed=0):
    """(model, step function, label) of a milestone model at the milestone's shapes."""
    import numpy as np

    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, AdamW
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import train_epoch
    from tito.milestones import load_milestone

    rng = np.random.default_rng(seed)
    if name == "cnn":
        ms = load_milestone("cnn")
        B = batch or 128
        model = ms.cifar_cnn(seed)
        x = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)          # (B, 3, 32, 32)
        y = rng.integers(0, 10, B)
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
        loss_fn = CrossEntropyLoss()
        return model, (lambda: train_epoch(model, opt, loss_fn, [(x, y)], metric=None)), x, \
            f"milestone-4 CIFAR CNN (cifar_cnn), batch {B}, SGD step"
    from tinytorch.models.transformer import GPT
    B = batch or 12
    model = GPT(65, 64, 4, 4, 128, seed=seed)
    x = rng.integers(0, 65, (B, 64))                                         # (B, T)
    y = Tensor(rng.integers(0, 65, B * 64))
    opt = AdamW(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x).reshape(B * 64, 65), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return model, step, x, f"milestone-5 Shakespeare GPT (4 layers, 4 heads, 128 dims, T=64), batch {B}, AdamW step"


def check_same_gradients(cls, fast, make):
    """The fast backward returns the gradients of the original on a random case."""
    import numpy as np

    fn, g = make()
    for a, b in zip(cls.backward(fn, g), fast(fn, g)):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def amdahl_experiment(model, step, cls, op_name, fast, repeats, rounds, inner, timer, baseline=None):
    """p and s from profiles, the prediction, and the step's speed-up measured by compare().

    baseline: if given, "before" runs with cls.backward = baseline (and "after" with fast)."""
    if baseline is not None:
        from tinytorch.profiling.profiler import swap_method

        with swap_method(cls, "backward", baseline):
            return amdahl_experiment(model, step, cls, op_name, fast, repeats, rounds, inner, timer)
    import statistics

    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.profiling.profiler import Profiler, amdahl_speedup, swap_method

    clock = "cpu" if timer == "cpu" else "wall"

    def op_time(prof):
        row = next(r for r in prof.op_table() if r["op"] == op_name and r["phase"] == "backward")
        return row[clock]["median"]

    before = Profiler(model, memory=False).run(step, warmup=1, repeats=repeats)
    with swap_method(cls, "backward", fast):
        after = Profiler(model, memory=False).run(step, warmup=1, repeats=repeats)
    plain = statistics.median(before.plain_cpu if clock == "cpu" else before.plain_times)
    p = min(op_time(before) / plain, 1.0)
    s = op_time(before) / op_time(after)

    def fast_step():
        with swap_method(cls, "backward", fast):
            return step()
    res = compare(step, fast_step, names=("original", "faster op"), rounds=rounds, inner=inner, loops=1,
                  timer=timer)
    return {"op": f"{op_name}.backward", "p": p, "s": s, "predicted": amdahl_speedup(p, s),
            "measured": 1 / res.ratio, "measured_ci": (1 / res.ci[1], 1 / res.ci[0]),
            "ceiling": amdahl_speedup(p, float("inf")), "compare": res}


def table(prof, top):
    from _report import fmt_s

    lines = ["| op | phase | calls | wall (median) | spread (min-max) | CPU | share | GFLOP | GMAC | activations |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in prof.op_table()[:top]:
        w = r["wall"]
        lines.append(f"| {r['op']} | {r['phase']} | {r['calls']} | {fmt_s(w['median'])} | "
                     f"{fmt_s(w['min'])}-{fmt_s(w['max'])} | {fmt_s(r['cpu']['median'])} | {r['share'] * 100:.1f}% | "
                     f"{r['flops'] / 1e9:.3f} | {r['macs'] / 1e9:.3f} | {r['act_bytes'] / 2**20:.1f} MiB |")
    lines += ["", "| layer | type | calls | forward | backward | CPU fwd + bwd | share | GFLOP fwd | params | activations |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in prof.module_table()[:top]:
        lines.append(f"| {r['module']} | {r['type']} | {r['calls']} | {fmt_s(r['forward'])} | {fmt_s(r['backward'])} | "
                     f"{fmt_s(r['forward_cpu'] + r['backward_cpu'])} | "
                     f"{r['share'] * 100:.1f}% | {r['flops_fwd'] / 1e9:.3f} | {r['param_bytes'] / 1024:.1f} KiB | "
                     f"{r['act_bytes'] / 2**20:.2f} MiB |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="profiler repeats")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the A/B step comparison")
    ap.add_argument("--inner", type=int, default=1)
    ap.add_argument("--timer", choices=("cpu", "wall"), default="cpu",
                    help="clock of the Amdahl experiment (default cpu: with one BLAS thread it equals wall "
                         "time on an idle machine and is not inflated by other programs)")
    ap.add_argument("--top", type=int, default=12, help="rows of each table")
    ap.add_argument("--quick", action="store_true", help="small batches and few repeats (a smoke run)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.core.autograd import MatMul
    from tinytorch.core.spatial import Conv2dFunction
    from tinytorch.profiling.profiler import Profiler, amdahl_speedup, conv_backward_fast, matmul_backward_batched
    from tinytorch.profiling.roofline import plot_bottlenecks

    try:  # the experiments are about module 09's convolution: switch module 18's kernels off
        from tinytorch.optimization.acceleration import disable_acceleration
        disable_acceleration()
    except ModuleNotFoundError:
        pass
    if args.quick:
        args.repeats, args.rounds = 1, 9
    load0 = load1()
    rng = np.random.default_rng(0)

    def conv_case():
        f = Conv2dFunction()
        f.needs_input_grad = (True, True)
        x = rng.standard_normal((4, 8, 10, 10)).astype(np.float32)
        out = f.forward(x, rng.standard_normal((6, 8, 3, 3)).astype(np.float32), padding=1)
        return f, rng.standard_normal(out.shape).astype(np.float32)

    def matmul_case():
        f = MatMul()
        f.needs_input_grad = (True, True)
        out = f.forward(rng.standard_normal((4, 16, 32)).astype(np.float32),      # (B, T, C) @ (C, N)
                        rng.standard_normal((32, 24)).astype(np.float32))
        return f, rng.standard_normal(out.shape).astype(np.float32)

    check_same_gradients(Conv2dFunction, conv_backward_fast, conv_case)
    folded = MatMul.backward                       # module 05's; the baseline is the textbook rule
    check_same_gradients(MatMul, matmul_backward_batched, matmul_case)

    sections, settings, results = [], [], {}
    for name, cls, op, fast, baseline, what in (
            ("cnn", Conv2dFunction, "Conv2dFunction", conv_backward_fast, None,
             "before: module 09's backward; after: the stride-1 input gradient as a convolution (conv_backward_fast)"),
            ("gpt", MatMul, "MatMul", folded, matmul_backward_batched,
             "before: the textbook broadcast rule (matmul_backward_batched: batched products, then a sum over "
             "the batch); after: module 05's MatMul.backward (the batch folded into the rows, one 2-D product)")):
        batch = (8 if name == "cnn" else 2) if args.quick else None
        model, step, _, label = build(name, batch)
        prof = Profiler(model).run(step, warmup=1, repeats=args.repeats)
        ov, per_call = prof.overhead("cpu" if args.timer == "cpu" else "wall")
        amd = amdahl_experiment(model, step, cls, op, fast, args.repeats, args.rounds, args.inner, args.timer,
                                baseline=baseline)
        clock = "cpu" if args.timer == "cpu" else "wall"
        top = max(prof.op_table(), key=lambda r: r[clock]["median"])
        plain = prof.plain_cpu if clock == "cpu" else prof.plain_times
        top_p = min(top[clock]["median"] / float(np.median(plain)), 1.0)
        results[name] = (prof, amd)
        settings.append(f"{name}: {amd['compare'].settings}")
        sections += [f"## {label}", "",
                     f"Step: plain median {fmt_s(float(np.median(prof.plain_times)))} wall, "
                     f"{fmt_s(float(np.median(prof.plain_cpu)))} CPU; instrumented "
                     f"{fmt_s(prof.step_time()['median'])} wall, {fmt_s(prof.step_time('cpu')['median'])} CPU, over "
                     f"{args.repeats} repeats; profiler overhead ({args.timer} time) "
                     f"{ov * 100:+.1f}% ({per_call * 1e6:.1f} us per recorded call); peak memory of the step "
                     f"{prof.peak_bytes / 2**20:.1f} MiB (tracemalloc).", "", *table(prof, args.top), "",
                     f"Top op ({clock} time): {top['op']}.{top['phase']}, {top_p * 100:.1f}% of the plain step: 2x faster would give "
                     f"{amdahl_speedup(top_p, 2):.2f}x overall, infinitely fast {amdahl_speedup(top_p, float('inf')):.2f}x.", "",
                     f"Amdahl's law, predicted vs measured ({args.timer} clock: p and s from the profiles, "
                     f"the step's speed-up from compare()); {what}:", "",
                     "| op made faster | share p | op speed-up s | predicted 1/((1-p)+p/s) | measured (95% CI) | ceiling (s = inf) |",
                     "| --- | ---: | ---: | ---: | ---: | ---: |",
                     f"| {amd['op']} | {amd['p'] * 100:.1f}% | {amd['s']:.2f}x | {amd['predicted']:.3f}x | "
                     f"{amd['measured']:.3f}x ({amd['measured_ci'][0]:.3f}-{amd['measured_ci'][1]:.3f}) | {amd['ceiling']:.2f}x |",
                     ""]
        if not args.no_write:
            from pathlib import Path

            from _report import display_path
            try:
                png = Path(__file__).resolve().parent / "results" / f"bottlenecks_{name}.png"
                plot_bottlenecks(prof, png, title=f"{label}\nshare of the step (module 14 Profiler)")
                sections += [f"![bottlenecks of the {name.upper()}](bottlenecks_{name}.png)", ""]
                print(f"wrote {display_path(str(png))}")
            except ImportError as e:
                print(f"no plot: {e}")
    settings.insert(0, f"profiles: tinytorch.profiling.Profiler.run, warm-up 1, {args.repeats} repeats "
                       "(plain and instrumented steps alternate), one extra tracemalloc round for memory")
    lines = header("Bottlenecks of the milestone models, and Amdahl's law measured", "profile_models.py",
                   argv or sys.argv[1:], load0, settings) + sections
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('profile_models', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
