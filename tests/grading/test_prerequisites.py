"""A module's earlier modules, at grading: the student's own package, or else the reference
restricted to the prerequisites (never the graded module's own reference code)."""
from __future__ import annotations

import nbformat

from tito.grade import GradingTask, _stage_package, find_tasks, grade_one
from tito.lesson import read_notebook
from tito.release import release_notebook, restore_solutions
from tito.sandbox import Limits


def test_reference_prerequisites_only(manifest, tmp_path):
    m = manifest.module(2)
    task = GradingTask("ada", m, manifest.lesson_path(m), None, None, manifest.root)
    stage = tmp_path / "pkg"
    stage.mkdir()
    assert _stage_package(task, manifest.modules, stage) == "reference (prerequisites only)"
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*.py"))
    generated = [f for f in files if f.endswith(("/__init__.py", "/_namespace.py"))]  # packages and namespaces
    assert sorted(set(files) - set(generated)) == ["tinytorch/core/tensor.py", "tinytorch/testing.py"]  # module 01's files
    assert "tinytorch/__init__.py" in generated


def test_module_02_graded_on_prerequisites_and_misnamed_folder(manifest, tmp_path):
    m = manifest.module(2)
    lesson = manifest.lesson_path(m)
    good = restore_solutions(release_notebook(lesson), read_notebook(lesson))
    path = tmp_path / "submitted" / "ada" / "activations" / "activations.ipynb"  # folder named by slug
    path.parent.mkdir(parents=True)
    nbformat.write(good, str(path))
    (tmp_path / "submitted" / "bob" / "02_activations").mkdir(parents=True)
    (tmp_path / "submitted" / "bob" / "02_activations" / "activations.ipynb").write_text("{ not json")
    tasks = {t.student: t for t in find_tasks(manifest, tmp_path, [m])}
    ada = grade_one(tasks["ada"], manifest.modules, Limits(cell_timeout=20))
    assert (ada.score, ada.package) == (m.points, "reference (prerequisites only)")
    bob = grade_one(tasks["bob"], manifest.modules, Limits(cell_timeout=20))
    assert bob.score == 0 and "not a readable notebook" in bob.problem and len(bob.tests) == len(ada.tests)
