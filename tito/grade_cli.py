"""``tito grade``: autograde a course, in parallel on Dask, with a progress bar a person can follow."""
from __future__ import annotations

import json
import os
import signal
import statistics
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .sandbox import DEFAULT_CELL_TIMEOUT, DEFAULT_MEMORY_MB

console = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def grade_cmd(
    submissions: Path = typer.Argument(..., help="nbgrader course directory (with submitted/<student>/<assignment>/), "
                                      "or a directory with one workspace per student."),
    modules: list[str] | None = typer.Option(None, "--module", "-m", help="Only these modules (default: all found)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Dask LocalCluster of N worker processes "
                                          "(default: the number of cores; 0: in this process, without Dask)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Send the tasks to an existing Dask cluster: "
                                            "its scheduler address, e.g. tcp://HOST:8786."),
    db: str | None = typer.Option(None, "--db", help="nbgrader gradebook URL (default: sqlite:///SUBMISSIONS/gradebook.db)."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Per-test CSV (default: SUBMISSIONS/grades-per-test.csv)."),
    feedback: Path | None = typer.Option(None, "--feedback", help="Feedback folder (default: SUBMISSIONS/feedback)."),
    journal: Path | None = typer.Option(None, "--journal", help="Where results are kept as they arrive, so that an "
                                           "interrupted run resumes (default: SUBMISSIONS/grading-journal.jsonl)."),
    regrade: bool = typer.Option(False, "--regrade", help="Grade everything again, even unchanged submissions."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Grade again the submissions that could not be graded."),
    tries: int = typer.Option(3, "--tries", help="Workers a submission may lose before it is recorded as failed "
                              "(on your own --scheduler, set distributed.scheduler.allowed-failures there)."),
    timeout: float = typer.Option(DEFAULT_CELL_TIMEOUT, help="Seconds of wall clock per notebook cell."),
    memory_mb: int = typer.Option(DEFAULT_MEMORY_MB, "--memory-mb", help="Memory limit of a submission's process."),
    as_json: bool = typer.Option(False, "--json", help="No progress bar; one JSON document on stdout."),
):
    """Autograde in a sandbox: hidden tests restored, verdicts decided outside the student's code;
    tasks run in parallel on Dask; writes nbgrader's gradebook, a per-test CSV and per-student feedback.
    Run it again after an interruption: only missing or changed submissions are graded."""
    import warnings

    from .cli import _manifest, _select, fail
    from .grade_cluster import grade_course, is_failure
    from .gradebook import write_feedback, write_gradebook, write_test_csv
    from .probe import ProbeError
    from .sandbox import Limits, SandboxWarning, bwrap_works

    manifest = _manifest()
    if not submissions.is_dir():
        fail(f"{submissions} is not a directory of submissions")
    if workers is not None and workers < 0:
        fail("--workers must be 0 or more", 2)
    if tries < 1:
        fail("--tries must be at least 1", 2)
    dask_ok = _have_dask()
    if (workers or scheduler) and not dask_ok:
        fail("parallel grading needs Dask: pip install 'tinytorch[grading]' (or --workers 0 to grade in this process)", 2)
    if workers is None:
        workers = (os.cpu_count() or 1) if dask_ok else 0
        if not dask_ok and not as_json:
            err.print("note: Dask is not installed, grading in this process (pip install 'tinytorch[grading]' for "
                      "parallel grading)")
    if not bwrap_works():
        err.print("WARNING: bubblewrap (bwrap) is not available: submissions run under resource limits only and "
                  "can read this machine's files. Install it: apt-get install bubblewrap.", style="yellow")
    warnings.simplefilter("ignore", SandboxWarning)
    only = _select(manifest, modules) if modules else None
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    bar = None if as_json else Progress(
        TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
        TextColumn("graded {task.fields[graded]}  failed {task.fields[failed]}  remaining {task.fields[remaining]}",
                   markup=False),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=False)
    state = {"graded": 0, "failed": 0, "remaining": 0, "id": None}

    def on_start(total, pending):
        state["remaining"] = pending
        if bar is not None:
            bar.start()
            state["id"] = bar.add_task("grading", total=pending, graded=0, failed=0, remaining=pending)
            if total > pending:
                err.print(f"{total - pending} of {total} submissions unchanged since their last grading: kept")

    def on_result(r, reused):
        if reused:
            return
        state["remaining"] -= 1
        state["failed" if is_failure(r) else "graded"] += 1
        if bar is not None:
            bar.update(state["id"], advance=1, graded=state["graded"], failed=state["failed"],
                       remaining=state["remaining"])

    limits = Limits(cell_timeout=timeout, memory_mb=memory_mb)
    try:
        run = grade_course(manifest, submissions, limits, only, workers=workers, scheduler=scheduler, journal=journal,
                           regrade=regrade, retry_failed=retry_failed, tries=tries, on_start=on_start,
                           on_result=on_result)
    except (ProbeError, RuntimeError) as e:  # GradingError too: the grader cannot trust its setup; nothing written
        fail(f"grading stopped, no grade written: {e}")
    except KeyboardInterrupt:  # before any task was sent (during the reference runs)
        fail("interrupted before grading started; nothing was written", 130)
    finally:
        if bar is not None:
            bar.stop()
    for w in run.warnings:
        err.print(f"WARNING: {w}", style="yellow")
    if not run.results and not run.interrupted:
        fail(f"no submissions found under {submissions} (expected submitted/STUDENT/NN_slug/slug.ipynb "
             "or STUDENT/modules/NN_slug/slug.ipynb)")
    db = db or f"sqlite:///{(submissions / 'gradebook.db').resolve()}"
    csv_path = csv_path or submissions / "grades-per-test.csv"
    fb_root = feedback or submissions / "feedback"
    if run.interrupted:
        msg = (f"interrupted: {run.graded} submissions graded in this run are kept in the journal; run the same "
               f"command again to grade the remaining ones. Nothing else was written.")
        if as_json:
            print(json.dumps(_summary_json(run, None, None, None)))
        err.print(msg)
        raise typer.Exit(130)
    write_gradebook(run.results, db)
    write_test_csv(run.results, csv_path)
    written = write_feedback(run.results, fb_root)
    if as_json:
        print(json.dumps(_summary_json(run, db, csv_path, fb_root)))
        return
    if len(run.results) <= 40:
        table = Table(title="Grades")
        for col in ("student", "assignment", "score", "imports from", "note / problem"):
            table.add_column(col)
        for r in run.results:
            table.add_row(r.student, r.assignment, f"{r.score:g} / {r.max_score:g}", r.package, r.problem or r.note)
        console.print(table)
    console.print(summary_table(run))
    failed = [r for r in run.results if is_failure(r)]
    for r in failed[:20]:
        console.print(f"  not graded: {r.student} {r.assignment}: {r.problem}")
    if len(failed) > 20:
        console.print(f"  ... and {len(failed) - 20} more (see {csv_path})")
    sandboxes = sorted({r.sandbox for r in run.results if r.sandbox})
    console.print(f"Gradebook: {db}\nPer-test CSV: {csv_path}\nFeedback: {len(written)} files under {fb_root}\n"
                  f"Graded {run.graded} submissions ({run.reused} unchanged, kept) in {run.seconds:.1f} s on "
                  f"{run.where or 'nothing: all unchanged'}" + (f" ({', '.join(sandboxes)})." if sandboxes else "."))


def _have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def summary_table(run) -> Table:
    """One row per assignment: submissions, graded now, kept, failed, mean score, time per submission."""
    table = Table(title="Summary")
    for col in ("assignment", "submissions", "graded now", "kept", "not graded", "mean score", "median s", "max s"):
        table.add_column(col, justify="left" if col == "assignment" else "right")
    by = {}
    for r, fresh in zip(run.results, run.fresh):
        by.setdefault(r.assignment, []).append((r, fresh))
    for name in sorted(by):
        rs = [r for r, _ in by[name]]
        now = sum(f for _, f in by[name])
        secs = [r.seconds for r, f in by[name] if f and r.seconds]
        table.add_row(name, str(len(rs)), str(now), str(len(rs) - now), str(sum(1 for r in rs if r.problem)),
                      f"{statistics.mean(r.score for r in rs):.2f} / {rs[0].max_score:g}",
                      f"{statistics.median(secs):.2f}" if secs else "-", f"{max(secs):.2f}" if secs else "-")
    table.add_row("all", str(len(run.results)), str(run.graded), str(run.reused), str(run.failed), "", "", "")
    return table


def _summary_json(run, db, csv_path, fb_root) -> dict:
    return {
        "submissions": len(run.results), "graded": run.graded, "reused": run.reused, "failed": run.failed,
        "interrupted": run.interrupted, "seconds": round(run.seconds, 3), "workers": run.workers, "where": run.where,
        "warnings": run.warnings, "gradebook": db, "csv": str(csv_path) if csv_path else None,
        "feedback": str(fb_root) if fb_root else None,
        "results": [{"student": r.student, "assignment": r.assignment, "score": r.score, "max_score": r.max_score,
                     "failed": bool(r.problem), "reused": not fresh, "problem": r.problem, "note": r.note,
                     "seconds": round(r.seconds, 3),
                     "worker": r.worker, "tests": {t.grade_id: t.status for t in r.tests}} for r, fresh in zip(run.results, run.fresh)],
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(typer.run(grade_cmd))
