"""Milestone 5 (2017, the transformer era): attention-based text generation with tinytorch only.

Two experiments, both built from the learner's modules 01-13:

  tinytalks    a character-level GPT trained on TinyTalks question-answer pairs (next-character
               loss on the answer characters, the question is context), then asked the held-out
               TEST questions with greedy decoding; reports exact-match accuracy per level with
               sample answers.
  shakespeare  nanoGPT's small CPU configuration on tinyshakespeare (4 layers, 4 heads, 128
               dims, context 64, batch 12, 2,000 iterations); reports validation loss, training
               time and a text sample.

Usage:
  python milestones/05_transformer/transformer.py                 # both, full size
  python milestones/05_transformer/transformer.py --quick         # a few minutes, demo tour
  python milestones/05_transformer/transformer.py --part shakespeare --iters 2000

Shakespeare needs the corpus at $TINYTORCH_DATA/text/tinyshakespeare.txt (skipped with a
message otherwise). Everything is seeded: the same command gives the same numbers (up to BLAS
rounding across machines).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from tito.machine import describe as describe_machine
from tito.machine import set_blas_threads

# One BLAS thread unless the caller chose otherwise: the matmuls here are small, and on 2
# cores threads that wait for each other are slower than one (must precede NumPy's import).
set_blas_threads(1, override=False)

import numpy as np  # noqa: E402

import tinytorch
from tinytorch.core.training import evaluate, train_steps
from tinytorch.nn import CrossEntropyLoss
from tinytorch.nn import Transformer as GPT  # module 13's GPT (see docs/framework.md)
from tinytorch.optim import AdamW
from tinytorch.optim.lr_scheduler import LambdaLR
from tinytorch.text.tokenization import CharTokenizer


# --------------------------------------------------------------------------------------------
# shared training machinery
# --------------------------------------------------------------------------------------------
def char_tokenizer(chars) -> CharTokenizer:
    """Module 10's CharTokenizer over a fixed alphabet: ids 0-3 are its special tokens, then one
    id per character; no byte fallback (an unknown character becomes <unk>)."""
    return CharTokenizer(chars, byte_fallback=False)


def encode(tok: CharTokenizer, text: str) -> np.ndarray:
    return np.array(tok.encode(text), dtype=np.int64)


def lr_at(it: int, max_lr: float, min_lr: float, warmup: int, decay_iters: int) -> float:
    """nanoGPT's schedule: linear warm-up, cosine decay to min_lr."""
    if it < warmup:
        return max_lr * (it + 1) / (warmup + 1)
    if it >= decay_iters:
        return min_lr
    ratio = (it - warmup) / max(1, decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def make_optimizer(model, lr, weight_decay, betas):
    """AdamW with two parameter groups (module 06): decay on matrices (embeddings, linear
    weights), none on biases and LayerNorm."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return AdamW([{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


IGNORE = -1   # a target id the loss skips (PyTorch's ignore_index)


def lm_loss(logits, targets):
    """Mean next-token cross-entropy of logits (B, T, V) against targets (B, T), skipping the
    targets equal to IGNORE (TinyTalks trains on the answer characters only)."""
    B, T, V = logits.shape
    flat, t = logits.reshape(B * T, V), np.asarray(targets.data).reshape(B * T)   # (B*T, V), (B*T,)
    rows = np.flatnonzero(t != IGNORE)                                             # (n,)
    if len(rows) < len(t):
        flat, t = flat[rows], t[rows]                                              # (n, V), (n,)
    return CrossEntropyLoss()(flat, t)                                             # scalar


def train(model, get_batch, iters, lr, min_lr, warmup, weight_decay=0.1, betas=(0.9, 0.99),
          grad_clip=1.0, eval_fn=None, eval_every=250, log_every=100, label=""):
    """nanoGPT's recipe on module 07's train_steps; returns (history, seconds of training)."""
    opt = make_optimizer(model, lr, weight_decay, betas)
    sched = LambdaLR(opt, lambda it: lr_at(it, lr, min_lr, warmup, iters) / lr)   # per step

    def show_eval(record):
        print(f"  [{label}] iter {record['step']:5d}  "
              + "  ".join(f"{k} {v:.4f}" for k, v in record["eval"].items())
              + f"  ({record['seconds']:.0f} s training)", flush=True)

    def show_step(it, loss, seconds):
        if log_every and it % log_every == 0:
            print(f"  [{label}] iter {it:5d}  loss {loss:.4f}  lr {lr_at(it, lr, min_lr, warmup, iters):.2e}"
                  f"  {1000 * seconds / (it + 1):.0f} ms/iter", flush=True)

    out = train_steps(model, opt, lm_loss, lambda it: get_batch(), iters,
                      max_grad_norm=grad_clip or None, scheduler=sched, eval_fn=eval_fn,
                      eval_every=eval_every, on_step=show_step, on_eval=show_eval)
    return [(r["step"], r["eval"]) for r in out["history"]], out["seconds"]


def estimate_loss(model, get_batch_split, splits, n_batches):
    """Mean loss over n_batches fixed batches per split, with module 07's evaluate."""
    return {split: evaluate(model, lm_loss, [get_batch_split(split, i) for i in range(n_batches)],
                            metric=None)["loss"]
            for split in splits}


def n_params(model) -> int:
    return sum(p.size for p in model.parameters())


# --------------------------------------------------------------------------------------------
# part (a): TinyTalks question answering
# --------------------------------------------------------------------------------------------
def load_pairs():
    """[(question, answer, level)] for train, val and test, from tinytorch.data.datasets."""
    from tinytorch.data.datasets import load_tinytalks
    splits = load_tinytalks(with_levels=True)   # ((q, a, level) arrays) per split
    return tuple([(str(q), str(a), int(lv)) for q, a, lv in zip(*s)] for s in splits)


def answer_matches(generated: str, expected: str) -> bool:
    from tinytorch.data.datasets import check_tinytalks_answer
    return bool(check_tinytalks_answer(generated, expected))


def answer_questions(model, vocab, questions, max_new=28):
    """Greedy answers, batched by prompt length (no padding needed)."""
    prompts = [f"\nQ: {q}\nA: " for q in questions]
    answers = [None] * len(prompts)
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    nl = vocab.char_to_id["\n"]
    for _, ids in sorted(by_len.items()):
        idx = np.stack([encode(vocab, prompts[i]) for i in ids])            # (n, L)
        out = idx
        for _ in range(max_new):                                            # stop once all rows end
            out = model.generate(out, 1, temperature=0)                     # (n, L + step)
            if (out[:, idx.shape[1]:] == nl).any(axis=1).all():
                break
        for row, i in zip(out[:, idx.shape[1]:], ids):
            stop = np.where(row == nl)[0]
            answers[i] = vocab.decode(row[: stop[0]] if len(stop) else row, skip_special_tokens=True)
    return answers


def run_tinytalks(args):
    print("\n=== (a) TinyTalks: answering held-out questions ===")
    train_pairs, val_pairs, test_pairs = load_pairs()
    print(f"pairs: train {len(train_pairs)}, val {len(val_pairs)}, test {len(test_pairs)}")
    vocab = char_tokenizer([chr(c) for c in range(32, 127)] + ["\n"])  # fixed printable alphabet
    rng = np.random.default_rng(args.seed)

    def stream(pairs, order):
        """Token ids of "\nQ: ...\nA: ...\n" x n, start offsets, and which ids are answers."""
        texts = [f"Q: {pairs[i][0]}\nA: {pairs[i][1]}\n" for i in order]
        starts = np.cumsum([0] + [len(t) for t in texts[:-1]])
        is_answer = np.zeros(1 + sum(len(t) for t in texts), dtype=bool)
        for st, i in zip(starts, order):
            a0 = 1 + st + len(f"Q: {pairs[i][0]}\nA: ")
            is_answer[a0: a0 + len(pairs[i][1]) + 1] = True      # the answer and its newline
        return encode(vocab, "\n" + "".join(texts)), starts, is_answer

    # training stream: several shuffled copies so windows can start at any example
    parts, starts, answer = [], [], []
    offset = 0
    for _ in range(4):
        s, st, isa = stream(train_pairs, rng.permutation(len(train_pairs)))
        parts.append(s)
        starts.append(st + offset)
        answer.append(isa)
        offset += len(s)
    data = np.concatenate(parts)
    starts = np.concatenate(starts)
    answer = np.concatenate(answer)
    starts = starts[starts + args.tt_block + 1 < len(data)]
    val_data, val_starts, val_answer = stream(val_pairs, np.arange(len(val_pairs)))
    val_starts = val_starts[val_starts + args.tt_block + 1 < len(val_data)]
    T, B = args.tt_block, args.tt_batch
    ar = np.arange(T)

    def batch_from(d, st, isa, r):
        ix = st[r.integers(0, len(st), B)][:, None] + ar                  # (B, T)
        y = d[ix + 1]                                                     # (B, T)
        if args.tt_answer_loss:
            y = np.where(isa[ix + 1], y, IGNORE)                          # loss on answers only
        return d[ix], y

    def get_batch():
        return batch_from(data, starts, answer, rng)

    def get_eval(split, i):
        r = np.random.default_rng(10_000 + i)
        if split == "train":
            return batch_from(data, starts, answer, r)
        return batch_from(val_data, val_starts, val_answer, r)

    model = GPT(len(vocab), T, args.tt_layers, args.tt_heads, args.tt_embd, seed=args.seed)
    print(f"model: GPT {args.tt_layers} layers, {args.tt_heads} heads, {args.tt_embd} dims, "
          f"context {T}, vocab {len(vocab)}: {n_params(model):,} parameters; "
          f"batch {B}, {args.tt_iters} iterations, loss on "
          f"{'answer characters only' if args.tt_answer_loss else 'every character'}")
    eval_fn = lambda: estimate_loss(model, get_eval, ("train", "val"), 10)
    history, secs = train(model, get_batch, args.tt_iters, lr=args.tt_lr, min_lr=args.tt_lr / 10,
                          warmup=100, eval_fn=eval_fn, eval_every=max(100, args.tt_iters // 6),
                          label="tinytalks")
    t0 = time.perf_counter()
    answers = answer_questions(model, vocab, [q for q, _, _ in test_pairs])
    gen_secs = time.perf_counter() - t0
    correct = [answer_matches(g, a) for g, (_, a, _) in zip(answers, test_pairs)]
    acc = float(np.mean(correct))
    levels = sorted({lv for _, _, lv in test_pairs})
    print(f"\ntraining {secs:.0f} s; answering {len(test_pairs)} test questions {gen_secs:.0f} s")
    print(f"{'level':>6} {'questions':>10} {'exact match':>12}")
    per_level = {}
    for lv in levels:
        sel = [c for c, (_, _, l) in zip(correct, test_pairs) if l == lv]
        per_level[lv] = (len(sel), float(np.mean(sel)))
        print(f"{lv:>6} {len(sel):>10} {100 * np.mean(sel):>11.1f}%")
    print(f"{'all':>6} {len(correct):>10} {100 * acc:>11.1f}%")
    print("\nsample answers (test split):")
    pick = np.random.default_rng(0).choice(len(test_pairs), size=min(12, len(test_pairs)), replace=False)
    for i in sorted(pick):
        q, a, lv = test_pairs[i]
        mark = "ok " if correct[i] else "BAD"
        print(f"  [{mark}] L{lv} Q: {q}\n            expected: {a!r:<24} got: {answers[i]!r}")
    if args.save:
        card = {"name": "tinytalks_gpt", "milestone": 5, "dataset": "TinyTalks (bundled)",
                "split": f"test ({len(test_pairs)} questions)", "metric": "exact-match accuracy, greedy",
                "value": acc, "prompt": "\nQ: {question}\nA: ", "stop": "\n",
                "subset": {"questions": "the first 40 test questions", "n": 40, "value": float(np.mean(
                    [answer_matches(g, a) for g, (_, a, _) in zip(
                        answer_questions(model, vocab, [q for q, _, _ in test_pairs[:40]]), test_pairs[:40])]))},
                "per_level": {str(lv): v for lv, (_, v) in per_level.items()},
                "val_loss_answers": float(history[-1][1]["val"]) if history else None}
        save_card(model, vocab, card, secs, args)
    return {"accuracy": acc, "per_level": per_level, "train_seconds": secs,
            "final_losses": history[-1][1] if history else {}, "params": n_params(model),
            "samples": [(test_pairs[i][0], test_pairs[i][1], answers[i], correct[i]) for i in sorted(pick)]}


# --------------------------------------------------------------------------------------------
# part (b): character-level Shakespeare at nanoGPT's small CPU configuration
# --------------------------------------------------------------------------------------------
def shakespeare_path():
    root = os.environ.get("TINYTORCH_DATA")
    if not root:
        return None
    p = Path(root) / "text" / "tinyshakespeare.txt"
    return p if p.is_file() else None


def run_shakespeare(args):
    print("\n=== (b) Shakespeare: nanoGPT's small CPU configuration ===")
    path = shakespeare_path()
    if path is None:
        print("SKIPPED: set TINYTORCH_DATA to the directory holding text/tinyshakespeare.txt")
        return None
    text = path.read_text(encoding="utf-8")
    vocab = char_tokenizer(text)
    data = encode(vocab, text)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    print(f"corpus: {len(text):,} characters, vocab {len(vocab)}, train {len(train_data):,}, "
          f"val {len(val_data):,}")
    T, B = 64, 12
    ar = np.arange(T)
    rng = np.random.default_rng(args.seed)

    def batch_from(d, r):
        ix = r.integers(0, len(d) - T - 1, B)[:, None] + ar                 # (B, T)
        return d[ix], d[ix + 1]

    def get_batch():
        return batch_from(train_data, rng)

    def get_eval(split, i):
        return batch_from(train_data if split == "train" else val_data, np.random.default_rng(20_000 + i))

    model = GPT(len(vocab), T, 4, 4, 128, seed=args.seed)
    print(f"model: GPT 4 layers, 4 heads, 128 dims, context 64: {n_params(model):,} parameters; "
          f"batch {B}, {args.iters} iterations, AdamW lr 1e-3 -> 1e-4 cosine, warm-up 100, "
          f"wd 0.1, betas (0.9, 0.99), clip 1.0")
    eval_fn = lambda: estimate_loss(model, get_eval, ("train", "val"), args.eval_iters)
    history, secs = train(model, get_batch, args.iters, lr=1e-3, min_lr=1e-4, warmup=100,
                          eval_fn=eval_fn, eval_every=250, label="shakespeare")
    final = history[-1][1]
    precise = estimate_loss(model, get_eval, ("val",), args.final_eval_iters)["val"]
    print(f"\nafter {args.iters} iterations: val loss {final['val']:.4f} ({args.eval_iters} batches, "
          f"as nanoGPT), {precise:.4f} ({args.final_eval_iters} batches); train loss {final['train']:.4f}")
    print(f"training time {secs:.0f} s ({1000 * secs / max(1, args.iters):.0f} ms/iter), "
          f"evaluation excluded")
    t0 = time.perf_counter()
    out = model.generate(encode(vocab, "\n")[None, :], args.sample_len, temperature=0.8, top_k=200,
                         seed=args.seed)
    gen_secs = time.perf_counter() - t0
    sample = vocab.decode(out[0, 1:], skip_special_tokens=True)
    print(f"\nsample ({args.sample_len} characters, temperature 0.8, top-k 200, seed {args.seed}, "
          f"{gen_secs:.1f} s):\n" + "-" * 60 + f"\n{sample}\n" + "-" * 60)
    if args.save:
        from tinytorch.models.pretrained import window_loss
        n_val = (len(val_data) - 1) // T
        card = {"name": "shakespeare_gpt", "milestone": 5, "dataset": "tinyshakespeare.txt",
                "split": f"validation: the last 10% ({len(val_data):,} characters), its {n_val:,} "
                         f"non-overlapping {T}-character windows",
                "metric": "cross-entropy per character (nats)", "value": window_loss(model, val_data),
                "subset": {"windows": "the first 64 validation windows", "n": 64,
                           "value": window_loss(model, val_data, 64)},
                "val_loss_milestone": {f"{args.eval_iters} random batches": final["val"],
                                       f"{args.final_eval_iters} random batches": precise}}
        save_card(model, vocab, card, secs, args)
    return {"val_loss": final["val"], "val_loss_precise": precise, "train_loss": final["train"],
            "train_seconds": secs, "history": history, "sample": sample, "params": n_params(model)}


def save_card(model, vocab, card, secs, args):
    """--save DIR: DIR/<name>.npz + .json through save_pretrained (load with load_pretrained)."""
    from tinytorch.models.pretrained import save_pretrained, today
    card.update(trained=f"{args.iters if card['name'] == 'shakespeare_gpt' else args.tt_iters} iterations, "
                        f"seed {args.seed}, {secs:.0f} s",
                command="python milestones/05_transformer/transformer.py " + " ".join(sys.argv[1:]),
                date=today())
    spec = {"type": "text", "tokenizer": {"type": "CharTokenizer", **vocab.to_dict()}}
    path = save_pretrained(model, Path(args.save) / f"{card['name']}.npz", card, spec)
    print(f"saved {path} and its card ({card['metric']}: {card['value']:.4f})")


# --------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("tinytalks", "shakespeare", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="a few minutes: fewer iterations")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--iters", type=int, default=None, help="Shakespeare iterations (default 2000)")
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--final-eval-iters", type=int, default=200)
    ap.add_argument("--sample-len", type=int, default=500)
    ap.add_argument("--tt-iters", type=int, default=None, help="TinyTalks iterations (default 3000)")
    ap.add_argument("--tt-block", type=int, default=96)
    ap.add_argument("--tt-batch", type=int, default=16)
    ap.add_argument("--tt-layers", type=int, default=4)
    ap.add_argument("--tt-heads", type=int, default=4)
    ap.add_argument("--tt-embd", type=int, default=128)
    ap.add_argument("--tt-lr", type=float, default=2e-3)
    ap.add_argument("--tt-answer-loss", type=int, default=1, choices=(0, 1),
                    help="1: train TinyTalks on the answer characters only (default); 0: every character")
    ap.add_argument("--save", metavar="DIR", default=None,
                    help="save each trained model as DIR/<name>.npz + .json (card), read by load_pretrained")
    args = ap.parse_args(argv)
    if args.iters is None:
        args.iters = 200 if args.quick else 2000
    if args.tt_iters is None:
        args.tt_iters = 250 if args.quick else 3000
    if args.quick:
        args.final_eval_iters = min(args.final_eval_iters, 40)
        args.sample_len = min(args.sample_len, 200)

    print("Milestone 5: the transformer era (2017)")
    print(f"tinytorch: {tinytorch.__file__}")
    print(f"machine:   {describe_machine()}")
    print(f"command:   python milestones/05_transformer/transformer.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    results = {}
    t0 = time.perf_counter()
    if args.part in ("tinytalks", "both"):
        results["tinytalks"] = run_tinytalks(args)
    if args.part in ("shakespeare", "both"):
        results["shakespeare"] = run_shakespeare(args)

    print("\n=== result ===")
    print(f"{'experiment':<14} {'metric':<36} {'value':>10}")
    if "tinytalks" in results:
        r = results["tinytalks"]
        print(f"{'TinyTalks':<14} {'test exact-match accuracy':<36} {100 * r['accuracy']:>9.1f}%")
        print(f"{'':<14} {'training seconds':<36} {r['train_seconds']:>10.0f}")
    if results.get("shakespeare"):
        r = results["shakespeare"]
        print(f"{'Shakespeare':<14} {f'val loss after {args.iters} iters (20 b.)':<36} {r['val_loss']:>10.4f}")
        print(f"{'':<14} {f'val loss ({args.final_eval_iters} batches)':<36} {r['val_loss_precise']:>10.4f}")
        print(f"{'':<14} {'training seconds':<36} {r['train_seconds']:>10.0f}")
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    return results


if __name__ == "__main__":
    main()
