"""Benchmark: a shared 2-D weight on (B, T, C), before and after module 05 folds it into one product.

Before: MatMul ran np.matmul on (B, T, C) @ (C, N) as B products, and its backward followed
the textbook broadcast rule (a batched product, then a sum over the batch), so MultiHeadAttention,
MLP and GPT reshaped their input to (B*T, C) before every Linear and back after ("reshape to
2-D for a fast backward"). After: MatMul folds the batch into the rows (one product forward,
one per gradient), and Linear is applied to (B, T, C) directly, as nanoGPT does.

The "before" code is kept below verbatim (the three forwards of the previous commit and the
textbook MatMul) and swapped in for its A runs, so that before and after run interleaved in
one process on module 19's harness: compare(fn_a, fn_b), A B, B A, ... Each pair is first
checked to give the same outputs and gradients.
  1. Linear(C, 4C) on (B, T, C), forward + backward: textbook MatMul vs folded MatMul.
  2. The same Linear: reshape to 2-D around it (the workaround) vs applied to (B, T, C); both folded.
  3. GPT training step at the nanoGPT CPU config (shakespeare_char: 4 layers, 4 heads, 128 dims,
     block 64, batch 12, vocabulary 65, AdamW): the previous commit (workarounds, textbook
     MatMul) vs today's code.
  4. The same step, today's forwards: textbook MatMul vs folded (what deleting the workarounds
     would have cost without the fold; benchmarks/profile_models.py runs this one as Amdahl's
     experiment, backward only).

Run:   python benchmarks/shared_weight.py             (1 thread, writes benchmarks/results/shared_weight.md)
       python benchmarks/shared_weight.py --quick --no-write
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


# ----------------------------------------------------------------- the code before the change
def matmul_forward_batched(self, a, b):
    """MatMul.forward before: np.matmul broadcasts (B, T, K) @ (K, N) as B products."""
    import numpy as np

    self.save_for_backward(a, b)
    return np.matmul(a, b)


def mha_forward_2d(self, x, mask=None):
    """MultiHeadAttention.forward before: every projection on x.reshape(B * T, C)."""
    from tinytorch.core.attention import scaled_dot_product_attention

    B, T, C = x.shape
    H, D = self.num_heads, self.head_dim
    x2 = x.reshape(B * T, C)                                  # (B*T, C): 2-D matmuls
    q = self.q_proj(x2).reshape(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    k = self.k_proj(x2).reshape(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    v = self.v_proj(x2).reshape(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    y = scaled_dot_product_attention(q, k, v, mask=mask)     # (B, H, T, D)
    y = y.transpose(1, 2).reshape(B * T, C)                  # (B*T, C)
    return self.out_proj(y).reshape(B, T, C)                 # (B, T, C)


def mlp_forward_2d(self, x):
    """MLP.forward before."""
    shape = x.shape                                    # (..., C)
    h = x.reshape(-1, shape[-1])                       # (N, C): one 2-D matmul, fast backward
    h = self.act(self.fc(h))                           # (N, 4C)
    return self.proj(h).reshape(*shape)                # (..., C)


def gpt_forward_2d(self, idx):
    """GPT.forward before (the lm_head on (B*T, C))."""
    import numpy as np

    from tinytorch.core.attention import causal_mask

    idx = np.asarray(idx)
    B, T = idx.shape
    x = self.tok_emb(idx) + self.pos_emb(np.arange(T))       # (B, T, C)
    mask = causal_mask(T)
    for block in self.blocks:
        x = block(x, mask=mask)
    x = self.ln_f(x)
    logits = self.lm_head(x.reshape(B * T, self.n_embd))   # (B*T, V)
    return logits.reshape(B, T, self.vocab_size)           # (B, T, V)


def textbook_matmul():
    from tinytorch.core.autograd import MatMul
    from tinytorch.profiling.profiler import matmul_backward_batched

    return [(MatMul, "forward", matmul_forward_batched), (MatMul, "backward", matmul_backward_batched)]


def workarounds():
    from tinytorch.core.attention import MultiHeadAttention
    from tinytorch.models.transformer import GPT, MLP

    return [(MultiHeadAttention, "forward", mha_forward_2d), (MLP, "forward", mlp_forward_2d),
            (GPT, "forward", gpt_forward_2d)]


def under(swaps, fn):
    """fn run with each (cls, name, replacement) of swaps in place (none: as the code is today)."""
    from tinytorch.profiling.profiler import swap_method

    def run():
        with ExitStack() as stack:
            for cls, name, repl in swaps:
                stack.enter_context(swap_method(cls, name, repl))
            return fn()
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=31, help="interleaved rounds of each compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=3, help="each sample: fastest of this many timings")
    ap.add_argument("--min-time", type=float, default=0.02, help="seconds per sample (loop calibration)")
    ap.add_argument("--timer", choices=("cpu", "wall"), default="cpu",
                    help="clock (default cpu: with one BLAS thread it equals wall time on an idle machine "
                         "and is not inflated by other programs)")
    ap.add_argument("--quick", action="store_true", help="batch 2, few rounds (a smoke run)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.core.layers import Linear
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import AdamW
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.transformer import GPT

    if args.quick:
        args.rounds, args.inner, args.min_time = 9, 1, 0.002
    B, T, C, V = (2 if args.quick else 12), 64, 128, 65
    load0 = load1()
    rng = np.random.default_rng(0)

    # 1, 2: one Linear(C, 4C) on (B, T, C), forward + backward with a fixed upstream gradient
    lin = Linear(C, 4 * C, seed=0)
    x = Tensor(rng.standard_normal((B, T, C)).astype(np.float32), requires_grad=True)   # (B, T, C)
    g = rng.standard_normal((B, T, 4 * C)).astype(np.float32)                           # (B, T, 4C)

    def lin_3d():
        x.grad = lin.weight.grad = lin.bias.grad = None
        lin(x).backward(g)
        return x.grad.data, lin.weight.grad.data, lin.bias.grad.data

    def lin_2d():
        x.grad = lin.weight.grad = lin.bias.grad = None
        lin(x.reshape(B * T, C)).reshape(B, T, 4 * C).backward(g)
        return x.grad.data, lin.weight.grad.data, lin.bias.grad.data

    # 3, 4: the GPT training step
    model = GPT(V, T, 4, 4, C, seed=0)
    idx = rng.integers(0, V, (B, T))                                                     # (B, T)
    y = Tensor(rng.integers(0, V, B * T))
    opt = AdamW(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()

    def gpt_grads():
        opt.zero_grad()
        loss = loss_fn(model(idx).reshape(B * T, V), y)
        loss.backward()
        return [float(loss.data)] + [p.grad.data for p in model.parameters()]

    def gpt_step():
        loss = loss_fn(model(idx).reshape(B * T, V), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    cases = [
        ("Linear(128, 512) on (B, T, C), forward + backward", "textbook MatMul", "folded MatMul",
         under(textbook_matmul(), lin_3d), under([], lin_3d)),
        ("Linear(128, 512), forward + backward, folded MatMul", "reshape to (B*T, C) around it", "on (B, T, C)",
         under([], lin_2d), under([], lin_3d)),
        ("GPT training step (forward, loss, backward, AdamW)", "previous commit (workarounds, textbook MatMul)",
         "today (Linear on (B, T, C), folded MatMul)",
         under(workarounds() + textbook_matmul(), gpt_step), under([], gpt_step)),
        ("GPT training step, today's forwards", "textbook MatMul", "folded MatMul",
         under(textbook_matmul(), gpt_step), under([], gpt_step)),
    ]
    checks = {0: (under(textbook_matmul(), lin_3d), lin_3d), 1: (lin_2d, lin_3d),
              2: (under(workarounds() + textbook_matmul(), gpt_grads), gpt_grads),
              3: (under(textbook_matmul(), gpt_grads), gpt_grads)}
    for i, (fa, fb) in checks.items():        # same numbers before any timing (float32 sums in another order)
        for ra, rb in zip(fa(), fb()):
            np.testing.assert_allclose(ra, rb, rtol=1e-4, atol=1e-5 * max(1.0, float(np.max(np.abs(rb)))),
                                       err_msg=cases[i][0])

    rows, settings = [], []
    for what, name_a, name_b, fa, fb in cases:
        res = compare(fa, fb, names=(name_a, name_b), rounds=args.rounds, inner=args.inner,
                      min_time=args.min_time, timer=args.timer)
        settings.append(res.settings)
        speed = 1 / res.ratio
        rows.append(f"| {what} | {name_a}: {fmt_s(float(np.median(res.a)))} | {name_b}: {fmt_s(float(np.median(res.b)))} | "
                    f"**{speed:.3f}x** ({1 / res.ci[1]:.3f}-{1 / res.ci[0]:.3f}) | {res.p_value:.2g} | "
                    f"{'yes' if res.different else 'no'} |")
        print(rows[-1], flush=True)

    lines = header("A shared 2-D weight on (B, T, C): before and after the folded MatMul", "shared_weight.py",
                   argv or sys.argv[1:], load0, sorted(set(settings)))
    lines += [f"B = {B}, T = {T}, C = {C}, vocabulary {V}; GPT(4 layers, 4 heads, {C} dims) (nanoGPT's "
              f"shakespeare_char CPU config is batch 12, block 64, 4 layers, 4 heads, 128 dims); "
              f"{args.threads} BLAS thread(s), {args.timer} clock. Speed-up = "
              "A's median / B's median (the inverse of compare()'s ratio B/A), with its 95% interval; "
              "each A/B pair was checked to give the same outputs and gradients first.", "",
              "| what | A (before) | B (after) | speed-up of B | Mann-Whitney p | different |",
              "| --- | --- | --- | ---: | ---: | --- |", *rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('shared_weight', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
