"""Module 17's KV cache against plain generation, on the GPT of issue 12, in one run.

Model: module 13's GPT with context 512, 4 layers, 4 heads, 128 dims (vocabulary 65, random
weights: the time does not depend on what the weights are). Prompt: 16 tokens.

1. Speed-up of `generate(..., use_cache=True)` (module 17's KV cache with the weights packed:
   FusedDecoder) over `generate(...)` (greedy) at 16, 32, 64, 128, 256 and 496 new tokens
   (16 + 496 = 512 fills the context), each a module 19 `compare` (interleaved rounds, the
   ratio's median and 95% interval), and the tokens checked equal.
2. Time per token against its position, without the cache, with it as CachedModel runs it (the
   layers themselves) and packed (FusedDecoder): every step of one 496-token generation timed
   (the fastest of --position-repeats runs per position), and a plot.

Results: benchmarks/results/kv_cache.md (+ kv_cache.json, kv_cache.png), with the machine and
its load average. On a shared machine only the ratios measured in this one run count.

Run:   python benchmarks/kv_cache.py
       python benchmarks/kv_cache.py --quick --no-write     (a smoke run: small model, few rounds)
"""
from __future__ import annotations

import argparse
import json
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9, help="compare() rounds per length (>= 9)")
    ap.add_argument("--position-repeats", type=int, default=3)
    ap.add_argument("--timer", default="thread", choices=("thread", "wall", "cpu"),
                    help="module 19's clock: 'thread' (this thread's CPU time, default: on a shared "
                         "machine a preempted step is not charged for the time it waited) or 'wall'")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    from pathlib import Path

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import compare, time_loop
    from tinytorch.core.autograd import no_grad
    from tinytorch.generation.kv_cache import CachedModel, FusedDecoder
    from tinytorch.models.transformer import GPT

    load0 = load1()
    block, layers, heads, dims = (128, 2, 2, 64) if args.quick else (512, 4, 4, 128)
    prompt_len = 16
    lengths = [n for n in (16, 32, 64, 128, 256, 496) if prompt_len + n <= block]
    model = GPT(65, block, layers, heads, dims, seed=0)
    prompt = np.random.default_rng(0).integers(0, 65, (1, prompt_len))
    label = f"GPT context {block}, {layers} layers, {heads} heads, {dims} dims, vocab 65, prompt {prompt_len} tokens"
    print(label, flush=True)

    rows, results = [], []
    for n in lengths:
        plain = model.generate(prompt, n, temperature=0)
        cached = model.generate(prompt, n, temperature=0, use_cache=True)
        same = bool(np.array_equal(plain, cached))
        res = compare(lambda: model.generate(prompt, n, temperature=0),
                      lambda: model.generate(prompt, n, temperature=0, use_cache=True),
                      names=("no cache", "KV cache, packed"), rounds=args.rounds, inner=1, warmup=0, loops=1,
                      timer=args.timer)
        speedup, lo, hi = 1 / res.ratio, 1 / res.ci[1], 1 / res.ci[0]
        a, b = float(np.median(res.a)), float(np.median(res.b))
        rows.append(f"| {n} | {fmt_s(a)} | {fmt_s(b)} | {fmt_s(a / n)} | {fmt_s(b / n)} | **{speedup:.1f}x** "
                    f"| {lo:.1f}-{hi:.1f}x | {'yes' if same else 'NO'} |")
        results.append({"new_tokens": n, "no_cache_s": a, "cache_s": b, "speedup": speedup,
                        "speedup_ci": [lo, hi], "tokens_identical": same, "load_after": load1()})
        print(f"{n:>4} new tokens: no cache {fmt_s(a)}, cache {fmt_s(b)} -> {speedup:.1f}x "
              f"(95% CI {lo:.1f}-{hi:.1f}x), tokens identical: {same}, load {load1():.1f}", flush=True)

    # time per token against position: the calls generate makes, each step timed by module 19's
    # time_loop (fastest of --position-repeats); the cached step starts from a cache holding the
    # T - 1 earlier tokens (resetting its length makes the step repeatable: it rewrites slot T - 1)
    n = lengths[-1]
    positions = np.arange(prompt_len, prompt_len + n)              # the context length at each step
    ids = model.generate(prompt, n, temperature=0)                  # (1, 16 + n): the tokens to feed
    memo = CachedModel(model, batch_size=1, max_len=prompt_len + n)
    packed = FusedDecoder(model, batch_size=1, max_len=prompt_len + n)
    t_plain, t_cache, t_packed = np.zeros(n), np.zeros(n), np.zeros(n)
    with no_grad():
        memo(ids[:, :prompt_len - 1])                               # fill the caches
        packed(ids[:, :prompt_len - 1])

        for i, T in enumerate(positions):
            def step(m, T=T):
                m.cache.length, m.seen = T - 1, ids[:, :T - 1]
                return m(ids[:, :T]).data[:, -1]
            t_plain[i] = min(time_loop(lambda T=T: model(ids[:, :T]).data[:, -1], 1, args.timer)
                             for _ in range(args.position_repeats))
            t_cache[i] = min(time_loop(lambda: step(memo), 1, args.timer) for _ in range(args.position_repeats))
            t_packed[i] = min(time_loop(lambda: step(packed), 1, args.timer) for _ in range(args.position_repeats))
    print(f"per token at context {positions[0]}: no cache {fmt_s(t_plain[0])}, cache {fmt_s(t_cache[0])}, "
          f"packed {fmt_s(t_packed[0])}; at {positions[-1]}: {fmt_s(t_plain[-1])} vs {fmt_s(t_cache[-1])} vs "
          f"{fmt_s(t_packed[-1])}", flush=True)

    png = None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'tinytorch[plot]'): no plot")
    else:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(positions, t_plain * 1e3, label="generate(): whole context each step", color="tab:red")
        ax.plot(positions, t_cache * 1e3, label="KV cache: CachedModel (the layers)", color="tab:blue")
        ax.plot(positions, t_packed * 1e3, label="generate(use_cache=True): KV cache, packed (FusedDecoder)",
                color="tab:green")
        ax.set_xlabel("context length at the step (tokens)")
        ax.set_ylabel(f"time of the step (ms, {args.timer} clock, fastest of {args.position_repeats})")
        ax.set_title(label, fontsize=9)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        if not args.no_write:
            png = Path(__file__).resolve().parent / "results" / "kv_cache.png"
            fig.savefig(png, dpi=110)
        plt.close(fig)

    sample = [0, 16, 48, 112, 240, n - 1]
    lines = header("KV cache (module 17): generation with and without the cache", "kv_cache.py",
                   sys.argv[1:] if argv is None else argv, load0,
                   [f"tinytorch.benchmarking.compare, {args.rounds} interleaved rounds per length, one "
                    f"generation per sample, {args.timer} clock; the ratio is the median of the per-round ratios",
                    f"tinytorch.benchmarking.time_loop per step, fastest of {args.position_repeats}, {args.timer} clock"])
    lines += [f"Model: {label}. Greedy decoding; the tokens with and without the cache are compared. "
              "`generate(use_cache=True)` runs module 17's FusedDecoder: the KV cache with the weights "
              "packed once (q, k, v in one matrix) and each step on NumPy arrays with the lessons' kernels.", "",
              "## Speed-up against the number of new tokens", "",
              "| new tokens | no cache | KV cache, packed | per token, no cache | per token, cache | speed-up | 95% CI | same tokens |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |", *rows, "",
              f"## Time of one step against its position ({n} steps, fastest of {args.position_repeats} runs)", "",
              "The step at context length T: without the cache the model runs on all T tokens; with it, on the "
              f"new token only (the first step is the prefill of the {prompt_len}-token prompt); CachedModel "
              "runs the model's layers (module 05's Function calls), FusedDecoder the packed weights.", "",
              "| context length | no cache | KV cache (CachedModel) | ratio | packed (FusedDecoder) | ratio |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |",
              *[f"| {positions[i]} | {fmt_s(t_plain[i])} | {fmt_s(t_cache[i])} | {t_plain[i] / t_cache[i]:.1f}x "
                f"| {fmt_s(t_packed[i])} | {t_plain[i] / t_packed[i]:.1f}x |" for i in sample if i < n], "",
              "Clocks: with the wall clock on a loaded machine a 1 ms step often runs without being preempted "
              "while a 100 ms step never does, which flatters the cache's per-step ratios; the thread clock "
              "(this thread's CPU time) charges every step only for its own work.", ""]
    if png is not None:
        lines += ["![time per token against position](kv_cache.png)", ""]
    print("\n".join(lines))
    if args.no_write:
        return 0
    print("wrote", write_result("kv_cache", "\n".join(lines)))
    out = Path(__file__).resolve().parent / "results" / "kv_cache.json"
    out.write_text(json.dumps({"model": label, "lengths": results,
                               "positions": positions.tolist(), "step_s_no_cache": t_plain.tolist(),
                               "step_s_cache": t_cache.tolist(), "step_s_packed": t_packed.tolist()}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
