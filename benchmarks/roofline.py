"""The roofline of this machine, with every layer of the milestone-4 CNN and milestone-5 GPT on it.

Peak float32 FLOP/s: the best of several large matmuls. Memory bandwidth: a large copy (read +
write) and a STREAM-style triad. Then one inference forward pass of each model (the CIFAR CNN at
batch 128, the Shakespeare GPT at batch 12, context 64) is profiled with module 14's Profiler
(median of repeats), and every (layer, op) of it is placed by arithmetic intensity (FLOPs per
byte of minimal traffic: inputs read once, output written once) and achieved FLOP/s. Products
(matmul, conv, attention) count their FLOPs; other ops are placed at an estimated 1 FLOP per
element. An op is memory-bound when its intensity is below the ridge point peak / bandwidth.

Run:   python benchmarks/roofline.py       (writes benchmarks/results/roofline.md and roofline.png)
       python benchmarks/roofline.py --quick --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=512, help="matmul size for the peak (512: BLAS at full speed, short enough to fit between interruptions)")
    ap.add_argument("--mbytes", type=int, default=256, help="array size (MiB) for the bandwidth")
    ap.add_argument("--machine-repeats", type=int, default=50,
                    help="best of this many matmuls / copies (many: on a busy machine most are disturbed)")
    ap.add_argument("--repeats", type=int, default=5, help="profiler repeats")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    if args.quick:
        args.n, args.mbytes, args.repeats, args.machine_repeats = 256, 8, 1, 2

    from pathlib import Path

    from _report import display_path, fmt_s, header, load1
    from profile_models import build

    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor
    from tinytorch.profiling.profiler import Profiler
    from tinytorch.profiling.roofline import measure_bandwidth, measure_peak_flops, plot_roofline, roofline_table

    load0 = load1()
    peak = measure_peak_flops(n=args.n, repeats=args.machine_repeats)
    bw = measure_bandwidth(nbytes=args.mbytes * 2**20, repeats=args.machine_repeats)
    ridge = peak / bw["copy"]
    tables, sections = {}, []
    for name in ("cnn", "gpt"):
        batch = (8 if name == "cnn" else 2) if args.quick else None
        model, _, x, label = build(name, batch)
        model.eval()
        inp = Tensor(x) if name == "cnn" else x

        def forward():
            with no_grad():
                return model(inp)
        prof = Profiler(model, memory=False).run(forward, warmup=1, repeats=args.repeats)
        rows = roofline_table(prof, peak, bw["copy"])
        tables[name.upper()] = rows
        mem = [r for r in rows if r["bound"] == "memory"]
        t_mem = sum(r["seconds"] for r in mem)
        t_all = sum(r["seconds"] for r in rows)
        sections += [f"## {label.replace(', SGD step', '').replace(', AdamW step', '')}: inference forward", "",
                     f"{len(rows)} (layer, op) sites; **{len(mem)} memory-bound** "
                     f"({', '.join(sorted({r['op'] for r in mem}))}), taking {t_mem / t_all * 100:.0f}% of the "
                     f"placed time; {len(rows) - len(mem)} compute-bound "
                     f"({', '.join(sorted({r['op'] for r in rows if r['bound'] == 'compute'}))}).", "",
                     "| layer | op | FLOPs | bytes | time | FLOP/byte | achieved GFLOP/s | roof GFLOP/s | of roof | bound |",
                     "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in rows:
            layer = r["layer"].rsplit(" ", 1)[0]
            est = " (est.)" if r["estimated"] else ""
            sections.append(f"| {layer} | {r['op']} | {r['flops']:,}{est} | {r['bytes']:,} | {fmt_s(r['seconds'])} | "
                            f"{r['intensity']:.2f} | {r['achieved'] / 1e9:.2f} | {r['attainable'] / 1e9:.1f} | "
                            f"{r['efficiency'] * 100:.1f}% | {r['bound']} |")
        above = [r for r in rows if r["efficiency"] > 1.0]
        if above:
            sections.append(f"{len(above)} site(s) above the roof ({', '.join(sorted({r['op'] for r in above}))}): "
                            "the roof was measured low (other programs slowed the matmul or the copy), or the "
                            "op's data stayed in the caches, which are faster than the main memory the copy measured.")
        sections.append("")
    settings = [f"peak: best of {args.machine_repeats} float32 {args.n}x{args.n} matmuls (tinytorch.profiling.measure_peak_flops)",
                f"bandwidth: best of {args.machine_repeats} copies / triads of {args.mbytes} MiB arrays (measure_bandwidth)",
                f"layers: tinytorch.profiling.Profiler.run, warm-up 1, {args.repeats} repeats, median per (layer, op)"]
    lines = header("Roofline of this machine, with the milestone CNN and GPT on it", "roofline.py",
                   argv or sys.argv[1:], load0, settings)
    lines += ["| machine number | value |", "| --- | ---: |",
              f"| peak float32 matmul | {peak / 1e9:.1f} GFLOP/s |",
              f"| bandwidth, copy (2 x bytes) | {bw['copy'] / 1e9:.1f} GB/s |",
              f"| bandwidth, triad (3 x bytes, STREAM counting) | {bw['triad'] / 1e9:.1f} GB/s |",
              f"| ridge point (peak / copy bandwidth) | {ridge:.1f} FLOP/byte |", ""]
    if not args.no_write:
        try:
            png = Path(__file__).resolve().parent / "results" / "roofline.png"
            plot_roofline(tables, peak, bw["copy"], png, title="milestone CNN and GPT, inference")
            lines += ["![roofline](roofline.png)", ""]
            print(f"wrote {display_path(str(png))}")
        except ImportError as e:
            print(f"no plot: {e}")
    text = "\n".join(lines + sections) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('roofline', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
