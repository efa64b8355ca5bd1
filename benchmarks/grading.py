"""Benchmark: grading a course on a Dask cluster (`tito grade --workers N`).

Generates submissions across modules 01, 05 and 09 in nbgrader's layout (in every 20:
9 right, 6 partly wrong, 2 hanging in one function, 3 hostile: forged results, early exit,
patched testing helpers, always-true objects, forks that spin, killing the grader...), grades
all of them on a LocalCluster of 1 worker and then of 2 workers, exactly as `tito grade` does
(tito.grade_cluster.grade_course), and reports submissions per hour, the median and p95 time
per submission, the scaling from 1 to 2 workers, the sandbox's overhead per submission
(bubblewrap against resource limits only, interleaved by module 19's compare()), and the
projection to 1,000 students x 20 modules on K workers.

Run:   python benchmarks/grading.py                  (200 submissions; writes benchmarks/results/grading.md)
       python benchmarks/grading.py --quick          (30 submissions, for a shared machine)
       python benchmarks/grading.py --submissions 3 --overhead-rounds 0 --no-write
On a shared machine the 2-worker figure is depressed by the other programs: the report gives
the load average before and after every phase.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402

MODULES = ("01", "05", "09")
# One cycle of 20 submissions: 9 right, 6 partly wrong, 2 hanging, 3 hostile (45/30/10/15 %).
PATTERN = ("right", "wrong", "right", "hostile", "right", "wrong", "hang", "right", "wrong", "right",
           "hostile", "right", "wrong", "right", "hang", "wrong", "right", "hostile", "right", "wrong")
STUDENTS, MODULES_PER_STUDENT = 1000, 20
PAPER_SECONDS, PAPER_CORES = 45.0, 4

WRONG = {
    "01": ("tensor-arithmetic", "Tensor.__add__ = lambda self, o: Tensor(self.data - (o.data if isinstance(o, Tensor) else o))"),
    "05": ("arithmetic-functions", '''
        _mul_backward = Mul.backward
        def _wrong_mul_backward(self, grad_out):
            ga, gb = _mul_backward(self, grad_out)
            return (None if ga is None else 2 * ga), gb
        Mul.backward = _wrong_mul_backward
    '''),
    "09": ("pool-functions", '''
        _max_forward = MaxPool2dFunction.forward
        def _wrong_max_forward(self, x, kernel_size=2, stride=None):
            return _max_forward(self, x, kernel_size, stride) * 0.5
        MaxPool2dFunction.forward = _wrong_max_forward
    '''),
}
HANG = {
    "01": ("tensor-matmul", "def _hang(self, other):\n    while True:\n        pass\nTensor.__matmul__ = _hang"),
    "05": ("matmul-shape-functions", "def _hang(self, grad_out):\n    while True:\n        pass\nMatMul.backward = _hang"),
    "09": ("flatten", "def _hang(self, x):\n    while True:\n        pass\nFlatten.forward = _hang"),
}
FORK_SPIN = "import os\nif os.fork() == 0:\n    while True:\n        pass"
PATCH = '''
    import builtins, numpy, numpy.testing
    numpy.testing.assert_allclose = lambda *a, **k: None
    numpy.allclose = lambda *a, **k: True
    builtins.isinstance = lambda *a: True
'''


def _first_solution(nb) -> str:
    return next(c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))


def _first_test(nb) -> str:
    return next(c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


def hostile_variants(code: str, stub, good, wrong):
    """The hostile submissions of one module: module 01 draws on the threat catalogue."""
    from grading.submissions import FORGED_FRAMES, append, catalogue, insert_after

    if code == "01":
        cases = catalogue(stub, good, {"course": Path("/nonexistent"), "victim": Path("/nonexistent/x.ipynb"),
                                       "outside": Path("/nonexistent/out.txt"), "port": 9})
        return [cases[n][0] for n in ("forged_report", "patched_testing", "always_true", "early_exit", "kill_grader",
                                      "detached", "forked", "recorder_hook")]
    sol = _first_solution(stub)
    return [append(stub, sol, FORGED_FRAMES), append(stub, sol, "import os\nos._exit(0)"),
            insert_after(good, _first_test(good), FORK_SPIN), append(wrong, sol, textwrap.dedent(PATCH))]


def generate(manifest, root: Path, n: int) -> dict:
    """``n`` submissions in ``root/submitted/sNNNN/<assignment>/``; returns student -> (module, kind)."""
    import nbformat
    from grading.submissions import append

    from tito.lesson import read_notebook
    from tito.release import release_notebook, restore_solutions

    made = {}
    per_module = {}
    for code in MODULES:
        m = manifest.module(code)
        lesson = manifest.lesson_path(m)
        stub = release_notebook(lesson)
        good = restore_solutions(stub, read_notebook(lesson))
        wrong = append(good, *WRONG[code])
        per_module[code] = (m, {"right": [good], "wrong": [wrong], "hang": [append(good, *HANG[code])],
                                "hostile": hostile_variants(code, stub, good, wrong)})
    for i in range(n):
        code = MODULES[i % len(MODULES)]
        kind = PATTERN[(i // len(MODULES)) % len(PATTERN)]
        m, variants = per_module[code]
        nb = variants[kind][(i // (len(MODULES) * len(PATTERN))) % len(variants[kind])]
        student = f"s{i:04d}"
        path = root / "submitted" / student / m.dirname / f"{m.slug}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, str(path))
        made[student] = (code, kind)
    return made


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--submissions", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="30 submissions (a shared machine)")
    ap.add_argument("--workers", default="1,2", help="cluster sizes to grade with, e.g. 1,2")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per notebook cell (a hang costs this)")
    ap.add_argument("--overhead-rounds", type=int, default=9,
                    help="interleaved rounds of compare() per module for the sandbox overhead (0: skip)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    n = 30 if args.quick and args.submissions == 200 else args.submissions
    sizes = [int(k) for k in args.workers.split(",")]
    set_blas_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

    from _report import header, load1

    from tinytorch.benchmarking.benchmark import compare
    from tito.grade import expected_checks, find_tasks, grade_one
    from tito.grade_cluster import check_workers, grade_course, start_cluster
    from tito.manifest import load_manifest
    from tito.sandbox import Limits, bwrap_works

    if not bwrap_works():
        print("bubblewrap (bwrap) is not available: this benchmark runs hostile code and needs the sandbox "
              "(apt-get install bubblewrap)", file=sys.stderr)
        return 2
    load_before = load1()
    manifest = load_manifest(Path(__file__).resolve().parent.parent)
    limits = Limits(cell_timeout=args.timeout)
    runs, loads = {}, {}
    with tempfile.TemporaryDirectory(prefix="tito-bench-grading-") as tmp:
        course = Path(tmp, "course")
        made = generate(manifest, course, n)
        for code in MODULES:  # the trusted reference runs, once, outside the timed runs
            expected_checks(manifest.lesson_path(manifest.module(code)), manifest.root, limits)
        for k in sizes:
            client, cluster = start_cluster(k)
            try:
                check_workers(client, manifest, course, True, manifest.lesson_path(manifest.module("09")))
                loads[k] = [load1()]
                runs[k] = grade_course(manifest, course, limits, client=client, journal=Path(tmp, f"journal-{k}.jsonl"))
                loads[k].append(load1())
            finally:
                client.close()
                cluster.close()
        overhead = {}
        if args.overhead_rounds:
            tasks = {t.module.code: t for t in find_tasks(manifest, course) if made[t.student][1] == "right"}
            for code in MODULES:
                if code not in tasks:
                    continue
                t = tasks[code]
                exp = expected_checks(t.lesson, manifest.root, limits)
                overhead[code] = compare(lambda: grade_one(t, manifest.modules, limits, exp, sandbox=False),
                                         lambda: grade_one(t, manifest.modules, limits, exp, sandbox=True),
                                         names=("resource limits only", "bubblewrap"),
                                         rounds=max(9, args.overhead_rounds), warmup=1, inner=1, loops=1)

    base = runs[sizes[0]]
    same = all(_scores(r) == _scores(base) for r in runs.values())
    lines = header("Grading a course on Dask", "grading.py", sys.argv[1:] if argv is None else argv, load_before, [
        "wall time of a run: tito.grade_cluster.grade_course on a fresh LocalCluster (one thread per worker), "
        "workers started and warmed up before the clock starts (their start-up is not in the wall time); time per "
        "submission: measured inside tito.grade.grade_one on the worker",
        "sandbox overhead: tinytorch.benchmarking.compare of grade_one with and without bubblewrap on one right "
        f"submission per module ({args.overhead_rounds} interleaved rounds)" if args.overhead_rounds else
        "sandbox overhead: skipped (--overhead-rounds 0); tinytorch.benchmarking.compare measures it otherwise",
        f"{n} submissions across modules {', '.join(MODULES)}: per 20, 9 right, 6 partly wrong, 2 hanging, "
        f"3 hostile; per-cell limit {args.timeout:g} s (a hanging function costs that per test that calls it)",
    ])
    kinds = {}
    for student, (_code, kind) in made.items():
        kinds.setdefault(kind, []).append(student)
    lines += ["## Throughput", "",
              "| workers | wall s | submissions / hour | median s / submission | p95 s | load before / after |",
              "| --- | --- | --- | --- | --- | --- |"]
    for k, run in runs.items():
        secs = [r.seconds for r in run.results]
        lines.append(f"| {k} | {run.seconds:.1f} | {3600 * len(run.results) / run.seconds:.0f} | "
                     f"{statistics.median(secs):.2f} | {pct(secs, 0.95):.2f} | {loads[k][0]:.1f} / {loads[k][1]:.1f} |")
    lines += ["", f"Scores identical across the runs ({', '.join(map(str, sizes))} workers): "
              f"**{'yes' if same else 'NO'}**; graded {len(base.results)}, failed {base.failed}.", ""]
    for k, run in runs.items():  # what differed, so a difference can be judged (a timeout under load?)
        other = _scores(run)
        for key, (score, tests) in sorted(_scores(base).items()):
            if other.get(key, (None, []))[0] != score or other.get(key)[1] != tests:
                diff = [f"{a[0]}: {a[1]} vs {b[1]}" for a, b in zip(tests, other[key][1]) if a != b]
                lines.append(f"- {key[0]} ({made[key[0]][1]}, module {made[key[0]][0]}): {score:g} with "
                             f"{sizes[0]} worker(s), {other[key][0]:g} with {k}; {'; '.join(diff)}")
    if not same:
        lines.append("")
    lines += ["## Per kind of submission (first run)", "", "| kind | count | median s | p95 s | mean score |",
              "| --- | --- | --- | --- | --- |"]
    by_student = {r.student: r for r in base.results}
    for kind in ("right", "wrong", "hang", "hostile"):
        rs = [by_student[s] for s in kinds.get(kind, []) if s in by_student]
        if rs:
            secs = [r.seconds for r in rs]
            lines.append(f"| {kind} | {len(rs)} | {statistics.median(secs):.2f} | {pct(secs, 0.95):.2f} | "
                         f"{statistics.mean(r.score / r.max_score for r in rs) * 100:.0f}% |")
    lines.append("")
    if len(runs) >= 2:
        k1, k2 = sizes[0], sizes[-1]
        speedup = runs[k1].seconds / runs[k2].seconds
        eff = speedup / (k2 / k1)
        lines += ["## Scaling", "", f"{k1} -> {k2} workers: **{speedup:.2f}x** (aim: at least 1.8x for 1 -> 2), "
                  f"parallel efficiency {eff * 100:.0f}%. Load average during the {k2}-worker run: "
                  f"{loads[k2][0]:.1f} -> {loads[k2][1]:.1f} on {_cores()} cores. Above the core count the workers "
                  "shared the cores with other programs, and the figure is then no clean measure in either "
                  "direction: the other programs slow every worker, but two worker processes also get a larger "
                  "share of a contended CPU than one. Re-run it on a quiet machine.", ""]
    else:
        eff = 1.0
    t1 = runs[sizes[0]].seconds * sizes[0] / len(runs[sizes[0]].results)  # core-seconds per submission
    total = STUDENTS * MODULES_PER_STUDENT
    lines += ["## Projection: 1,000 students x 20 modules", "",
              f"Formula: T(K) = S x t / (K x E), with S = {total:,} submissions, t = {t1:.2f} s = the wall time "
              f"per submission on one worker in this mix (one worker = one core; hangs and hostile "
              f"submissions included), E = {eff:.2f} the parallel efficiency measured above (assumed to hold "
              "at K workers: the tasks share nothing but the scheduler). Modules beyond 01/05/09 are assumed "
              "to cost the same on average.", "", "| K workers (cores) | T |", "| --- | --- |"]
    for k in (1, 4, 16, 64, 128):
        lines.append(f"| {k} | {total * t1 / (k * (eff if k > 1 else 1.0)) / 3600:.1f} h |")
    need = math.ceil(total * t1 / (2 * 3600 * eff))
    paper_core_s = PAPER_SECONDS  # the paper's most favourable reading: 4 submissions at once on 4 cores
    lines += ["", f"Two hours for the whole course need K = {need} workers. The paper projects 45 s per module "
              f"submission on 4-core systems: at best (four submissions at once) {paper_core_s:.0f} core-seconds "
              f"per submission, {total * PAPER_SECONDS / PAPER_CORES / 3600:.1f} h for the course on one 4-core "
              f"machine. Here: {t1:.2f} core-seconds per submission, **{paper_core_s / t1:.1f}x** less per core "
              f"({total * t1 / (PAPER_CORES * eff) / 3600:.1f} h on 4 workers).", ""]
    if overhead:
        lines += ["## Sandbox overhead per submission (bubblewrap vs resource limits only)", "",
                  "| module | limits only (median) | bubblewrap (median) | overhead | ratio (95% CI) |",
                  "| --- | --- | --- | --- | --- |"]
        for code, c in overhead.items():
            d = c.to_dict()
            lines.append(f"| {code} | {d['median_a_s']:.3f} s | {d['median_b_s']:.3f} s | "
                         f"{d['median_b_s'] - d['median_a_s']:+.3f} s | {c.ratio:.3f}x ({c.ci[0]:.3f}-{c.ci[1]:.3f}) |")
        lines += ["", f"- harness: {next(iter(overhead.values())).settings}", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print("written to", write_result("grading", text))
    return 0


def _scores(run):
    return {(r.student, r.assignment): (r.score, [(t.grade_id, t.status) for t in r.tests]) for r in run.results}


def _cores():
    import os

    return os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
