"""docs/instructor.md section 8, followed literally: plain nbgrader releases module 01,
autogrades a student who handed in the reference solution (10/10) and one who handed in the
untouched release (0/10), and exports grades.csv."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _doc_commands() -> tuple[str, str]:
    """The section's shell block, split at the "collect" comment: (before, after)."""
    text = (ROOT / "docs" / "instructor.md").read_text(encoding="utf-8")
    section = text.split("## 8. Plain nbgrader instead of tito grade", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    before, _, after = block.partition("# collect each student's notebook")
    after = after.split("\n", 1)[1]
    return before, after


@pytest.mark.slow
def test_plain_nbgrader_path_of_the_instructor_guide(tmp_path):
    venv_bin = Path(sys.executable).parent
    if not (venv_bin / "nbgrader").exists():
        pytest.skip("nbgrader is not installed in this environment (pip install -e '.[tito]')")
    before, after = _doc_commands()
    before = re.sub(r"^TINYTORCH=.*$", f"TINYTORCH={ROOT}", before, flags=re.M)
    env = dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)

    def bash(script: str) -> None:
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]

    bash(before)
    released = tmp_path / "release" / "01_tensor" / "tensor.ipynb"
    assert released.is_file()

    import nbformat

    from tito.lesson import read_notebook
    from tito.release import restore_solutions

    rel = nbformat.read(str(released), as_version=4)
    ref = read_notebook(ROOT / "modules" / "01_tensor" / "tensor.py")
    for student, nb in (("ada", restore_solutions(rel, ref)), ("bob", rel)):
        dest = tmp_path / "submitted" / student / "01_tensor"
        dest.mkdir(parents=True)
        nbformat.write(nb, str(dest / "tensor.ipynb"))
    bash(after)
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        scores = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(f)}
    assert scores == {"ada": (10.0, 10.0), "bob": (0.0, 10.0)}, scores
    shutil.rmtree(tmp_path / "autograded", ignore_errors=True)
