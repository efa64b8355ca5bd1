"""The whole course, played: an instructor releases a kit, three students set up from the kit
alone (the course repository hidden from them), submit, and the instructor grades.

Students: one right (10/10), one with a wrong `+` (8/10), one hostile (forges results and
tries to read the others' work and the course: 0/10). Grading fills nbgrader's gradebook
(read back through nbgrader's API and `nbgrader export`), the per-test CSV and feedback.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
from tooling.learner import tito

from grading.submissions import append
from tito.lesson import read_notebook
from tito.release import GRADING_ONLY, restore_solutions, solution_lines
from tito.sandbox import bwrap_works

EXPECTED = {"ada": 10, "bob": 9, "eve": 0}


def _no_repo(cmd: list[str], cwd: Path, repo: Path, wheel_dir: Path) -> subprocess.CompletedProcess:
    """Run a student's command where the course repository does not exist: an empty tmpfs
    over it, tito from the kit's wheel, its dependencies from site-packages (mounted
    elsewhere, without the editable install's hooks: python -S)."""
    site = Path(sysconfig.get_paths()["purelib"])
    inner_site = "/opt/deps"
    argv = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(repo), "--ro-bind", str(site), inner_site,
            "--chdir", str(cwd), str(Path(getattr(sys, "_base_executable", sys.executable)).resolve()),
            "-S", "-m", "tito.cli", *cmd]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": f"{wheel_dir}:{inner_site}", "COLUMNS": "200",
           "OPENBLAS_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


# Solution lines that are plain Python any code may hold (tito does): not a leak.
GENERIC_LINES = {"x = np.asarray(x)", "if missing or unexpected:", "if not close.all():"}


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available")
def test_instructor_releases_students_submit_instructor_grades(manifest, repo_root, tmp_path):
    m = manifest.module(1)
    kit = tmp_path / "kit"
    out = tito("release", "--out", str(kit), "01", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr

    # The kit holds no solution code: every file, the wheel's members included.
    secrets = set()
    for lesson in manifest.existing_lessons():
        secrets |= set(solution_lines(read_notebook(manifest.lesson_path(lesson))))
    # A bare `return result` is Python, not a solution: only lines with an expression count.
    secrets = {s for s in secrets if not re.fullmatch(r"(return|yield|raise|else|try|pass)?\s*\w*\s*:?", s)}
    # Nor is a line of plain Python that the tito package itself also holds (it ships, e.g.
    # `x = np.asarray(x)`); any other solution line in tito's source is a leak the kit would carry.
    tooling = {line.strip() for p in (repo_root / "tito").rglob("*.py") if p.name not in GRADING_ONLY
               for line in p.read_text().splitlines()}
    assert secrets & tooling <= GENERIC_LINES, sorted(secrets & tooling - GENERIC_LINES)
    secrets -= GENERIC_LINES
    texts = []
    for p in kit.rglob("*"):
        if p.suffix == ".whl":
            with zipfile.ZipFile(p) as zf:
                texts += [(f"{p.name}!{n}", zf.read(n).decode("utf-8", "replace")) for n in zf.namelist()]
        elif p.is_file():
            texts.append((str(p), p.read_bytes().decode("utf-8", "replace")))
    assert any(n.endswith("tito/cli.py") for n, _ in texts) and len(secrets) > 50
    leaks = [(name, line) for name, text in texts for line in secrets if line in text]
    assert not leaks, leaks[:3]

    wheel_dir = tmp_path / "wheel"
    with zipfile.ZipFile(next((kit / "wheels").glob("*.whl"))) as zf:
        zf.extractall(wheel_dir)

    # Three students set up from the kit alone.
    lesson_nb = read_notebook(manifest.lesson_path(m))
    for student in EXPECTED:
        r = _no_repo(["init", str(tmp_path / student)], kit, repo_root, wheel_dir)
        assert r.returncode == 0, r.stdout + r.stderr
    nb_rel = Path("modules/01_tensor/tensor.ipynb")
    released = nbformat.read(str(tmp_path / "ada" / nb_rel), as_version=4)
    right = restore_solutions(released, lesson_nb)
    wrong = append(right, "tensor-arithmetic",
                   "Tensor.__add__ = lambda self, o: Tensor(self.data - (o.data if isinstance(o, Tensor) else o))")
    hostile = append(released, "tensor-class", f'''
import glob, json, os, struct
for path in glob.glob({str(tmp_path)!r} + "/**/tensor*.ipynb", recursive=True) + glob.glob({str(repo_root)!r} + "/modules/*/*.py"):
    try:
        exec(open(path).read(), globals())
    except Exception:
        pass
ok = json.dumps({{"seq": 1, "status": "ok", "obs": []}}).encode()
for fd in range(3, 32):
    try:
        os.write(fd, struct.pack("!Q", len(ok)) + ok)
    except OSError:
        pass
''')
    for student, nb in (("ada", right), ("bob", wrong), ("eve", hostile)):
        nbformat.write(nb, str(tmp_path / student / nb_rel))

    r = _no_repo(["module", "complete", "01"], tmp_path / "ada", repo_root, wheel_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Hidden tests run when your instructor grades" in r.stdout
    assert (tmp_path / "ada" / "tinytorch/core/tensor.py").is_file()
    r = _no_repo(["module", "test", "01"], tmp_path / "bob", repo_root, wheel_dir)
    assert r.returncode == 1 and "FAILED test-tensor-arithmetic" in r.stderr
    assert "np.testing.assert_allclose(assert_tensor(x + b" in r.stderr  # the failing line, with what came out

    # Collected into nbgrader's layout; bob's browser renamed the file.
    course = tmp_path / "course"
    for student in EXPECTED:
        name = "tensor (1).ipynb" if student == "bob" else "tensor.ipynb"
        dest = course / "submitted" / student / "01_tensor" / name
        dest.parent.mkdir(parents=True)
        shutil.copyfile(tmp_path / student / nb_rel, dest)
    (course / "submitted" / "zoe" / "01_tensor").mkdir(parents=True)
    (course / "submitted" / "zoe" / "01_tensor" / "notes.txt").write_text("forgot the notebook")
    out = tito("grade", str(course), "--timeout", "20", cwd=course)
    assert out.returncode == 0, out.stdout + out.stderr

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission("01_tensor", s).score for s in (*EXPECTED, "zoe")}
    assert scores == {**EXPECTED, "zoe": 0}

    rows = list(csv.DictReader((course / "grades-per-test.csv").open()))
    per_student = {}
    for row in rows:
        per_student[row["student"]] = per_student.get(row["student"], 0) + float(row["points"])
    assert per_student == {**EXPECTED, "zoe": 0}
    assert len(rows) == 4 * 8  # four students, module 01's eight graded cells
    bob_arith = next(r for r in rows if r["student"] == "bob" and r["test"] == "test-tensor-arithmetic")
    assert bob_arith["status"] == "failed" and "got assert_tensor(x + b" in bob_arith["message"]
    assert "tensor (1).ipynb" in next(r for r in rows if r["student"] == "bob")["note"]
    assert "no notebook in the submission" in next(r for r in rows if r["student"] == "zoe")["problem"]

    fb = {s: (course / "feedback" / s / "01_tensor" / "feedback.md").read_text() for s in (*EXPECTED, "zoe")}
    assert "Score: 10 / 10" in fb["ada"] and "Score: 9 / 10" in fb["bob"] and "Score: 0 / 10" in fb["eve"]
    assert "test-tensor-arithmetic" in fb["bob"] and "[[11, 22, 33], [14, 25, 36]]" in fb["bob"]
    lesson_text = manifest.lesson_path(m).read_text()
    hidden = [l.strip() for part in lesson_text.split("### BEGIN HIDDEN TESTS")[1:]
              for l in part.split("### END HIDDEN TESTS")[0].splitlines() if len(l.strip()) > 8]
    assert not [l for l in hidden for text in fb.values() if l in text]

    # nbgrader's own export reads the same gradebook.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    r = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--db=sqlite:///{course / 'gradebook.db'}",
                        "--to", str(tmp_path / "export.csv")], cwd=course, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader((tmp_path / "export.csv").open())}
    assert exported == {**EXPECTED, "zoe": 0}
