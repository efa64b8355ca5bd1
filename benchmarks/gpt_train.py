"""Benchmark: the GPT training step at nanoGPT's shakespeare_char CPU configuration, tinytorch vs PyTorch CPU.

The model is module 13's GPT as milestone 5 trains it on tinyshakespeare (batch 12, block 64,
4 layers, 4 heads, 128 dims, vocabulary 65; 818,176 parameters), and one step is the
milestone's own: module 07's train_step with the milestone's loss (next-token cross-entropy
over (B, T, V)), gradient clipping at 1.0 and its AdamW (lr 1e-3, betas (0.9, 0.99), weight
decay 0.1 on the matrices only). The PyTorch model below is the same network (the same
parameters, copied from the tinytorch model; attention by F.scaled_dot_product_attention with
is_causal=True, as nanoGPT runs it; GELU with the tanh approximation, as module 02's), trained
by the same step. Both are checked first to give the same loss on the same batch, before and
after one step (so gradients, clipping and AdamW agree too). Then module 19's compare() times
them interleaved in one process with the same number of threads, and module 14's Profiler
breaks the tinytorch step down by op.

Run:   python benchmarks/gpt_train.py               (1 thread, writes benchmarks/results/gpt_train.md)
       python benchmarks/gpt_train.py --threads 2   (writes benchmarks/results/gpt_train_2threads.md)
       python benchmarks/gpt_train.py --quick --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402

B, T, LAYERS, HEADS, C, V = 12, 64, 4, 4, 128, 65      # nanoGPT's shakespeare_char on CPU


def torch_gpt(torch, tiny):
    """Module 13's GPT written in PyTorch, with the tinytorch model's parameters copied in
    (parameter names match; nn.Linear keeps its weight as (out, in), the transpose of ours)."""
    nn, F = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(C, C) for _ in range(4))

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (p(x).view(b, t, HEADS, c // HEADS).transpose(1, 2)
                       for p in (self.q_proj, self.k_proj, self.v_proj))         # (B, H, T, D)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)          # (B, H, T, D)
            return self.out_proj(y.transpose(1, 2).reshape(b, t, c))             # (B, T, C)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            return self.proj(F.gelu(self.fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn, self.ln2, self.mlp = nn.LayerNorm(C), Attention(), nn.LayerNorm(C), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb, self.pos_emb = nn.Embedding(V, C), nn.Embedding(T, C)
            self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f, self.lm_head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)

        def forward(self, idx):
            x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.ln_f(x))                                    # (B, T, V)

    net = GPT()
    ours = dict(tiny.named_parameters())
    with torch.no_grad():
        for name, p in net.named_parameters():
            w = ours[name].data
            is_linear = name.endswith("weight") and ("proj" in name or ".fc." in name or name == "lm_head.weight")
            p.copy_(torch.from_numpy(w.T.copy() if is_linear else w.copy()))
    if sum(p.numel() for p in net.parameters()) != sum(p.size for p in tiny.parameters()):
        raise AssertionError("the PyTorch model does not have the tinytorch model's parameters")
    return net


def build(threads: int):
    """The two steps on the same batch, checked to agree: a dict with tiny_step, torch_step,
    model, n_params, checks (the two losses of each checked step), worst (relative difference)
    and torch (the module)."""
    import numpy as np

    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import train_step
    from tinytorch.models.transformer import GPT
    from tito.milestones import load_milestone

    ms = load_milestone("transformer")      # milestone 5: its loss and its optimizer
    rng = np.random.default_rng(0)
    idx = rng.integers(0, V, (B, T))                                  # (B, T) token ids
    y = rng.integers(0, V, (B, T))                                    # (B, T) next-token targets
    x_t, y_t = Tensor(idx), Tensor(y)
    model = GPT(V, T, LAYERS, HEADS, C, seed=0)
    opt = ms.make_optimizer(model, 1e-3, 0.1, (0.9, 0.99))

    def tiny_step():
        return train_step(model, opt, ms.lm_loss, x_t, y_t, max_grad_norm=1.0)[1]   # module 07's step

    try:
        import torch
    except ImportError:
        raise SystemExit("gpt_train.py times tinytorch against PyTorch: install the torch extra "
                         "(pip install torch==2.13.0)") from None
    torch.set_num_threads(threads)
    tnet = torch_gpt(torch, model)
    decay = [p for p in tnet.parameters() if p.ndim >= 2]
    rest = [p for p in tnet.parameters() if p.ndim < 2]
    topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.99))
    tx, ty = torch.from_numpy(idx), torch.from_numpy(y)

    def torch_step():
        loss = torch.nn.functional.cross_entropy(tnet(tx).view(B * T, V), ty.view(B * T))
        topt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tnet.parameters(), 1.0)
        topt.step()
        return loss.item()

    # the same numbers first: the loss before the first step, and after it (gradients, clipping, AdamW)
    checks = []
    for s in range(2):
        lt, lp = tiny_step(), torch_step()
        checks.append((lt, lp))
        if not np.isclose(lt, lp, rtol=2e-5, atol=0):
            raise AssertionError(f"step {s}: tinytorch loss {lt:.7f} != PyTorch {lp:.7f}")
    return dict(tiny_step=tiny_step, torch_step=torch_step, model=model, torch=torch, checks=checks,
                n_params=sum(p.size for p in model.parameters()),
                worst=max(abs(a - b) / abs(b) for a, b in checks))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timer", choices=("cpu", "wall"), default=None,
                    help="clock (default: cpu with 1 thread, where it equals wall time on an idle machine "
                         "and is not inflated by other programs; wall with more threads)")
    ap.add_argument("--rounds", type=int, default=31, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=3, help="each sample: fastest of this many steps")
    ap.add_argument("--repeats", type=int, default=5, help="profiler repeats for the op breakdown")
    ap.add_argument("--quick", action="store_true", help="9 rounds, 1 inner, 2 profiler repeats (a smoke run)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.inner, args.repeats = 9, 1, 2
    set_blas_threads(args.threads)
    timer = args.timer or ("cpu" if args.threads == 1 else "wall")

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.profiling.profiler import Profiler

    load0 = load1()
    run = build(args.threads)
    tiny_step, torch_step, model, torch = run["tiny_step"], run["torch_step"], run["model"], run["torch"]
    checks, worst, n_params = run["checks"], run["worst"], run["n_params"]

    res = compare(torch_step, tiny_step, names=(f"PyTorch {torch.__version__}", "tinytorch"), timer=timer,
                  rounds=args.rounds, inner=args.inner, loops=1)
    prof = Profiler(model, memory=False).run(tiny_step, warmup=0, repeats=args.repeats)
    settings = [res.settings, f"op breakdown: tinytorch.profiling.Profiler, median of {args.repeats} instrumented steps"]
    name = "gpt_train" if args.threads == 1 else f"gpt_train_{args.threads}threads"
    lines = header("GPT training step at nanoGPT's CPU configuration: tinytorch vs PyTorch CPU", "gpt_train.py",
                   argv if argv is not None else sys.argv[1:], load0, settings)
    lines += [f"Model: module 13's GPT, batch {B}, block {T}, {LAYERS} layers, {HEADS} heads, {C} dims, vocabulary {V} "
              f"(nanoGPT's shakespeare_char CPU configuration), {n_params:,} parameters, float32. One step = "
              "milestone 5's: module 07's train_step (zero_grad, forward, cross-entropy over (B, T, V), backward, "
              "gradient clipping at 1.0, AdamW with decay on the matrices only); "
              f"{args.threads} thread(s), {timer} clock. PyTorch runs the same network with the same parameters "
              "(attention by F.scaled_dot_product_attention(is_causal=True)); the two gave the same loss before and "
              f"after one step (losses {', '.join(f'{a:.6f} / {b:.6f}' for a, b in checks)}; "
              f"largest relative difference {worst:.1e}).", "",
              "| framework | step (median) | tokens/s |", "| --- | ---: | ---: |"]
    for n, t in (("tinytorch (NumPy)", float(np.median(res.b))), (f"PyTorch {torch.__version__} CPU", float(np.median(res.a)))):
        lines.append(f"| {n} | {fmt_s(t)} | {B * T / t:,.0f} |")
    lines += ["", f"tinytorch / PyTorch: **{res.ratio:.2f}x** (95% CI {res.ci[0]:.2f}-{res.ci[1]:.2f}, "
                  f"Mann-Whitney p = {res.p_value:.2g})."]
    # shares of the CPU time with the cpu clock (a loaded machine inflates wall times), else of the wall time
    clock = "cpu" if timer == "cpu" else "wall"
    step = float(np.median([r[clock] for r in prof.rounds]))
    lines += ["", f"Where the tinytorch step goes (instrumented step: {fmt_s(step)} {clock} time; plain step "
              f"{fmt_s(float(np.median(prof.plain_cpu if clock == 'cpu' else prof.plain_times)))}). Wall and CPU "
              f"time per op, median over the profiler's repeats; share = of the step's {clock} time:", "",
              "| op | phase | calls | wall | CPU | share |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    rows = sorted(prof.op_table(), key=lambda r: -r[clock]["median"])
    for r in rows[:16]:
        lines.append(f"| {r['op']} | {r['phase']} | {r['calls']} | {fmt_s(r['wall']['median'])} | "
                     f"{fmt_s(r['cpu']['median'])} | {r[clock]['median'] / step * 100:.0f}% |")
    other = sum(r[clock]["median"] for r in rows[16:])
    rest_t = step - sum(r[clock]["median"] for r in rows)
    lines.append(f"| {len(rows) - 16} other (op, phase) rows | | | | | {other / step * 100:.0f}% |")
    lines.append(f"| everything else (graph bookkeeping, clipping, optimizer, Python) | | | | | "
                 f"{rest_t / step * 100:.0f}% ({fmt_s(rest_t)}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result(name, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
