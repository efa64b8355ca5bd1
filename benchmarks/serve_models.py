"""MLPerf-style inference scenarios for the milestone-4 CNN and the milestone-5 GPT.

With module 19's scenarios (tinytorch.benchmarking.benchmark):
  SingleStream  one query at a time (CNN: one 32x32 image; GPT: the next-token logits of a
                64-token context), >= 64 queries and >= --min-duration seconds: p50/p90/p99
  Offline       all samples at once, in batches (CNN: 1,024 images by 128; GPT: 96 contexts
                by 12): throughput
  Server        Poisson arrivals at half the SingleStream capacity (0.5 / mean latency), one worker,
                valid if p99 <= --bound-ms (100 ms, the capstone's latency target)
Reports Markdown (serve_models.md), JSON (serve_models.json) and latency histograms
(latency_cnn.png, latency_gpt.png) in benchmarks/results/.

Run:   python benchmarks/serve_models.py
       python benchmarks/serve_models.py --quick --no-write
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
    ap.add_argument("--queries", type=int, default=64, help="minimum SingleStream queries (MLPerf: 64)")
    ap.add_argument("--min-duration", type=float, default=2.0, help="minimum SingleStream seconds")
    ap.add_argument("--server-queries", type=int, default=128)
    ap.add_argument("--bound-ms", type=float, default=100.0, help="Server p99 latency bound")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    if args.quick:
        args.min_duration, args.server_queries = 0.0, 16

    from pathlib import Path

    import numpy as np
    from _report import display_path, header, load1
    from profile_models import build

    from tinytorch.benchmarking.benchmark import MARKDOWN_HEADER, offline, plot_latencies, server, single_stream
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    load0 = load1()
    rng = np.random.default_rng(0)
    all_results, body = [], []
    for name in ("cnn", "gpt"):
        model, _, _, label = build(name, 1)
        model.eval()
        if name == "cnn":
            data = rng.standard_normal((256 if args.quick else 1024, 3, 32, 32)).astype(np.float32)
            batch = 128

            def run(a, b):
                with no_grad():
                    return model(Tensor(data[a:b]))
        else:
            data = rng.integers(0, 65, (24 if args.quick else 96, 64))
            batch = 12

            def run(a, b):
                with no_grad():
                    return model(data[a:b]).data[:, -1]                # next-token logits
        one = lambda: run(0, 1)
        ss = single_stream(one, name=f"{name.upper()} batch 1", min_queries=args.queries,
                           min_duration=args.min_duration)
        off = offline(run, len(data), batch, name=f"{name.upper()} batch {batch}")
        srv = server(one, rate=0.5 / float(ss.latencies.mean()), p99_bound=args.bound_ms / 1e3, name=f"{name.upper()} batch 1",
                     n_queries=args.server_queries, seed=0)
        res = [ss, off, srv]
        all_results += res
        body += [f"## {label.split(', batch')[0]}", "", *[f"- {r.scenario}: {r.settings}" for r in res], "",
                 MARKDOWN_HEADER, *[r.to_markdown() for r in res], "",
                 f"Batching: {off.throughput:,.0f} samples/s in Offline at batch {batch} vs "
                 f"{1 / ss.p50:,.0f} queries/s one at a time.", ""]
        if not args.no_write:
            try:
                png = Path(__file__).resolve().parent / "results" / f"latency_{name}.png"
                plot_latencies(res, png, title=f"{label.split(', batch')[0]}: latency distributions")
                body += [f"![latencies of the {name.upper()}](latency_{name}.png)", ""]
                print(f"wrote {display_path(str(png))}")
            except ImportError as e:
                print(f"no plot: {e}")
    settings = ["tinytorch.benchmarking.benchmark single_stream / offline / server (wall clock); "
                "percentiles by np.percentile (linear interpolation)"]
    text = "\n".join(header("MLPerf-style scenarios for the milestone CNN and GPT", "serve_models.py",
                            argv or sys.argv[1:], load0, settings) + body) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('serve_models', text)}")
        path = Path(__file__).resolve().parent / "results" / "serve_models.json"
        path.write_text(json.dumps([r.to_dict() for r in all_results], indent=2) + "\n", encoding="utf-8")
        print(f"wrote {display_path(str(path))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
