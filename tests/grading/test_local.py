"""`tito module test` tells the truth: visible tests only (and says so), locked cells restored,
a hang stopped per cell with its line, a failing assert shown, Ctrl-C stops everything."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from tooling.learner import copy_workspace, init_sample_workspace, tito, write_reference_solutions

MARK = "TITO_CTRL_C_5e1b"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return init_sample_workspace(tmp_path_factory.mktemp("local"))


@pytest.fixture()
def ws(template, tmp_path):
    return copy_workspace(template, tmp_path)


def _edit_cell(nb, gid, fn):
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
    fn(cell)


def test_checksum_is_nbgrader_s(manifest):
    from nbgrader.utils import compute_checksum

    from tito.release import release_notebook
    from tito.workspace import nbgrader_checksum

    nb = release_notebook(manifest.lesson_path(manifest.module(1)))
    cells = [c for c in nb.cells if "checksum" in c.metadata.get("nbgrader", {})]
    assert len(cells) > 5
    for c in cells:
        meta = c.metadata["nbgrader"]
        assert nbgrader_checksum(c.source, c.cell_type, meta) == compute_checksum(c) == meta["checksum"]
        assert nbgrader_checksum(c.source + " ", c.cell_type, meta) != meta["checksum"]


def test_deleted_test_is_restored_and_visible_score_is_labelled(ws):
    course, manifest, root = ws
    m = manifest.modules[0]
    path = write_reference_solutions(root, manifest, m)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test-dtype"]
    _edit_cell(nb, "test-double", lambda c: setattr(c, "source", "pass  # deleted my test\n"))
    _edit_cell(nb, "double", lambda c: setattr(c, "source", c.source.replace("dtype=np.float32", "dtype=np.float64")))
    nbformat.write(nb, str(path))
    out = tito("module", "complete", "01", cwd=root, course=course)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the locked cell test-dtype was deleted: its original is restored" in out.stderr
    assert "the locked cell test-double was changed" in out.stderr
    assert "FAILED test-dtype" in out.stderr and "`assert double([1]).dtype == np.float32` failed" in out.stderr
    assert "got double([1]).dtype = dtype('float64')" in out.stderr
    assert "2 / 3 on the visible tests" in out.stdout and "Hidden tests run when your instructor grades" in out.stdout
    assert json.loads((root / "progress.json").read_text())["completed"] == {}


def test_a_hang_costs_its_cell_and_names_the_line(ws):
    course, manifest, root = ws
    m = manifest.modules[0]
    write_reference_solutions(root, manifest, m, lambda nb: _edit_cell(
        nb, "double", lambda c: setattr(c, "source", c.source.replace("    ### BEGIN SOLUTION", "    while True:\n        pass\n    ### BEGIN SOLUTION"))))
    t0 = time.monotonic()
    out = tito("module", "test", "01", "--timeout", "3", cwd=root, course=course)
    assert out.returncode == 1
    assert re.search(r"stopped after 3 s \(the per-cell time limit\); it was running line [45] of cell double \(in double\)",
                     out.stderr), out.stderr
    assert time.monotonic() - t0 < 60  # two cells of 3 s, not a notebook-wide limit


def _marked() -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and MARK.encode() in (d / "cmdline").read_bytes():
                found.append(d.name)
        except OSError:
            pass
    return found


def _terminal_sigint():
    """SIGINT as a terminal's foreground job has it. A shell starts background jobs with SIGINT
    ignored, children inherit that, and Python then installs no KeyboardInterrupt handler: a
    suite run with `&` would otherwise test a tito that cannot hear Ctrl-C at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_learners_code_at_once(ws):
    course, manifest, root = ws
    m = manifest.modules[0]
    hog = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', '# {MARK}\\nwhile True: pass'], "
           "start_new_session=True)\nwhile True:\n    pass\n")
    write_reference_solutions(root, manifest, m, lambda nb: _edit_cell(nb, "double", lambda c: setattr(c, "source", c.source + "\n" + hog)))
    env = dict(os.environ, TINYTORCH_COURSE=str(course))
    env.pop("TINYTORCH_WORKSPACE", None)
    before = set(_marked())            # a process left by another run must not count as ours
    log = root / "tito-ctrl-c.log"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "tito.cli", "module", "test", "01",
                             "--timeout", "300"], cwd=root, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_terminal_sigint)
    ours = lambda: [p for p in _marked() if p not in before]  # noqa: E731

    def fail(why):                     # say where tito was, and leave nothing running for later tests
        os.kill(proc.pid, signal.SIGABRT)  # faulthandler prints tito's stack
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise AssertionError(f"{why}; tito's output:\n{log.read_text(errors='replace')[-4000:]}")

    deadline = time.monotonic() + 120
    while not ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not ours():
        fail("the learner's code never started")
    started = time.monotonic() - t0
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail(f"tito did not stop within 30 s of Ctrl-C (the learner's code had started after {started:.1f} s)")
    deadline = time.monotonic() + 10
    while ours() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ours() == [], "the learner's processes survived Ctrl-C"
