"""Every catalogued student bug fails the graded unit test of the cell where it is made.

For each lesson, one child process runs the student-visible lesson (hidden tests removed:
the learner must see the failure) up to the last cell the catalogue needs, on the package a
learner has at that point (the earlier modules only: a fallback to later reference code would
hide bugs). At every cell
where a bug is made it forks: the copy runs that cell with the bug (a source substitution in
the reference solution) and the cells after it up to the next graded test cell, which must
fail; the unmodified lesson must pass that same test. See bug_catalogue.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from course.bug_catalogue import BUGS

from tito.export import export_cells, package_init_files, write_files
from tito.lesson import BEGIN_HIDDEN, END_HIDDEN, read_cells

RUNNER = Path(__file__).with_name("_bugrunner.py")


def visible(source: str) -> str:
    """A test cell as the learner sees it: without its hidden tests."""
    out, hidden = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN_HIDDEN:
            hidden = True
        elif line.strip() == END_HIDDEN:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def plan(manifest, number: int):
    """(code cells as the runner takes them, the bugs placed on them) for one lesson."""
    m = manifest.module(number)
    cells = [c for c in read_cells(manifest.lesson_path(m)) if c.kind == "code"]
    by_id = {c.grade_id: pos for pos, c in enumerate(cells) if c.grade_id}
    bugs = []
    for i, bug in enumerate(b for b in BUGS if b.module == number):
        assert bug.cell in by_id, f"{bug}: lesson {m.dirname} has no cell {bug.cell!r}"
        at = by_id[bug.cell]
        assert cells[at].is_solution, f"{bug}: {bug.cell} is not a cell the learner writes"
        count = cells[at].source.count(bug.old)
        assert count == 1, f"{bug}: {bug.old!r} occurs {count} times in {bug.cell} (expected once)"
        if bug.test is None:
            target = next((p for p in range(at + 1, len(cells)) if cells[p].is_graded), None)
            assert target is not None, f"{bug}: no graded test after {bug.cell}"
        else:
            assert bug.test in by_id and cells[by_id[bug.test]].is_graded, f"{bug}: {bug.test!r} is not a graded cell"
            target = by_id[bug.test]
            assert target > at, f"{bug}: {bug.test} comes before {bug.cell}"
        bugs.append({"id": str(i), "bug": bug, "at": at, "target": target,
                     "source": cells[at].source.replace(bug.old, bug.new)})
    stop = max((b["target"] for b in bugs), default=-1)
    job_cells = [{"label": c.label(), "graded": c.is_graded,
                  "source": visible(c.source) if c.is_graded else c.source} for c in cells[:stop + 1]]
    return m, job_cells, bugs


@pytest.fixture(scope="session")
def exported(manifest):
    """Each lesson's exported files (number -> {path: text}), as a learner's completed module."""
    return {m.number: export_cells(read_cells(manifest.lesson_path(m)), m.lesson_relpath.as_posix(), m.export_target)
            for m in manifest.existing_lessons()}


def learners_package(manifest, exported, number: int, dest: Path) -> Path:
    """The package a learner has when they start lesson ``number``: the earlier modules only
    (here the reference solutions), so that nothing of this lesson or later ones is importable."""
    files = {rel: text for n, f in exported.items() if n < number for rel, text in f.items()}
    write_files(files, dest)
    write_files(package_init_files(list(files), manifest), dest)
    for rel in manifest.package_data:
        if (manifest.root / rel).is_dir():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(manifest.root / rel, dest / rel)
    return dest


def _numbers():
    from tito.manifest import load_manifest

    manifest = load_manifest()
    return [m.number for m in manifest.existing_lessons()]


@pytest.mark.parametrize("number", _numbers(), ids=lambda n: f"module{n:02d}")
def test_each_bug_fails_the_unit_test_of_its_cell(number, manifest, exported, tmp_path):
    m, cells, bugs = plan(manifest, number)
    if not bugs:
        pytest.fail(f"the bug catalogue has no entry for lesson {m.dirname}")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"cells": cells, "bugs": [{k: b[k] for k in ("id", "at", "target", "source")}
                                                        for b in bugs]}), encoding="utf-8")
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYTORCH_WORKSPACE")}
    package = learners_package(manifest, exported, number, tmp_path / "package")
    env.update(PYTHONPATH=str(package), OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, str(RUNNER), str(job), str(report_path)], cwd=manifest.lesson_path(m).parent,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and report_path.is_file(), r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(report_path.read_text())
    problems = [f"{label}: the unmodified lesson fails it: {err}" for label, err in report["reference"].items() if err]
    for b in bugs:
        bug, target = b["bug"], cells[b["target"]]["label"]
        got = report["bugs"].get(b["id"], {})
        if got.get("crashed"):
            problems.append(f"{bug}: the run crashed ({got['crashed']})")
        elif not got.get("target"):
            problems.append(f"{bug}: NOT caught by {target}" + (f" (other errors: {got['errors']})" if got["errors"] else ""))
        elif got["target"].startswith(("NameError", "ImportError", "ModuleNotFoundError")):
            problems.append(f"{bug}: {target} fails only because an earlier cell broke: {got['target']}")
    assert not problems, "\n".join(problems)
