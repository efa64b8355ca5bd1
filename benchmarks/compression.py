"""Module 16's compression measured on the trained milestone-4 CIFAR-10 CNN, in one run.

Stages (each writes its numbers to --work/results.json, so a stage can be re-run alone):
  dense       the checkpoint: test accuracy, file sizes (save_pretrained .npz, save_sparse)
  sweep       one-shot global magnitude pruning at 50..95%, no fine-tuning (accuracy vs sparsity)
  gradual     Zhu & Gupta cubic schedule to 90% global sparsity while fine-tuning (SGD, masks
              re-applied after every step), then the sparse file (float32 / float16 values)
  int8        the 90% model with INT8 values (module 15's quantize_tensor) in the sparse file:
              loaded back from the file and evaluated
  structured  50% of the filters of every conv by L1 norm (a smaller dense CNN), fine-tuned;
              inference speed against the dense CNN with module 19's interleaved compare
  distill     a student CNN with <= 1/4 of the teacher's parameters, trained alone and with
              distillation (T, alpha), same epochs, seeds and batches
Accuracy is always on the full 10,000-image test set (--quick: the first 1,000, for a smoke run).

Results: benchmarks/results/compression.md (+ compression_sparsity.png, compression_frontier.png
when matplotlib is installed), with the machine line, the load average and every budget.

Run:   python benchmarks/compression.py --cifar-root DIR            (CIFAR-10 batches in DIR/cifar-10-batches-py)
       python benchmarks/compression.py --quick --no-write          (a smoke run, a few minutes)
       python benchmarks/compression.py --stages int8 structured    (re-run some stages)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402

np = None     # NumPy is imported by main() after the BLAS threads are set
clock = None  # module 19's wall clock (tinytorch.benchmarking.benchmark.TIMERS), set by main()

STAGES = ("dense", "gradual", "int8", "structured", "distill", "sweep")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar-root", default=None, help="directory holding cifar-10-batches-py/ (else $TINYTORCH_DATA)")
    ap.add_argument("--checkpoint", default="cifar10_cnn", help="load_pretrained name or .npz path")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tinytorch_compression"),
                    help="where the intermediate models and results.json live")
    ap.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--synthetic", action="store_true",
                    help="random images instead of CIFAR-10: only checks that the script runs (never written)")
    ap.add_argument("--prune-steps", type=int, default=None, help="fine-tuning steps of the gradual run (default 600)")
    ap.add_argument("--structured-steps", type=int, default=None, help="fine-tuning steps after structured pruning (default 400)")
    ap.add_argument("--distill-train", type=int, default=None, help="training images for the students (default 50,000)")
    ap.add_argument("--distill-epochs", type=int, default=None, help="student epochs, both ways (default 3)")
    ap.add_argument("--distill-seeds", type=int, nargs="+", default=[0],
                    help="seeds of the student pairs (init, order, flips); the gain is the mean over them")
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--rounds", type=int, default=15, help="compare() rounds for the speed-up")
    ap.add_argument("--sweep", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95],
                    help="sparsities of the one-shot sweep (global; 0.8 and 0.9 also per layer)")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    global np, clock
    import numpy as np

    from tinytorch.benchmarking.benchmark import TIMERS
    clock = TIMERS["wall"]
    from _report import header, load1

    from tinytorch.data.datasets import load_cifar10
    from tinytorch.models.pretrained import checkpoint_path, image_accuracy, load_pretrained

    load0 = load1()
    q = args.quick
    budget = {"prune_steps": args.prune_steps or (20 if q else 600),
              "structured_steps": args.structured_steps or (20 if q else 400),
              "distill_train": args.distill_train or (2_000 if q else 50_000),
              "distill_epochs": args.distill_epochs or (1 if q else 3),
              "batch": 128, "n_test": 1_000 if q else 10_000, "sweep": [float(x) for x in args.sweep],
              "speed_batch": 64}
    if args.synthetic or q:            # never mix smoke numbers with a real run's
        args.work = os.path.join(args.work, "synthetic" if args.synthetic else "quick")
    os.makedirs(args.work, exist_ok=True)
    results_path = os.path.join(args.work, "results.json")
    R = json.load(open(results_path)) if os.path.exists(results_path) else {}
    R["budget"] = budget

    def save_results():
        with open(results_path, "w") as f:
            json.dump(R, f, indent=1)

    if args.synthetic:                 # a smoke test of the code paths: accuracies are meaningless
        args.no_write = True
        r = np.random.default_rng(0)
        xtr, ytr = r.integers(0, 256, (512, 3, 32, 32), dtype=np.uint8), r.integers(0, 10, 512)
        xte, yte = xtr[:200], ytr[:200]
        budget.update(distill_train=256, n_test=200, sweep=[0.9], speed_batch=16)
    else:
        (xtr, ytr), (xte, yte) = load_cifar10(root=args.cifar_root)
    xte, yte = np.asarray(xte)[:budget["n_test"]], np.asarray(yte)[:budget["n_test"]]
    xtr, ytr = np.asarray(xtr), np.asarray(ytr).astype(np.int64)
    meta = json.loads(checkpoint_path(args.checkpoint).with_suffix(".json").read_text())
    spec = meta["preprocess"]
    R["checkpoint"] = {"name": args.checkpoint, "card_value": meta["card"]["value"], "date": meta["card"]["date"]}
    print(f"checkpoint {args.checkpoint}: card accuracy {meta['card']['value']}; test images {len(yte)}; "
          f"budget {budget}; load {load0:.2f}", flush=True)

    def acc(model):
        t0 = clock()
        a = image_accuracy(model, xte, yte)
        print(f"    accuracy {a * 100:.2f}% ({clock() - t0:.0f} s)", flush=True)
        return a

    shown = shown_argv(sys.argv[1:] if argv is None else argv)
    stages = set(args.stages)
    if stages:
        R["load_before"] = round(load0, 2)
    t_all = clock()
    for stage in STAGES:
        if stage in stages:
            print(f"== {stage} (load {load1():.2f})", flush=True)
            t0 = clock()
            earlier = R.get(stage)
            try:
                R[stage] = STAGE_FNS[stage](args, budget, R, acc, xtr, ytr, spec, load_pretrained)
            except ImportError as e:           # int8 needs module 15 (quantize_tensor)
                print(f"  stage {stage} skipped: {e}", flush=True)
                R.pop(stage, None)
                continue
            R[stage]["seconds"] = round(clock() - t0, 1)
            if stage == "distill":         # the gain depends on the budget: every budget measured stays listed
                runs = [r for r in R.get("distill_runs", []) + [earlier]
                        if r and "alone" in r and r.get("train") != R[stage]["train"]]
                R["distill_runs"] = list({r["train"]: r for r in runs}.values())
            R[stage]["command"] = "python benchmarks/compression.py " + " ".join(shown)
            R[stage]["load_after"] = round(load1(), 2)
            save_results()
    print(f"all stages {clock() - t_all:.0f} s", flush=True)
    text = report(R, header("Compression: pruning, sparse INT8 storage, structured pruning, distillation",
                            "compression.py", shown, load0,
                            ["SYNTHETIC random images: a smoke run, every accuracy is meaningless"] * args.synthetic +
                            ["speed-up: tinytorch.benchmarking.compare (interleaved rounds, thread clock)",
                             f"budgets: {json.dumps(budget)}"]))
    print(text)
    if not args.no_write:
        print("wrote", write_result("compression", text))
        plots(R)
    return 0


def shown_argv(argv):
    """The arguments as written into results: directories of this machine become DIR / WORK."""
    out, hide = [], {"--cifar-root": "DIR", "--work": "WORK"}
    for i, a in enumerate(argv):
        key = a.split("=", 1)[0]
        if key in hide and "=" in a:
            out.append(f"{key}={hide[key]}")
        elif i > 0 and argv[i - 1] in hide:
            out.append(hide[argv[i - 1]])
        else:
            out.append(a)
    return out


# ------------------------------------------------------------------------------------ training
def train_loader(xtr, ytr, spec, n, batch, seed):
    from tinytorch.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip
    from tinytorch.utils.data import DataLoader, TensorDataset
    tf = Compose([RandomCrop(32, padding=4, seed=seed), RandomHorizontalFlip(0.5, seed=seed + 1),
                  Normalize(spec["mean"], spec["std"])])
    return DataLoader(TensorDataset(xtr[:n], ytr[:n]), batch_size=batch, shuffle=True, drop_last=True,
                      seed=seed, transform=tf)


def finetune(model, loader, steps, lr=0.01, after_step=None, seed=0):
    """SGD (Nesterov, weight decay 5e-4) with a cosine learning rate over ``steps`` batches;
    ``after_step()`` runs after every optimizer step (the pruner re-applies its masks there)."""
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, CosineAnnealingLR
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import train_step
    opt = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = CosineAnnealingLR(opt, T_max=steps)
    loss_fn = CrossEntropyLoss()
    model.train()
    done, losses, t0 = 0, [], clock()
    while done < steps:
        for x, y in loader:
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            _, loss = train_step(model, opt, loss_fn, x, y, scheduler=sched)
            if after_step is not None:
                after_step()
            losses.append(loss)
            done += 1
            if done % 50 == 0:
                print(f"    step {done}/{steps} loss {np.mean(losses[-50:]):.3f} "
                      f"({clock() - t0:.0f} s)", flush=True)
            if done >= steps:
                break
    model.eval()
    return float(np.mean(losses[-50:]))


def file_sizes(model, work, label, spec, values=("float32", "float16")):
    from tinytorch.optimization.compression import save_sparse
    out = {}
    for v in values:
        p = save_sparse(model, os.path.join(work, f"{label}_{v}.npz"), values=v, preprocess=spec)
        out[v] = os.path.getsize(p)
    return out


# -------------------------------------------------------------------------------------- stages
def stage_dense(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.models.pretrained import checkpoint_path
    model = load_pretrained(args.checkpoint)
    return {"accuracy": acc(model), "params": int(model.num_parameters()),
            "checkpoint_bytes": os.path.getsize(checkpoint_path(args.checkpoint)),
            "save_sparse_bytes": file_sizes(model, args.work, "dense", spec, ("float32",))["float32"]}


def stage_sweep(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.optimization.compression import magnitude_prune
    rows = []
    for scope in ("global", "layer"):
        for s in budget["sweep"]:
            if scope == "layer" and s not in (0.8, 0.9):
                continue
            model = load_pretrained(args.checkpoint)
            magnitude_prune(model, s, scope=scope)
            print(f"  one-shot {scope} {s:.0%}", flush=True)
            rows.append({"scope": scope, "sparsity": s, "accuracy": acc(model)})
    return {"rows": rows}


def stage_gradual(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.core.training import save_state_dict
    from tinytorch.optimization.compression import GradualPruner, sparsity_report
    model = load_pretrained(args.checkpoint)
    steps = budget["prune_steps"]
    end = int(0.6 * steps)
    pruner = GradualPruner(model, 0.9, begin_step=1, end_step=end, frequency=max(1, end // 12), scope="global")
    loader = train_loader(xtr, ytr, spec, len(xtr), budget["batch"], seed=1)
    loss = finetune(model, loader, steps, lr=0.01, after_step=pruner.step)
    rows = sparsity_report(model)
    save_state_dict(model.state_dict(), os.path.join(args.work, "pruned90_state.npz"))
    return {"accuracy": acc(model), "final_loss": loss, "sparsity": rows[-1]["sparsity"],
            "per_layer": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in rows],
            "schedule": f"cubic 0 -> 90% global over steps 1..{end} (pruning every {max(1, end // 12)} steps), "
                        f"then {steps - end} steps at 90%; SGD Nesterov lr 0.01 cosine, batch {budget['batch']}, "
                        f"flips + crops, seed 1",
            "bytes": file_sizes(model, args.work, "pruned90", spec)}


def stage_int8(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.core.training import load_state_dict
    from tinytorch.optimization.compression import load_sparse, save_sparse
    model = load_pretrained(args.checkpoint)
    model.load_state_dict(load_state_dict(os.path.join(args.work, "pruned90_state.npz")))
    path = save_sparse(model, os.path.join(args.work, "pruned90_int8.npz"), values="int8", preprocess=spec)
    back = load_sparse(path)
    return {"accuracy": acc(back), "bytes": os.path.getsize(path)}


def stage_structured(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.core.autograd import no_grad
    from tinytorch.optimization.compression import structured_prune
    dense = load_pretrained(args.checkpoint)
    small = structured_prune(dense, 0.5, norm=1)
    print("  before fine-tuning", flush=True)
    before = acc(small)
    loader = train_loader(xtr, ytr, spec, len(xtr), budget["batch"], seed=2)
    finetune(small, loader, budget["structured_steps"], lr=0.02)
    after = acc(small)
    x = dense.preprocess(xtr[:budget["speed_batch"]])                             # (64, 3, 32, 32)

    def run(m):
        def f():
            with no_grad():
                m(x)
        return f
    dense.eval()
    small.eval()
    cmp = compare(run(small), run(dense), names=("50% structured", "dense"), rounds=max(9, args.rounds),
                  inner=2, timer="thread")
    print(f"  speed-up {cmp.ratio:.2f}x ({cmp.ci[0]:.2f}-{cmp.ci[1]:.2f})", flush=True)
    return {"accuracy_before_ft": before, "accuracy": after, "params": int(small.num_parameters()),
            "speedup": cmp.ratio, "speedup_ci": list(cmp.ci), "compare": cmp.settings,
            "fine_tune": f"{budget['structured_steps']} steps, SGD Nesterov lr 0.02 cosine, batch {budget['batch']}, "
                         "flips + crops, seed 2",
            "bytes": file_sizes(small, args.work, "structured50", spec, ("float32",))["float32"]}


def student_cnn(seed=0):
    """A quarter-size CNN: 16-32-64 channels, one conv per stage (the teacher: 32-32-64-64-128)."""
    from tinytorch.nn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

    def block(cin, cout, s):
        return [Conv2d(cin, cout, 3, padding=1, bias=False, seed=s), BatchNorm2d(cout), ReLU(), MaxPool2d(2)]
    return Sequential(*block(3, 16, seed), *block(16, 32, seed + 1), *block(32, 64, seed + 2),   # (B, 64, 4, 4)
                      Flatten(), Linear(64 * 4 * 4, 10, seed=seed + 3))


def stage_distill(args, budget, R, acc, xtr, ytr, spec, load_pretrained):
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor
    from tinytorch.transforms import Normalize
    teacher = load_pretrained(args.checkpoint)
    n, B, epochs = budget["distill_train"], budget["batch"], budget["distill_epochs"]
    norm = Normalize(spec["mean"], spec["std"])
    xs, ys = xtr[:n], ytr[:n]
    t0 = clock()
    with no_grad():                    # the teacher's logits of every image, unflipped and flipped
        t_logits = np.stack([np.concatenate([teacher(Tensor(np.ascontiguousarray(norm(xs[i:i + 500])[..., ::f]))).data
                                             for i in range(0, n, 500)]) for f in (1, -1)])   # (2, n, 10)
    print(f"  teacher logits of {n} images, both flips ({clock() - t0:.0f} s)", flush=True)
    out = {"teacher_params": int(teacher.num_parameters()), "T": args.temperature, "alpha": args.alpha,
           "seeds": []}
    for seed in args.distill_seeds:
        row = {"seed": seed}
        for mode in ("alone", "distilled"):
            student = train_student(mode, seed, xs, ys, t_logits, norm, epochs, B, args)
            student.preprocess = teacher.preprocess
            row[mode] = acc(student)
            out["student_params"] = int(student.num_parameters())
        print(f"  seed {seed}: alone {row['alone'] * 100:.2f}%, distilled {row['distilled'] * 100:.2f}% "
              f"({(row['distilled'] - row['alone']) * 100:+.2f} points)", flush=True)
        out["seeds"].append(row)
    for mode in ("alone", "distilled"):        # the verdict is on the mean over the seeds
        out[mode] = float(np.mean([r[mode] for r in out["seeds"]]))
    seeds = ", ".join(str(s) for s in args.distill_seeds)
    out["train"] = (f"{n} training images, {epochs} epochs, batch {B}, SGD Nesterov one-cycle to lr 0.05, "
                    f"random flips (the same both ways), seed{'s' * (len(args.distill_seeds) > 1)} {seeds}; "
                    "teacher logits precomputed for every image, unflipped and flipped, so the student is taught "
                    "on the image it sees")
    return out


def train_student(mode, seed, xs, ys, t_logits, norm, epochs, B, args):
    """One student, trained on labels alone or with distillation; the seed fixes init, order and flips."""
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import SGD, OneCycleLR
    from tinytorch.core.tensor import Tensor
    from tinytorch.optimization.compression import distillation_loss
    n = len(xs)
    steps_per_epoch = n // B
    student = student_cnn(seed=4 * seed)
    opt = SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = OneCycleLR(opt, max_lr=0.05, total_steps=epochs * steps_per_epoch)
    ce = CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    t0 = clock()
    student.train()
    for ep in range(epochs):
        order = rng.permutation(n)
        for b in range(steps_per_epoch):
            idx = order[b * B:(b + 1) * B]
            xb = norm(xs[idx])                                                # (B, 3, 32, 32)
            flip = rng.random(len(idx)) < 0.5                               # same flips both ways
            xb[flip] = xb[flip][..., ::-1]
            logits = student(Tensor(np.ascontiguousarray(xb)))
            if mode == "alone":
                loss = ce(logits, ys[idx])
            else:                       # the teacher's logits of the very image the student sees
                loss = distillation_loss(logits, t_logits[flip.astype(np.int64), idx], ys[idx],
                                         args.temperature, args.alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"  seed {seed} {mode} epoch {ep + 1}/{epochs} ({clock() - t0:.0f} s)", flush=True)
    return student


STAGE_FNS = {"dense": stage_dense, "sweep": stage_sweep, "gradual": stage_gradual, "int8": stage_int8,
             "structured": stage_structured, "distill": stage_distill}


# -------------------------------------------------------------------------------------- report
def report(R, head) -> str:
    L = list(head)
    b = R.get("budget", {})
    ck = R.get("checkpoint", {})
    L += [f"Checkpoint: `{ck.get('name')}` (card accuracy {ck.get('card_value')}, {ck.get('date')}). "
          f"Accuracy on the first {b.get('n_test')} CIFAR-10 test images. The last measuring run started "
          f"at load average {R.get('load_before', 'n/a')}; each stage's load at its end is under "
          "Budgets and details.", ""]
    d = R.get("dense")
    if not d:
        return "\n".join(L + ["(no dense stage)"])
    base = d["accuracy"]
    size0 = d["checkpoint_bytes"]

    def pts(a):
        return f"{(a - base) * 100:+.2f}"
    L += ["## Every variant", "",
          "| variant | test accuracy | vs dense (points) | file bytes | smaller than the checkpoint |",
          "| --- | --- | --- | --- | --- |",
          f"| dense checkpoint (save_pretrained .npz) | {base * 100:.2f}% | | {size0:,} | 1.00x |",
          f"| dense, save_sparse float32 | {base * 100:.2f}% | | {d['save_sparse_bytes']:,} | "
          f"{size0 / d['save_sparse_bytes']:.2f}x |"]
    g = R.get("gradual")
    if g:
        for v, n in g["bytes"].items():
            L.append(f"| 90% unstructured, fine-tuned, sparse {v} | {g['accuracy'] * 100:.2f}% | {pts(g['accuracy'])} "
                     f"| {n:,} | {size0 / n:.2f}x |")
    i8 = R.get("int8")
    if i8:
        L.append(f"| 90% unstructured + INT8 values, sparse (loaded back from the file) | {i8['accuracy'] * 100:.2f}% "
                 f"| {pts(i8['accuracy'])} | {i8['bytes']:,} | {size0 / i8['bytes']:.2f}x |")
    s = R.get("structured")
    if s:
        L.append(f"| 50% structured, fine-tuned ({s['params']:,} parameters) | {s['accuracy'] * 100:.2f}% "
                 f"| {pts(s['accuracy'])} | {s['bytes']:,} | {size0 / s['bytes']:.2f}x |")
    k = R.get("distill")
    if k:
        L.append(f"| student alone ({k['student_params']:,} parameters) | {k['alone'] * 100:.2f}% | {pts(k['alone'])} | | |")
        L.append(f"| student distilled (T={k['T']}, alpha={k['alpha']}) | {k['distilled'] * 100:.2f}% "
                 f"| {pts(k['distilled'])} | | |")
        if len(k.get("seeds", [])) > 1:
            L += ["", f"The two student rows are means over seeds {', '.join(str(r['seed']) for r in k['seeds'])}; "
                  "per seed (alone / distilled / gain): " + "; ".join(
                      f"seed {r['seed']}: {r['alone'] * 100:.2f}% / {r['distilled'] * 100:.2f}% / "
                      f"{(r['distilled'] - r['alone']) * 100:+.2f}" for r in k["seeds"]) + "."]
    L += ["", "## Targets (issue 11)", ""]

    def verdict(ok):
        return "REACHED" if ok else "NOT reached"
    if g:
        L.append(f"- 90% unstructured after fine-tuning within 1.5 points: {pts(g['accuracy'])} points, "
                 f"sparsity {g['sparsity'] * 100:.2f}%: {verdict(base - g['accuracy'] <= 0.015)}")
    if i8:
        L.append(f"- pruning + INT8 + sparse storage >= 10x smaller within 2 points: {size0 / i8['bytes']:.2f}x, "
                 f"{pts(i8['accuracy'])} points: {verdict(size0 / i8['bytes'] >= 10 and base - i8['accuracy'] <= 0.02)}")
    if s:
        L.append(f"- 50% structured, speed-up >= 1.6x within 2.5 points: {s['speedup']:.2f}x "
                 f"(95% interval {s['speedup_ci'][0]:.2f}-{s['speedup_ci'][1]:.2f}), {pts(s['accuracy'])} points: "
                 f"{verdict(s['speedup'] >= 1.6 and base - s['accuracy'] <= 0.025)}")
    if k:
        nseeds = len(k.get("seeds", []))
        mean_of = f" (mean of {nseeds} seeds)" if nseeds > 1 else ""
        L.append(f"- student with {k['student_params']:,} <= {k['teacher_params'] / 4:,.0f} parameters, distilled "
                 f"beats alone by >= 1 point: {(k['distilled'] - k['alone']) * 100:+.2f} points"
                 f"{mean_of}: "
                 f"{verdict(k['student_params'] <= k['teacher_params'] / 4 and k['distilled'] - k['alone'] >= 0.01)}")
        if k.get("note"):              # written into results.json by hand: how the run was chosen
            L.append(f"  {k['note']}")
    runs = ([k] if k else []) + R.get("distill_runs", [])
    if len(runs) > 1:
        L += ["", "## Distillation under every budget measured", "",
              "The gain of distillation depends on how many labelled images the student has: each row is one "
              "run of the distill stage (both students, same epochs, seeds and batches); the first is the one "
              "above.", "", "| training images, epochs, seeds | alone | distilled | gain (points) | seconds | command |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
        L += [f"| {r['train'].split(', batch')[0]}, seed{'s' * (len(r.get('seeds', [])) > 1)} "
              f"{', '.join(str(x['seed']) for x in r.get('seeds', [{'seed': 0}]))} | {r['alone'] * 100:.2f}% | {r['distilled'] * 100:.2f}% | "
              f"{(r['distilled'] - r['alone']) * 100:+.2f} | {r.get('seconds', 0):.0f} | `{r.get('command', '')}` |"
              for r in runs]
    sw = R.get("sweep")
    if sw:
        L += ["", "## One-shot magnitude pruning, no fine-tuning", "", "| scope | sparsity | test accuracy |",
              "| --- | --- | --- |"]
        L += [f"| {r['scope']} | {r['sparsity'] * 100:.0f}% | {r['accuracy'] * 100:.2f}% |" for r in sw["rows"]]
    L += ["", "## Budgets and details", ""]
    if g:
        L.append(f"- gradual: {g['schedule']}; {g['seconds']:.0f} s, load after {g['load_after']}")
        L.append("- per layer after fine-tuning: " + ", ".join(
            f"{r['name']} {r['sparsity'] * 100:.1f}%" for r in g["per_layer"]))
    if s:
        L.append(f"- structured: {s['fine_tune']}; accuracy right after pruning {s['accuracy_before_ft'] * 100:.2f}%; "
                 f"speed: forward of {b.get('speed_batch', 64)} images, module 19 compare, {s['compare']}; {s['seconds']:.0f} s, "
                 f"load after {s['load_after']}")
    if k:
        L.append(f"- distillation: {k['train']}; teacher {k['teacher_params']:,} parameters; {k['seconds']:.0f} s, "
                 f"load after {k['load_after']}")
    for st in ("dense", "sweep", "int8"):
        if R.get(st):
            L.append(f"- {st}: {R[st]['seconds']:.0f} s, load after {R[st]['load_after']}")
    L += ["", "Each stage's numbers come from one command (DIR holds cifar-10-batches-py/; WORK the "
          "intermediate models): " + "; ".join(f"{st}: `{R[st].get('command', 'the command above')}`"
                                                for st in STAGES if R.get(st))]
    return "\n".join(L) + "\n"


def plots(R):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401  (matplotlib.ticker.FuncFormatter below)
    except ImportError:
        print("matplotlib missing: no plots (pip install 'tinytorch[plot]')")
        return
    from _report import REPO
    out = REPO / "benchmarks" / "results"
    base = R["dense"]["accuracy"] * 100
    if R.get("sweep"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for scope, mk in (("global", "o-"), ("layer", "s--")):
            rows = [r for r in R["sweep"]["rows"] if r["scope"] == scope]
            ax.plot([0] + [r["sparsity"] * 100 for r in rows], [base] + [r["accuracy"] * 100 for r in rows], mk,
                    label=f"one-shot, {scope}")
        if R.get("gradual"):
            g = R["gradual"]
            ax.plot([g["sparsity"] * 100], [g["accuracy"] * 100], "r*", ms=14, label="gradual + fine-tuning")
        ax.set_xlabel("sparsity of the conv/linear weights (%)")
        ax.set_ylabel("CIFAR-10 test accuracy (%)")
        ax.set_title("accuracy against sparsity (CIFAR-10 CNN)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "compression_sparsity.png", dpi=110)
        plt.close(fig)
    pts = [("dense", R["dense"]["checkpoint_bytes"], base)]
    if R.get("gradual"):
        for v, n in R["gradual"]["bytes"].items():
            pts.append((f"90% sparse {v}", n, R["gradual"]["accuracy"] * 100))
    if R.get("int8"):
        pts.append(("90% sparse INT8", R["int8"]["bytes"], R["int8"]["accuracy"] * 100))
    if R.get("structured"):
        pts.append(("50% structured", R["structured"]["bytes"], R["structured"]["accuracy"] * 100))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, n, a) in enumerate(pts):
        ax.plot(n / 1e3, a, "o")
        ax.annotate(f"{name}\n{n / 1e3:.0f} kB, {a:.2f}%", (n / 1e3, a), textcoords="offset points",
                    xytext=(-20, 8 if i % 2 == 0 else -24), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = min(p[2] for p in pts), max(p[2] for p in pts)
    ax.set_ylim(lo - 0.6 - 0.1 * (hi - lo), hi + 0.6 + 0.1 * (hi - lo))
    ax.set_xlabel("file size on disk (kB, log scale)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title("size / accuracy frontier of every variant")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out / "compression_frontier.png", dpi=110)
    plt.close(fig)
    print("wrote benchmarks/results/compression_sparsity.png, compression_frontier.png")


if __name__ == "__main__":
    sys.exit(main())
