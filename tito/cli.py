"""``tito``: the TinyTorch command line.

Course side (instructors, developers): ``export``, ``check``, ``release``.
Learner side, inside a workspace: ``init``, ``module start|test|complete|reset``,
``status``, ``progress repair``, ``milestone list|run|tour``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError as _e:  # pragma: no cover - only without the [tito] extra
    sys.stderr.write(f"tito needs its tools ({_e.name} is missing): pip install 'tinytorch[tito]'\n")
    raise SystemExit(2) from None

from . import export as export_mod
from .check import check_course
from .grade_cli import grade_cmd
from .manifest import Manifest, ManifestError, ModuleSpec, load_manifest
from .milestones import missing_modules, unlocked
from .olympics.cli import app as olympics_app
from .progress import ProgressError
from .progress import describe as describe_progress
from .progress import repair as repair_progress
from .release import ReleaseError, release_kit
from .runner import child_env
from .sandbox import DEFAULT_CELL_TIMEOUT
from .workspace import (
    Workspace,
    WorkspaceError,
    complete_module,
    find_workspace,
    init_workspace,
    module_status,
    prerequisite_message,
    reset_module,
    test_module,
)

# markup=False: messages carry learners' code and errors, whose brackets are not styling.
console = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)

app = typer.Typer(
    help="TinyTorch: build a machine-learning framework module by module.\n\n"
    "Learners: `tito init DIR`, then inside DIR `tito module start 01`, `tito module test 01`, "
    "`tito module complete 01`, `tito status`, `tito milestone run 1`.\n\n"
    "Instructors: `tito release --out DIR` writes the student notebooks; `tito export` regenerates "
    "the package from the lessons; `tito check` validates the lessons.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)
module_app = typer.Typer(help="Work on one module in your workspace: start, test, complete, reset.",
                         no_args_is_help=True, rich_markup_mode=None)
milestone_app = typer.Typer(help="Re-create the historical milestones with your own TinyTorch.",
                            no_args_is_help=True, rich_markup_mode=None)
progress_app = typer.Typer(help="Inspect or repair your progress file.", no_args_is_help=True,
                           rich_markup_mode=None)
app.add_typer(module_app, name="module")
app.add_typer(milestone_app, name="milestone")
app.add_typer(progress_app, name="progress")
app.add_typer(olympics_app, name="olympics")


def fail(message: str, code: int = 1) -> None:
    err.print(f"error: {message}", style="bold red")
    raise typer.Exit(code)


def _manifest() -> Manifest:
    try:
        return load_manifest()
    except ManifestError as e:
        fail(str(e), 2)


def _workspace() -> Workspace:
    try:
        return find_workspace()
    except WorkspaceError as e:
        fail(str(e), 2)


def _select(manifest: Manifest, keys: list[str] | None) -> list[ModuleSpec] | None:
    if not keys:
        return None
    try:
        mods = [manifest.module(k) for k in keys]
    except ManifestError as e:
        fail(str(e), 2)
    missing = [m for m in mods if not manifest.lesson_path(m).is_file()]
    if missing:
        fail("no lesson yet for " + ", ".join(f"{m.code} {m.slug} ({m.lesson_relpath})" for m in missing), 2)
    return mods


# ----------------------------------------------------------------------------- course side

@app.command("export")
def export_cmd(
    modules: list[str] | None = typer.Argument(None, help="Module numbers or slugs (default: all lessons)."),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if the committed package differs from what the lessons generate."),
):
    """Generate the tinytorch package from the lessons (nbdev-style #| export cells)."""
    manifest = _manifest()
    only = _select(manifest, modules)
    t0 = time.perf_counter()
    try:
        files = export_mod.generate(manifest, only)
    except export_mod.ExportError as e:
        fail(str(e))
    if check:
        problems = export_mod.check(files, manifest.root) if only is None else [
            p for p in export_mod.check(files, manifest.root) if not p.startswith(("stale", "hand-written"))
        ]
        if problems:
            err.print("The committed package is not what the lessons generate:")
            for p in problems:
                err.print(f"  {p}")
            fail("run `tito export` and commit the result")
        console.print(f"tinytorch/ matches the lessons ({len(files)} files, {time.perf_counter() - t0:.1f} s).")
        return
    changed = export_mod.write_files(files, manifest.root)
    for rel in changed:
        console.print(f"  wrote {rel.as_posix()}")
    console.print(f"Exported {len(files)} files ({len(changed)} changed) in {time.perf_counter() - t0:.1f} s.")


@app.command("check")
def check_cmd(modules: list[str] | None = typer.Argument(None, help="Module numbers or slugs (default: all lessons).")):
    """Validate lessons: NBGrader metadata, markers, export directives, connection map, Reflect, manifest."""
    manifest = _manifest()
    results = check_course(manifest, _select(manifest, modules))
    bad = 0
    for lesson, problems in results.items():
        if problems:
            bad += 1
            err.print(lesson, style="red")
            for p in problems:
                err.print(f"  {p}")
        else:
            console.print(f"ok  {lesson}")
    if bad:
        fail(f"{bad} of {len(results)} lessons have problems")
    console.print(f"All {len(results)} lessons pass the checker.")


@app.command("release")
def release_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the student kit."),
    modules: list[str] | None = typer.Argument(None, help="Module numbers or slugs (default: all lessons)."),
):
    """Write the student kit: notebooks released with NBGrader (solutions stubbed, hidden tests
    removed, cells locked), the manifest, integration tests and a wheel of tito."""
    manifest = _manifest()
    t0 = time.perf_counter()
    try:
        written = release_kit(manifest, out, _select(manifest, modules))
    except ReleaseError as e:
        fail(str(e))
    for p in written:
        console.print(f"  {p}")
    console.print(f"Released {len(written)} notebooks to {out} in {time.perf_counter() - t0:.1f} s.")
    console.print(f"Student kit: {out} (students read {out / 'README.md'}: pip install the wheel, then tito init).")


# `tito grade` (parallel, resumable autograding) lives in its own file.
app.command("grade")(grade_cmd)


# ----------------------------------------------------------------------------- learner side

@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(..., help="New directory for your workspace."),
    start: str | None = typer.Option(None, "--start", help="Begin at this module (e.g. 12): the modules before "
                                        "it are provided as the reference solution, marked as such."),
):
    """Create a learner workspace: student notebooks, an empty tinytorch/ package, a progress file."""
    manifest = _manifest()
    first = manifest.existing_lessons()[0] if manifest.existing_lessons() else None
    if start is not None:
        try:
            first = manifest.module(start)
        except ManifestError as e:
            fail(str(e), 2)
    try:
        ws = init_workspace(directory, manifest, first if start is not None else None)
    except (WorkspaceError, ReleaseError) as e:
        fail(str(e))
    console.print(f"Workspace ready at {ws.root} with {len(manifest.existing_lessons())} module notebooks.")
    provided = ws.progress().provided_numbers()
    if provided:
        console.print(f"Provided (the reference solution, in tinytorch/): modules {provided[0]:02d}-{provided[-1]:02d}. "
                      "Complete any of them yourself to replace it with your code.")
    console.print(f"Next: cd {directory} && tito module start {first.code}")


def learner_env(ws: Workspace) -> dict[str, str]:
    """Environment for JupyterLab, its kernels and milestones: the workspace's package first on
    the path, and the workspace named, so that the course's package hands over to it."""
    return dict(child_env(ws.root), TINYTORCH_WORKSPACE=str(ws.root))


def _module(ws: Workspace, key: str) -> ModuleSpec:
    try:
        return ws.manifest.module(key)
    except ManifestError as e:
        fail(str(e), 2)


@module_app.command("start")
def module_start(
    number: str = typer.Argument(..., help="Module number or slug, e.g. 01."),
    lab: bool = typer.Option(True, "--lab/--no-lab", help="Open JupyterLab when it is installed."),
):
    """Check prerequisites, then open the module's notebook (or say which file to open)."""
    ws = _workspace()
    m = _module(ws, number)
    try:
        missing = ws.missing_prerequisites(m)
    except ProgressError as e:
        fail(str(e))
    if missing:
        fail(prerequisite_message(m, missing))
    nb = ws.notebook(m)
    if not nb.is_file():
        fail(f"{nb} is missing: run `tito module reset {m.code}` to restore it.")
    console.print(f"Module {m.code}: {m.title} ({m.points} points, about {m.hours:g} h). Unlocks: {m.unlocks}.")
    console.print(f"Your notebook: {nb.relative_to(ws.root)}")
    console.print(f"When its tests pass: tito module test {m.code}, then tito module complete {m.code}")
    jupyter = shutil.which("jupyter-lab") or shutil.which("jupyter")
    if lab and jupyter and sys.stdout.isatty() and not os.environ.get("CI"):
        from .lab import lab_command

        cmd, env = lab_command(jupyter, nb, ws.root, learner_env(ws))
        if "--allow-root" in cmd:
            console.print("Running as root (a container?): starting JupyterLab with --allow-root.")
        console.print("Opening JupyterLab without nbgrader's instructor extensions (Ctrl-C to stop it)...")
        subprocess.call(cmd, cwd=ws.root, env=env)
    elif lab and not jupyter:
        console.print("JupyterLab is not installed (pip install 'tinytorch[lab]'); open the notebook in your editor.")


def _print_outcome(outcome, verb: str) -> None:
    m = outcome.module
    if outcome.report is not None:
        table = Table(title=f"Module {m.code} {m.slug}: graded tests on your code")
        table.add_column("test")
        table.add_column("points", justify="right")
        table.add_column("result")
        for c in outcome.report.graded:
            table.add_row(c.label, f"{c.points:g}", "passed" if c.status == "ok" else f"FAILED ({c.status})")
        console.print(table)
        console.print(f"Score: {outcome.report.score:g} / {outcome.report.max_score:g} on the visible tests. "
                      "Hidden tests run when your instructor grades: the graded score can be lower.")
    for line in outcome.restored:
        err.print(f"note: {line}", style="yellow")
    if outcome.sandbox_warning:
        err.print(f"note: {outcome.sandbox_warning}", style="yellow")
    if outcome.integration_ok is not None:
        console.print("Integration tests on your exported package: " + ("passed" if outcome.integration_ok else "FAILED"))
    if outcome.passed:
        console.print(f"Module {m.code} {verb}.", style="green")
        return
    for line in outcome.failure_summary():
        err.print(line)
    for c in (outcome.report.failed_graded if outcome.report else [])[:3]:
        if c.error:
            err.print(f"--- {c.label} ---\n{c.error}")


@module_app.command("test")
def module_test(
    number: str = typer.Argument(..., help="Module number or slug."),
    timeout: float = typer.Option(DEFAULT_CELL_TIMEOUT, help="Seconds of wall clock per notebook cell."),
):
    """Run the module's graded tests on YOUR notebook and its integration tests on YOUR exported code."""
    ws = _workspace()
    m = _module(ws, number)
    try:
        outcome = test_module(ws, m, timeout)
    except WorkspaceError as e:
        fail(str(e))
    _print_outcome(outcome, "passes its tests")
    if not outcome.passed:
        raise typer.Exit(1)


@module_app.command("complete")
def module_complete(
    number: str = typer.Argument(..., help="Module number or slug."),
    timeout: float = typer.Option(DEFAULT_CELL_TIMEOUT, help="Seconds of wall clock per notebook cell."),
):
    """Test; only if everything passes, export your code into tinytorch/ and record progress."""
    ws = _workspace()
    m = _module(ws, number)
    try:
        outcome = complete_module(ws, m, timeout)
    except (WorkspaceError, ProgressError) as e:
        fail(str(e))
    _print_outcome(outcome, "completed: your code is now in tinytorch/")
    if not outcome.passed:
        err.print("Nothing was exported and your progress is unchanged.")
        raise typer.Exit(1)
    for rel in sorted(outcome.staged_files):
        console.print(f"  exported {rel.as_posix()}")
    if outcome.answers is not None:
        console.print(f"\nAnswer sketches for the Reflect questions (also in {outcome.answers.relative_to(ws.root)}):\n")
        console.print(outcome.answers.read_text(encoding="utf-8"), markup=False, highlight=False)
    _print_next(ws)


@module_app.command("reset")
def module_reset(number: str = typer.Argument(..., help="Module number or slug.")):
    """Restore the pristine student notebook; your version is backed up first."""
    ws = _workspace()
    m = _module(ws, number)
    try:
        backup = reset_module(ws, m)
    except WorkspaceError as e:
        fail(str(e))
    if backup:
        console.print(f"Your notebook was saved to {backup.relative_to(ws.root)}")
    console.print(f"Module {m.code} notebook restored: {ws.notebook(m).relative_to(ws.root)}")


def connection_map(ws: Workspace, states: dict[int, str], per_line: int = 4) -> str:
    """The course as tiers of modules in order, marked [x] done, [p] provided, [>] ready,
    [ ] locked, [-] not released: plain text, a few modules per line so it fits a narrow terminal."""
    mark = {"done": "[x]", "provided": "[p]", "ready": "[>]", "locked": "[ ]", "not released": "[-]"}
    tiers: dict[str, list[ModuleSpec]] = {}
    for m in ws.manifest.modules:
        tiers.setdefault(m.tier, []).append(m)
    width = max(len(t) for t in tiers) + 2
    lines = []
    for tier, mods in tiers.items():
        items = [f"{mark[states[m.number]]} {m.code} {m.slug}" for m in mods]
        for i in range(0, len(items), per_line):
            head = f"{tier}:" if i == 0 else ""
            tail = " ->" if i + per_line < len(items) else ""
            lines.append(f"{head:<{width}}" + " -> ".join(items[i:i + per_line]) + tail)
    return "\n".join(lines)


def _print_next(ws: Workspace) -> None:
    states = dict((m.number, s) for m, s in module_status(ws))
    ready = [m for m in ws.manifest.modules if states[m.number] == "ready"]
    if ready:
        console.print(f"Next: tito module start {ready[0].code}  ({ready[0].title})")
    for ms in unlocked(ws.manifest, ws.progress()):
        console.print(f"Unlocked: milestone {ms.number} ({ms.title}): tito milestone run {ms.number}")


@app.command("status")
def status_cmd():
    """Your progress, the connection map of the course and the next step."""
    ws = _workspace()
    try:
        statuses = module_status(ws)
        done = ws.progress()
    except ProgressError as e:
        fail(str(e))
    table = Table(title=f"TinyTorch workspace {ws.root}")
    for col in ("#", "module", "tier", "status", "points"):
        table.add_column(col)
    earned = 0.0
    for m, state in statuses:
        entry = done.completed.get(m.code, {})
        score = entry.get("score")
        if isinstance(score, (int, float)):
            earned += score
        table.add_row(m.code, m.title, m.tier, state, f"{score:g}/{m.points}" if isinstance(score, (int, float)) else f"-/{m.points}")
    console.print(table)
    total = sum(m.points for m in ws.manifest.modules)
    console.print(f"Completed {len(done.learners_numbers())} of {len(ws.manifest.modules)} modules, {earned:g} of {total} points.")
    if done.provided_numbers():
        console.print("Provided by the reference solution (not your code, no points): modules "
                      + ", ".join(f"{n:02d}" for n in done.provided_numbers()) + ".")
    console.print(f"Code in your tinytorch/: {describe_progress(done)}.")
    console.print("Connection map ([x] done, [p] provided, [>] ready, [ ] locked, [-] not released yet):")
    console.print(connection_map(ws, dict((m.number, s) for m, s in statuses)))
    _print_next(ws)


@progress_app.command("repair")
def progress_repair():
    """Back up a damaged progress.json and rebuild it from the modules in your tinytorch/ package."""
    ws = _workspace()
    backup, progress = repair_progress(ws.progress_path, ws.manifest, ws.root)
    if backup:
        console.print(f"Old progress file kept as {backup.name}")
    console.print(f"Rebuilt progress: completed {', '.join(f'{n:02d}' for n in progress.done_numbers()) or 'nothing yet'}.")


# ----------------------------------------------------------------------------- milestones

@milestone_app.command("list")
def milestone_list():
    """The six milestones, what they need and whether you have unlocked them."""
    manifest = _manifest()
    try:
        done = find_workspace().progress()
    except (WorkspaceError, ProgressError):
        done = None
    table = Table(title="Milestones")
    for col in ("#", "milestone", "needs modules", "target", "status"):
        table.add_column(col)
    for ms in manifest.milestones:
        exists = (manifest.root / ms.script).is_file()
        if not exists:
            state = "not in this course yet"
        elif done is None:
            state = "run with --reference (no workspace here)"
        else:
            missing = missing_modules(ms, done)
            state = "unlocked" if not missing else "needs " + ", ".join(f"{r:02d}" for r in missing)
        table.add_row(str(ms.number), ms.title, " ".join(f"{r:02d}" for r in ms.requires), ms.target, state)
    console.print(table)


def _run_milestone(manifest: Manifest, key: str, reference: bool, args: list[str]) -> int:
    try:
        ms = manifest.milestone(key)
    except ManifestError as e:
        fail(str(e), 2)
    script = manifest.root / ms.script
    if not script.is_file():
        fail(f"Milestone {ms.number} ({ms.title}) is not in this course yet ({ms.script} is missing).")
    if reference:
        root, whose = manifest.root, "the REFERENCE tinytorch"
    else:
        ws = _workspace()
        try:
            done = ws.progress()
        except ProgressError as e:
            fail(str(e))
        missing = [ws.manifest.module(r) for r in missing_modules(ms, done)]
        if missing:
            fail(f"Milestone {ms.number} needs modules " + ", ".join(f"{m.code} {m.slug}" for m in missing)
                 + " completed first (or run the reference with --reference).")
        root, whose = ws.root, "YOUR tinytorch"
        provided = [r for r in ms.requires if done.is_provided(r)]
        if provided:
            whose += (" (modules " + ", ".join(f"{r:02d}" for r in provided) + " in it are provided: the reference "
                      "solution; " + ", ".join(f"{r:02d}" for r in ms.requires if r not in provided) + " are yours)")
    console.print(f"Milestone {ms.number}: {ms.title} on {whose} ({root / 'tinytorch'})", style="bold")
    env = child_env(root) if reference else learner_env(ws)
    return subprocess.call([sys.executable, str(script), *args], cwd=root, env=env)


@milestone_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def milestone_run(
    ctx: typer.Context,
    number: str = typer.Argument(..., help="Milestone number or slug (see `tito milestone list`)."),
    reference: bool = typer.Option(False, "--reference", help="Run the course's reference package instead of yours."),
):
    """Run a milestone against your workspace's tinytorch (extra options go to the script, e.g. --quick)."""
    raise typer.Exit(_run_milestone(_manifest(), number, reference, list(ctx.args)))


@milestone_app.command("tour")
def milestone_tour(
    reference: bool = typer.Option(False, "--reference", help="Run the course's reference package instead of yours."),
    full: bool = typer.Option(False, "--full", help="Full runs instead of each milestone's --quick mode."),
):
    """Run every available milestone in turn (quick mode, bundled data) and summarize."""
    manifest = _manifest()
    rows = []
    for ms in manifest.milestones:
        if not (manifest.root / ms.script).is_file():
            rows.append((ms, "not in this course yet", 0.0))
            continue
        t0 = time.perf_counter()
        code = _run_milestone(manifest, str(ms.number), reference, [] if full else ["--quick"])
        rows.append((ms, "ok" if code == 0 else f"FAILED (exit {code})", time.perf_counter() - t0))
    table = Table(title="Milestone tour")
    for col in ("#", "milestone", "result", "seconds"):
        table.add_column(col)
    for ms, result, secs in rows:
        table.add_row(str(ms.number), ms.title, result, f"{secs:.1f}" if secs else "-")
    console.print(table)
    if any(r[1].startswith("FAILED") for r in rows):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
