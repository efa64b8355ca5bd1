"""Module 15's quantization on the trained reference models: accuracy, size on disk, latency.

Models (tinytorch.models.load_pretrained): the MNIST MLP (milestone 3), the CIFAR-10 CNN
(milestone 4, BatchNorm folded first) and the Shakespeare GPT (milestone 5, weight-only).

1. Accuracy on the full test sets (MNIST and CIFAR-10: 10,000 images each) of the float model,
   of INT8 (weights per channel + activations per tensor, min-max calibration on the first
   --calib training images) and of INT8 weight-only; the calibration methods (min-max,
   percentile, MSE) compared on the first --subset test images. The GPT: validation loss per
   character (window_loss over every 64-token window of the last 10%).
2. Size on disk: the shipped float checkpoint's .npz against the INT8 model saved by
   save_pretrained, stored as it is and deflated (compress=True).
3. Latency: float against INT8 with module 19's compare (interleaved rounds), batch 1 and a
   large batch, and what the ratio means (NumPy has no INT8 kernels).
4. Accuracy against bit width (8, 6, 4; weights + activations and weight-only), on the first
   --subset test images: a plot.

Data: --data DIR (default $TINYTORCH_DATA) holding mnist/ and text/; CIFAR-10 from --cifar-root
DIR (holding cifar-10-batches-py/; default: the same DIR). A missing dataset is reported and
skipped (MNIST then falls back to the bundled TinyDigits: 1,000 of MNIST's test images).

Results: benchmarks/results/quantization.md (+ quantization_bits.png), with the machine, its load
average and the checkpoint's card.

Run:   python benchmarks/quantization.py --cifar-root DIR
       python benchmarks/quantization.py --quick --no-write     (a smoke run: small subsets)
"""
from __future__ import annotations

import argparse
import os
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402

BITS = (8, 6, 4)


def plot_bits(bits_rows):
    """The accuracy-against-bit-width plot (benchmarks/results/quantization_bits.png); None without matplotlib.
    ``bits_rows``: model name -> (float32 accuracy, {curve: [accuracy at each of BITS]}, images)."""
    from pathlib import Path

    from _report import display_path
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[plot]'): no plot", flush=True)
        return None
    fig, axes = plt.subplots(1, len(bits_rows), figsize=(5 * len(bits_rows), 3.8), squeeze=False)
    for ax, (name, (fa, curves, m)) in zip(axes[0], bits_rows.items()):
        for curve, marker in (("weights + activations", "o"), ("weight-only", "s")):
            ax.plot(BITS, [100 * a for a in curves[curve]], marker=marker, label=curve)
        ax.axhline(100 * fa, color="gray", linestyle="--", label="float32")
        ax.set_xticks(BITS)
        ax.invert_xaxis()
        ax.set_xlabel("bits per weight (and activation)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name} (first {m:,} test images)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = Path(__file__).resolve().parent / "results" / "quantization_bits.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {display_path(str(png))}", flush=True)
    return png


def replot(report_path) -> int:
    """Draw the plot from the bit-width tables of a written report (the numbers it measured)."""
    import re
    text = open(report_path, encoding="utf-8").read()
    rows = {}
    for section in text.split("\n## ")[1:]:
        name = section.split()[0]
        m = re.search(r"on the first ([\d,]+) test images \(float32: ([\d.]+)%\)", section)
        if not m:
            continue
        table = re.findall(r"^\| (\d) \| ([\d.]+)% \| ([\d.]+)% \|$", section, re.M)
        acc = {int(b): (float(a) / 100, float(w) / 100) for b, a, w in table}
        rows[name] = (float(m.group(2)) / 100, {"weights + activations": [acc[b][0] for b in BITS],
                                                 "weight-only": [acc[b][1] for b in BITS]},
                      int(m.group(1).replace(",", "")))
    return 0 if rows and plot_bits(rows) is not None else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("TINYTORCH_DATA"), help="directory with mnist/ and text/")
    ap.add_argument("--cifar-root", default=None, help="directory holding cifar-10-batches-py/ (default: --data)")
    ap.add_argument("--calib", type=int, default=512, help="calibration images (the first of the training set)")
    ap.add_argument("--test", type=int, default=None, help="test images per dataset (default: all 10,000)")
    ap.add_argument("--subset", type=int, default=1000,
                    help="test images for the calibration-method comparison and the bit-width curves")
    ap.add_argument("--rounds", type=int, default=15, help="compare() rounds per latency figure (>= 9)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--replot", action="store_true",
                    help="only draw the bit-width plot from benchmarks/results/quantization.md's tables")
    args = ap.parse_args(argv)
    if args.replot:
        from _report import REPO
        return replot(REPO / "benchmarks" / "results" / "quantization.md")
    set_blas_threads(args.threads)
    if args.quick:
        args.calib, args.test, args.rounds = min(args.calib, 128), args.test or 300, 9

    import tempfile
    from pathlib import Path

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.spatial import im2col
    from tinytorch.data.datasets import DatasetError, load_cifar10, load_mnist, load_tinydigits
    from tinytorch.models.pretrained import (
        checkpoint_path,
        image_accuracy,
        load_pretrained,
        save_pretrained,
        window_loss,
    )
    from tinytorch.optimization.quantization import (
        F32_EXACT,
        QuantizedConv2d,
        QuantizedLinear,
        accumulation_bound,
        quantize_model,
    )

    load0 = load1()
    tmp = Path(tempfile.mkdtemp())
    lines, bits_rows = [], {}
    data = Path(args.data) if args.data else None
    cifar_root = Path(args.cifar_root) if args.cifar_root else data

    def sizes(model, ref_name, stem):
        """(float .npz bytes, stored and deflated; INT8 stored and deflated bytes) and the two .json
        sizes. Ratios compare like with like: stored with stored, deflated with deflated."""
        ref = checkpoint_path(ref_name)
        fp32 = load_pretrained(ref_name)
        fp32_packed = save_pretrained(fp32, tmp / f"{stem}_fp32_z.npz", fp32.card, fp32.preprocess.spec,
                                      compress=True)
        stored = save_pretrained(model, tmp / f"{stem}.npz", model.card, model.preprocess.spec)
        packed = save_pretrained(model, tmp / f"{stem}_z.npz", model.card, model.preprocess.spec, compress=True)
        back = load_pretrained(packed)                       # the round trip the size claim rests on
        return {"float": ref.stat().st_size, "float_json": ref.with_suffix(".json").stat().st_size,
                "float_deflated": os.path.getsize(fp32_packed),
                "stored": os.path.getsize(stored), "deflated": os.path.getsize(packed),
                "int8_json": Path(packed).with_suffix(".json").stat().st_size, "reloaded": back}

    def latency(fa, fb, label):
        res = compare(fa, fb, names=("float32", "int8"), rounds=args.rounds, inner=3, timer="thread")
        a, b = float(np.median(res.a)), float(np.median(res.b))
        print(f"  latency {label}: float32 {fmt_s(a)}, INT8 {fmt_s(b)}: INT8/float {res.ratio:.2f}x "
              f"(95% CI {res.ci[0]:.2f}-{res.ci[1]:.2f}x), load {load1():.1f}", flush=True)
        return f"| {label} | {fmt_s(a)} | {fmt_s(b)} | **{res.ratio:.2f}x** | {res.ci[0]:.2f}-{res.ci[1]:.2f}x |"

    def image_model(name, train_x, test_x, test_y, source):
        model = load_pretrained(name)
        card = model.card
        n = len(test_y)
        calib = [model.preprocess(train_x[i:i + 64]) for i in range(0, args.calib, 64)]
        print(f"{name}: card {card['metric']} {card['value']} ({card['date']}), {n} test images of {source}, "
              f"{args.calib} calibration images", flush=True)
        float_acc = image_accuracy(model, test_x, test_y)
        rows = [f"| float32 (checkpoint) | {float_acc:.2%} | - |"]
        print(f"  float32 {float_acc:.2%}", flush=True)
        variants = {}
        for label, kw in (("INT8 (min-max calibration)", {}),):
            q = quantize_model(model, calib, **kw)
            q.preprocess, q.card = model.preprocess, card
            acc = image_accuracy(q, test_x, test_y)
            variants[label] = q
            rows.append(f"| {label} | {acc:.2%} | **{(acc - float_acc) * 100:+.2f}** |")
            print(f"  {label}: {acc:.2%} ({(acc - float_acc) * 100:+.2f} points), load {load1():.1f}", flush=True)
        m = min(args.subset, n)                    # weight-only, the calibration methods, bit widths: a subset
        sx, sy = test_x[:m], test_y[:m]
        float_sub = image_accuracy(model, sx, sy)
        method_rows = [f"| float32 | {float_sub:.2%} | - |"]
        for label, kw in (("min-max", None), ("percentile 99.99", {"method": "percentile"}), ("MSE", {"method": "mse"}),
                          ("weight-only (no activation quantization)", {"weight_only": True})):
            qm = variants["INT8 (min-max calibration)"] if kw is None else quantize_model(model, calib, **kw)
            qm.preprocess = model.preprocess
            acc = image_accuracy(qm, sx, sy)
            method_rows.append(f"| INT8, {label} | {acc:.2%} | {(acc - float_sub) * 100:+.2f} |")
            print(f"  first {m}: {label} {acc:.2%} (float {float_sub:.2%}), load {load1():.1f}", flush=True)
        q = variants["INT8 (min-max calibration)"]
        sz = sizes(q, name, name + "_int8")
        same = image_accuracy(sz["reloaded"], test_x[:500], test_y[:500]) == image_accuracy(q, test_x[:500], test_y[:500])
        out = [f"## {name}", "",
               f"Checkpoint card: {card['metric']} {card['value']} on {card['dataset']} {card['split']} "
               f"(trained {card['date']}: `{card['command']}`). Measured on {n:,} test images of {source}; "
               f"calibration: the first {args.calib} training images.", "",
               f"| model | test accuracy ({n:,} images) | change (points) |", "| --- | --- | --- |", *rows, "",
               f"Calibration methods and weight-only INT8, on the first {m:,} test images:", "",
               "| model | accuracy | change (points) |", "| --- | --- | --- |", *method_rows, "",
               "| file | bytes (.npz) | smaller by | + .json |", "| --- | --- | --- | --- |",
               f"| float32 checkpoint (shipped) | {sz['float']:,} | 1.00x | {sz['float_json']:,} |",
               f"| INT8 (min-max), stored | {sz['stored']:,} | **{sz['float'] / sz['stored']:.2f}x** | "
               f"{sz['int8_json']:,} |",
               f"| float32, deflated (compress=True) | {sz['float_deflated']:,} | 1.00x | |",
               f"| INT8 (min-max), deflated (compress=True) | {sz['deflated']:,} | "
               f"**{sz['float_deflated'] / sz['deflated']:.2f}x** (vs float32 deflated) | {sz['int8_json']:,} |", "",
               f"Saved and loaded back with load_pretrained: same accuracy on 500 images: {same}.", ""]
        print(f"  size: float {sz['float']:,} B, INT8 stored {sz['stored']:,} B ({sz['float'] / sz['stored']:.2f}x), "
              f"deflated {sz['deflated']:,} B ({sz['float_deflated'] / sz['deflated']:.2f}x the deflated float)", flush=True)
        x1 = model.preprocess(test_x[:1])
        xb = model.preprocess(test_x[:256])
        out += [f"Exact accumulation: int_matmul's bound on every partial sum (section 6 of the lesson) per "
                f"layer, on the first {len(xb)} test images, against float32's 2^24 = 16,777,216:", "",
                "| layer | K | worst case K x 255 x 128 | bound measured | BLAS used |", "| --- | --- | --- | --- | --- |"]
        h = xb
        with no_grad():
            for i, layer in enumerate(q.layers):
                if isinstance(layer, (QuantizedLinear, QuantizedConv2d)):
                    a = layer.quantize_input(h.data)
                    if isinstance(layer, QuantizedConv2d):
                        a, _ = im2col(a, layer.kernel_size, layer.stride, layer.padding)     # (N, K, L)
                        w = layer.weight.data.reshape(layer.out_channels, -1)                # (O, K)
                        bound = accumulation_bound(w, a)
                    else:
                        w = layer.weight.data
                        bound = accumulation_bound(a, w)
                    K = a.shape[1] if isinstance(layer, QuantizedConv2d) else a.shape[-1]
                    out.append(f"| {i} {type(layer).__name__} | {K:,} | {K * 255 * 128:,} | {bound:,.0f} | "
                               f"{'float32' if bound <= F32_EXACT else 'float64'} |")
                h = layer(h)
        out.append("")
        with no_grad():
            lat = [latency(lambda: model(x1), lambda: q(x1), "batch 1"),
                   latency(lambda: model(xb), lambda: q(xb), "batch 256")]
        out += ["| latency (module 19 compare, thread time) | float32 | INT8 | INT8 / float32 | 95% CI |",
                "| --- | --- | --- | --- | --- |", *lat, ""]
        curves = {"weights + activations": [], "weight-only": []}
        for bits in BITS:
            for curve, kw in (("weights + activations", {}), ("weight-only", {"weight_only": True})):
                qb = quantize_model(model, calib, bits=bits, **kw)
                qb.preprocess = model.preprocess
                acc = image_accuracy(qb, sx, sy)
                curves[curve].append(acc)
                print(f"  first {m}: {bits} bits, {curve}: {acc:.2%}", flush=True)
        bits_rows[name] = (float_sub, curves, m)
        out += [f"Bit width (weights per channel, activations per tensor, min-max), on the first {m:,} test "
                f"images (float32: {float_sub:.2%}):", "",
                "| bits | weights + activations | weight-only |", "| --- | --- | --- |",
                *[f"| {b} | {curves['weights + activations'][i]:.2%} | {curves['weight-only'][i]:.2%} |"
                  for i, b in enumerate(BITS)], ""]
        return out

    def flush(pending):
        """Write the report as far as it is measured (a long run on a loaded machine can be cut)."""
        settings = [f"accuracy: tinytorch.models.pretrained.image_accuracy / window_loss; latency: "
                    f"tinytorch.benchmarking.compare(rounds={args.rounds}, inner=3, timer='thread'), BLAS threads "
                    f"{args.threads}"]
        shown = [a if a not in (args.data, args.cifar_root) else "DIR" for a in sys.argv[1:]]   # no machine paths
        report = header("Quantization (module 15) on the trained reference models", "quantization.py", shown,
                        load0, settings)
        report += ["Every figure below is measured by this run. INT8 = weights symmetric per output channel, "
                   "activations asymmetric per tensor (calibrated), exact integer accumulation; BatchNorm folded "
                   "into the convolutions first. Size = bytes on disk of the .npz written by save_pretrained "
                   "(the .json next to it is listed apart); ratios compare stored with stored and deflated with deflated. Latency: NumPy has no INT8 matrix kernel, so the "
                   "integer products run as float32/float64 BLAS on integer values plus the work of quantizing; "
                   "INT8 is not expected to be faster here (see the lesson, section 10).", ""]
        report += lines
        if pending:
            report += [f"(Run in progress: {', '.join(pending)} not measured yet.)", ""]
        elif png is not None:
            report += ["![accuracy against bit width](quantization_bits.png)", ""]
        text = "\n".join(report)
        if not args.no_write:
            write_result("quantization", text)
        return text

    png = None
    # ---- CIFAR-10 CNN
    try:
        if cifar_root is None:
            raise DatasetError("no --cifar-root or --data")
        (cx, _), (ctx, cty) = load_cifar10(root=cifar_root)
        cx, ctx = np.asarray(cx).reshape(-1, 3, 32, 32), np.asarray(ctx).reshape(-1, 3, 32, 32)
        n = len(cty) if args.test is None else min(args.test, len(cty))
        lines += image_model("cifar10_cnn", cx, ctx[:n], cty[:n], "CIFAR-10's test set")
    except (DatasetError, OSError) as e:
        msg = f"CIFAR-10 not available ({str(e).splitlines()[0][:100]}): skipped"
        print(msg, flush=True)
        lines += ["## cifar10_cnn", "", msg, ""]

    flush(["shakespeare_gpt", "mnist_mlp"])

    # ---- Shakespeare GPT, weight-only
    gpt = load_pretrained("shakespeare_gpt")
    qgpt = quantize_model(gpt, None, weight_only=True)
    qgpt.preprocess, qgpt.card = gpt.preprocess, gpt.card
    text_path = data / "text" / "tinyshakespeare.txt" if data else None
    out = ["## shakespeare_gpt (weight-only INT8)", "",
           f"Checkpoint card: {gpt.card['metric']} {gpt.card['value']} ({gpt.card['date']}: `{gpt.card['command']}`).", ""]
    if text_path is not None and text_path.is_file():
        ids = np.asarray(gpt.preprocess(text_path.read_text(encoding="utf-8"))[0])
        val = ids[int(0.9 * len(ids)):]                                        # the milestone's split
        windows = 20 if args.quick else None
        lf, lq = window_loss(gpt, val, windows), window_loss(qgpt, val, windows)
        nw = windows or (len(val) - 1) // gpt.block_size
        print(f"shakespeare_gpt: validation loss float {lf:.4f}, INT8 weight-only {lq:.4f} ({lq - lf:+.4f}) "
              f"over {nw} windows", flush=True)
        out += ["| model | validation loss (nats/char) | change |", "| --- | --- | --- |",
                f"| float32 | {lf:.4f} | - |", f"| INT8 weight-only (per channel) | {lq:.4f} | **{lq - lf:+.4f}** |",
                "", f"Over {nw:,} windows of {gpt.block_size} characters (the last 10% of tinyshakespeare).", ""]
    else:
        print("shakespeare text not available: loss skipped", flush=True)
        out += ["Validation text not available (--data/text/tinyshakespeare.txt): loss not measured.", ""]
    sz = sizes(qgpt, "shakespeare_gpt", "gpt_int8")
    print(f"  size: float {sz['float']:,} B, INT8 stored {sz['stored']:,} B ({sz['float'] / sz['stored']:.2f}x), "
          f"deflated {sz['deflated']:,} B ({sz['float_deflated'] / sz['deflated']:.2f}x the deflated float)", flush=True)
    ctx = gpt.preprocess("ROMEO:\n" + "x" * (gpt.block_size - 7))
    with no_grad():
        lat = latency(lambda: gpt(ctx), lambda: qgpt(ctx), f"one {gpt.block_size}-token context")
    out += ["| file | bytes (.npz) | smaller by |", "| --- | --- | --- |",
            f"| float32 checkpoint | {sz['float']:,} | 1.00x |",
            f"| INT8 weight-only, stored | {sz['stored']:,} | **{sz['float'] / sz['stored']:.2f}x** |",
            f"| float32, deflated | {sz['float_deflated']:,} | 1.00x |",
            f"| INT8 weight-only, deflated | {sz['deflated']:,} | **{sz['float_deflated'] / sz['deflated']:.2f}x** "
            "(vs float32 deflated) |", "",
            "The token and position embeddings and the LayerNorms stay float32 (weight-only quantizes the "
            "Linear layers: attention projections, MLP, lm_head).", "",
            "| latency (module 19 compare, thread time) | float32 | INT8 | INT8 / float32 | 95% CI |",
            "| --- | --- | --- | --- | --- |", lat, ""]
    lines += out

    flush(["mnist_mlp"])

    # ---- MNIST MLP
    try:
        if data is None:
            raise DatasetError("no --data or $TINYTORCH_DATA")
        (mx, _), (tx, ty) = load_mnist(root=data)
        source = "MNIST's test set"
    except (DatasetError, OSError) as e:
        print(f"MNIST not available ({str(e).splitlines()[0][:80]}): TinyDigits instead", flush=True)
        (mx, _), (tx, ty) = load_tinydigits()
        source = "TinyDigits (1,000 of MNIST's test images)"
    n = len(ty) if args.test is None else min(args.test, len(ty))
    lines += image_model("mnist_mlp", mx, tx[:n], ty[:n], source)

    # ---- plot
    png = plot_bits(bits_rows) if bits_rows and not args.no_write else None

    text = flush([])
    print(text)
    if not args.no_write:
        print("wrote benchmarks/results/quantization.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
