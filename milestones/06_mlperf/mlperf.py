"""Milestone 6 (2024, the MLPerf era): the optimized system, measured like MLPerf measures it.

The paper's capstone targets, each measured here with module 19's harness on the shipped
pretrained models (milestone 4's CIFAR-10 CNN, milestone 5's TinyTalks GPT):

  generation   >= 10x faster than milestone 5's uncached `generate` at the same length
               (module 17's KV cache; the same tokens come out, checked)
  size         >= 4x smaller on disk than the FP32 checkpoint (module 15's quantize_model)
  latency      single-stream p90 < 100 ms per CIFAR-10 image (module 19's single_stream)
  accuracy     the optimized CNN within 2 points of the milestone-4 model on the 10,000
               CIFAR-10 test images

Usage:
  python milestones/06_mlperf/mlperf.py                 # full: 10,000 test images, 293 questions
  python milestones/06_mlperf/mlperf.py --quick         # about a minute: the demo tour's run
  python milestones/06_mlperf/mlperf.py --cifar-root DIR --json report.json

CIFAR-10 comes from load_cifar10(root=...): --cifar-root DIR, else $TINYTORCH_DATA (the vision
rows are skipped, with a message, without it). Speed-ups are ratios of two systems timed in one
interleaved run (module 19's compare), the figures that stay meaningful on a shared machine;
every report line carries the machine and its load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tito.machine import describe as describe_machine
from tito.machine import set_blas_threads

# One BLAS thread unless the caller chose otherwise (must precede NumPy's import): single-stream
# inference on small matrices is slower with threads that wait for each other.
set_blas_threads(1, override=False)

import numpy as np  # noqa: E402

import tinytorch  # noqa: E402
from tinytorch.benchmarking.benchmark import compare, report_markdown, single_stream  # noqa: E402
from tinytorch.core.autograd import no_grad  # noqa: E402
from tinytorch.models.pretrained import image_accuracy, load_pretrained, save_pretrained  # noqa: E402
from tinytorch.models.transformer import generate  # noqa: E402

TARGETS = {"speedup": 10.0, "size_ratio": 4.0, "p90_ms": 100.0, "accuracy_drop_points": 2.0}


def tier3(module: str, name: str):
    """``name`` from a tier-3 module of the package under test, or None when that module is not
    in it yet (the row then says which module to complete)."""
    import importlib
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None
        raise


# --------------------------------------------------------------------------------------------
# generation: milestone 5's generate against module 17's KV cache
# --------------------------------------------------------------------------------------------
def prompts_by_length(model, questions):
    """Milestone 5's batching: the prompts "\\nQ: ...\\nA: " grouped by length (no padding)."""
    groups = {}
    for i, q in enumerate(questions):
        ids = model.preprocess(f"\nQ: {q}\nA: ")[0]                          # (L,)
        groups.setdefault(len(ids), []).append((i, ids))
    return [(np.stack([ids for _, ids in g]), [i for i, _ in g]) for _, g in sorted(groups.items())]


def answer_all(model, groups, n_questions, max_new, cached):
    """Greedy continuations of every prompt group, max_new tokens each (no early stop: both
    systems generate exactly the same number of tokens); returns the answers (up to a newline)."""
    tok = model.preprocess.tokenizer
    nl = tok.encode("\n")[0]
    answers = [None] * n_questions
    for idx, rows in groups:                                                 # idx (n, L)
        out = (model.generate(idx, max_new, temperature=0, use_cache=True) if cached
               else generate(model, idx, max_new, temperature=0))            # (n, L + max_new)
        for row, i in zip(out[:, idx.shape[1]:], rows):
            stop = np.flatnonzero(row == nl)
            answers[i] = tok.decode(row[: stop[0]] if len(stop) else row, skip_special_tokens=True)
    return answers


def part_generation(args, rows):
    from tinytorch.data.datasets import check_tinytalks_answer, load_tinytalks

    print("\n=== generation: milestone 5's uncached generate vs module 17's KV cache ===", flush=True)
    model = load_pretrained("tinytalks_gpt")
    print(f"model: tinytalks_gpt (milestone 5), GPT {model.n_layer} layers, context {model.block_size}, "
          f"card: {model.card['metric']} {model.card['value']:.3f} on {model.card['split']}")
    _, _, (q_test, a_test) = load_tinytalks()
    n_q = 40 if args.quick else len(q_test)
    questions, expected = [str(q) for q in q_test[:n_q]], [str(a) for a in a_test[:n_q]]
    max_new = 28                                                             # milestone 5's max_new

    # (1) one stream: the first test prompt, generation to the end of the context
    prompt = model.preprocess(f"\nQ: {questions[0]}\nA: ")                    # (1, P)
    n_new = model.block_size - prompt.shape[1]
    with no_grad():
        same = np.array_equal(generate(model, prompt, n_new, temperature=0),
                              model.generate(prompt, n_new, temperature=0, use_cache=True))
    c1 = compare(lambda: generate(model, prompt, n_new, temperature=0),
                 lambda: model.generate(prompt, n_new, temperature=0, use_cache=True),
                 names=("generate", "KV cache"), rounds=args.rounds, inner=1, timer=args.timer, loops=1)
    speed1 = 1.0 / c1.ratio
    print(f"batch 1, prompt {prompt.shape[1]} + {n_new} new tokens: {c1!r}; same tokens: {same}")
    rows.append(dict(row="generation, one stream", measured=f"{speed1:.1f}x faster (95% CI {1 / c1.ci[1]:.1f}-"
                     f"{1 / c1.ci[0]:.1f}x), same tokens: {'yes' if same else 'NO'}",
                     detail=f"batch 1, prompt {prompt.shape[1]} + {n_new} tokens; median "
                            f"{np.median(c1.a) * 1e3:.0f} ms vs {np.median(c1.b) * 1e3:.0f} ms",
                     target=f">= {TARGETS['speedup']:g}x", value=speed1,
                     met=bool(same and speed1 >= TARGETS["speedup"])))

    # (2) milestone 5's workload: answering the test questions, batched by prompt length
    groups = prompts_by_length(model, questions)
    with no_grad():
        plain = answer_all(model, groups, n_q, max_new, cached=False)
        fast = answer_all(model, groups, n_q, max_new, cached=True)
    same = plain == fast
    acc = float(np.mean([check_tinytalks_answer(g, a) for g, a in zip(fast, expected)]))
    c2 = compare(lambda: answer_all(model, groups, n_q, max_new, cached=False),
                 lambda: answer_all(model, groups, n_q, max_new, cached=True),
                 names=("generate", "KV cache"), rounds=args.rounds, inner=1, timer=args.timer, loops=1)
    speed2 = 1.0 / c2.ratio
    print(f"{n_q} test questions in {len(groups)} batches, {max_new} new tokens each: {c2!r}; "
          f"same answers: {same}; exact match {acc:.1%}")
    rows.append(dict(row="generation, milestone 5's TinyTalks answers",
                     measured=f"{speed2:.1f}x faster (95% CI {1 / c2.ci[1]:.1f}-{1 / c2.ci[0]:.1f}x), "
                              f"same answers: {'yes' if same else 'NO'}",
                     detail=f"{n_q} test questions in {len(groups)} prompt-length batches x {max_new} tokens; "
                            f"median {np.median(c2.a):.2f} s vs {np.median(c2.b):.2f} s; exact match {acc:.1%}",
                     target=f">= {TARGETS['speedup']:g}x", value=speed2,
                     met=bool(same and speed2 >= TARGETS["speedup"])))

    # (3) MLPerf's Offline scenario: the largest batch of same-length prompts, all available at
    # once, generated to the end of the context
    idx, members = max(groups, key=lambda g: len(g[1]))                     # (n, L)
    n_new = model.block_size - idx.shape[1]
    with no_grad():
        same = np.array_equal(generate(model, idx, n_new, temperature=0),
                              model.generate(idx, n_new, temperature=0, use_cache=True))
    c3 = compare(lambda: generate(model, idx, n_new, temperature=0),
                 lambda: model.generate(idx, n_new, temperature=0, use_cache=True),
                 names=("generate", "KV cache"), rounds=args.rounds, inner=1, timer=args.timer, loops=1)
    speed3 = 1.0 / c3.ratio
    print(f"offline batch of {len(members)} prompts of {idx.shape[1]} tokens + {n_new} new: {c3!r}; same tokens: {same}")
    rows.append(dict(row="generation, offline batch", measured=f"{speed3:.1f}x faster (95% CI {1 / c3.ci[1]:.1f}-"
                     f"{1 / c3.ci[0]:.1f}x), same tokens: {'yes' if same else 'NO'}",
                     detail=f"the {len(members)} test prompts of length {idx.shape[1]} at once + {n_new} tokens; "
                            f"median {np.median(c3.a):.2f} s vs {np.median(c3.b):.2f} s",
                     target=f">= {TARGETS['speedup']:g}x", value=speed3,
                     met=bool(same and speed3 >= TARGETS["speedup"])))
    return [c1.to_dict(), c2.to_dict(), c3.to_dict()]


# --------------------------------------------------------------------------------------------
# vision: the CIFAR-10 CNN, FP32 against its optimized variant
# --------------------------------------------------------------------------------------------
def skipped(rows):
    """The vision rows of a run without CIFAR-10: said, not measured."""
    for row, target in (("accuracy", "within 2 points of FP32"), ("single-stream p90 latency", "< 100 ms"),
                        ("size on disk", ">= 4x smaller")):
        rows.append(dict(row=row, measured="skipped: no CIFAR-10 test images (--cifar-root DIR or "
                         "$TINYTORCH_DATA)", detail="", target=target, value=None, met=None))
    return None, True, []


def part_vision(args, rows):
    from tinytorch.data.datasets import DatasetError, load_cifar10

    print("\n=== vision: the milestone-4 CNN on CIFAR-10 ===", flush=True)
    root = args.cifar_root
    if root is None and not os.environ.get("TINYTORCH_DATA"):
        print("CIFAR-10 skipped: pass --cifar-root DIR or set TINYTORCH_DATA")
        return skipped(rows)
    try:
        (x_train, _), (x_test, y_test) = load_cifar10(root=root)
    except DatasetError as e:
        print(f"CIFAR-10 skipped: {e}\nBuild the batches from the shared copy with\n"
              f"  python $TINYTORCH_DATA/cifar10/build_cifar10_batches.py DIR\nand pass --cifar-root DIR.")
        return skipped(rows)
    n_test = 1000 if args.quick else len(y_test)
    x_test, y_test = x_test[:n_test], y_test[:n_test]

    fp32 = load_pretrained("cifar10_cnn")
    print(f"model: cifar10_cnn (milestone 4), card: {model_card_line(fp32)}")
    systems = [("FP32 (milestone 4)", fp32)]
    quantize_model = tier3("tinytorch.optimization.quantization", "quantize_model")
    if quantize_model is None:
        print("INT8: module 15 (quantization) is not in this tinytorch package yet: "
              "complete module 15 for the size row and the INT8 system")
    else:
        calib = [fp32.preprocess(x_train[i:i + 100]) for i in range(0, 1000, 100)]   # 10 x (100, 3, 32, 32)
        t0 = time.perf_counter()
        int8 = quantize_model(fp32, calib)
        int8.preprocess = fp32.preprocess
        print(f"INT8: module 15's quantize_model on 1,000 training images, {time.perf_counter() - t0:.1f} s")
        systems.append(("INT8 (module 15)", int8))

    # accuracy, on the same test images for every system
    accs = {}
    for name, m in systems:
        t0 = time.perf_counter()
        accs[name] = image_accuracy(m, x_test, y_test)
        print(f"{name}: accuracy {accs[name]:.2%} on {n_test:,} test images ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    base = accs[systems[0][0]]
    best_name = systems[-1][0]
    drop = 100 * (base - accs[best_name])
    rows.append(dict(row="accuracy", measured=", ".join(f"{n} {a:.2%}" for n, a in accs.items()),
                     detail=f"{n_test:,} CIFAR-10 test images; {best_name} - FP32 = {-drop:+.2f} points",
                     target="within 2 points of FP32", value=-drop,
                     met=bool(len(systems) > 1 and drop <= TARGETS["accuracy_drop_points"]) if len(systems) > 1
                     else None))

    # single-stream latency: one image per query, preprocessing included
    scenarios = []
    for name, m in systems:
        state = {"i": 0}

        def one_query(m=m, state=state):
            i = state["i"] % n_test
            state["i"] += 1
            with no_grad():
                return m(m.preprocess(x_test[i:i + 1])).data.argmax()
        scenarios.append(single_stream(one_query, name=name, min_queries=64 if args.quick else 500,
                                       warmup=5))
        print(repr(scenarios[-1]), flush=True)
    best = scenarios[-1]
    rows.append(dict(row="single-stream p90 latency",
                     measured=", ".join(f"{s.name} {s.p90 * 1e3:.2f} ms" for s in scenarios),
                     detail=f"{len(best.latencies)} queries of one image each, p50 {best.p50 * 1e3:.2f} ms, "
                            f"p99 {best.p99 * 1e3:.2f} ms ({best.name})",
                     target="< 100 ms", value=best.p90 * 1e3, met=bool(best.p90 * 1e3 < TARGETS["p90_ms"])))

    # size on disk: the checkpoint files each system saves to
    if len(systems) == 1:
        rows.append(dict(row="size on disk", measured="needs module 15 (quantization): not in this package yet",
                         detail="", target=">= 4x smaller", value=None, met=None))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            sizes = {name: checkpoint_bytes(m, tmp, f"s{k}") for k, (name, m) in enumerate(systems)}
        ratio = sizes[systems[0][0]] / sizes[best_name]
        rows.append(dict(row="size on disk", measured=f"{ratio:.2f}x smaller",
                         detail=", ".join(f"{n} {b:,} bytes" for n, b in sizes.items())
                                + " (save_pretrained's .npz + .json)",
                         target=">= 4x smaller", value=ratio, met=bool(ratio >= TARGETS["size_ratio"])))
    return [s.to_dict() for s in scenarios], False, scenarios


def model_card_line(m) -> str:
    c = m.card
    return f"{c.get('metric')} {c.get('value')} on {c.get('split')} ({c.get('date')})"


def checkpoint_bytes(model, folder, name) -> int:
    """Bytes on disk of ``model`` written by save_pretrained (the .npz and its .json)."""
    from tinytorch.models.pretrained import checkpoint_path
    src = json.loads(checkpoint_path("cifar10_cnn").with_suffix(".json").read_text(encoding="utf-8"))
    path = Path(save_pretrained(model, Path(folder, name + ".npz"), src["card"], src["preprocess"]))
    return os.path.getsize(path) + os.path.getsize(path.with_suffix(".json"))


# --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: 1,000 test images, 40 questions")
    ap.add_argument("--cifar-root", default=None, help="directory holding cifar-10-batches-py/")
    ap.add_argument("--rounds", type=int, default=None, help="module 19 compare() rounds (>= 9; default 11 quick, 15)")
    ap.add_argument("--timer", default="thread", choices=("thread", "wall", "cpu"),
                    help="compare()'s clock: 'thread' (CPU time of this thread, default: a preempted "
                         "run on a shared machine is not charged for waiting) or 'wall'")
    ap.add_argument("--skip-vision", action="store_true")
    ap.add_argument("--skip-generation", action="store_true")
    ap.add_argument("--json", default=None, help="also write the measured figures to this JSON file")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (11 if args.quick else 15)

    print(f"Milestone 6: the MLPerf era, running tinytorch from {tinytorch.__file__}")
    machine0 = describe_machine()
    print(f"machine: {machine0}")
    t_all = time.perf_counter()
    rows, report = [], {"machine_before": machine0, "quick": args.quick}
    if not args.skip_generation:
        report["generation"] = part_generation(args, rows)
    missing_data = False
    if not args.skip_vision:
        out = part_vision(args, rows)
        missing_data = out[1]
        if out[0] is not None:
            report["vision"] = out[0]
            print("\n" + report_markdown(out[2], title="CIFAR-10 single stream"))
    machine1 = describe_machine()

    print(f"\nMilestone 6 report ({'quick' if args.quick else 'full'} mode)")
    print(f"machine before / after: {machine0} / {machine1.rsplit(', ', 1)[-1]}")
    print("| target | measured | detail | target | status |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        status = "-" if r["met"] is None else ("REACHED" if r["met"] else "NOT reached")
        print(f"| {r['row']} | {r['measured']} | {r['detail']} | {r['target']} | {status} |")
    print(f"wall time {time.perf_counter() - t_all:.0f} s")
    report.update(rows=rows, machine_after=machine1)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    return 2 if (missing_data and not args.quick) else 0


if __name__ == "__main__":
    sys.exit(main())
