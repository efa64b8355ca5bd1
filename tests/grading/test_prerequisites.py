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


def test_provided_files_come_from_the_course(manifest, tmp_path):
    """Module 08's loaders (a provided file, not the learner's code) are staged from the course,
    with the reference prerequisites and over a student's own copy alike."""
    m = manifest.module("dataloader")
    task = GradingTask("ada", m, manifest.lesson_path(m), None, None, manifest.root)
    stage = tmp_path / "pkg"
    stage.mkdir()
    _stage_package(task, manifest.modules, stage)
    course_copy = (manifest.root / "tinytorch" / "data" / "datasets.py").read_text()
    assert (stage / "tinytorch" / "data" / "datasets.py").read_text() == course_copy
    assert (stage / "tinytorch" / "data" / "__init__.py").is_file()
    assert not (stage / "tinytorch" / "data" / "loader.py").exists()  # the graded module's own code
    student = tmp_path / "ws"
    (student / "tinytorch" / "data").mkdir(parents=True)
    (student / "tinytorch" / "__init__.py").write_text("")
    (student / "tinytorch" / "data" / "datasets.py").write_text("def load_tinydigits(): return 'forged'\n")
    task = GradingTask("bob", m, manifest.lesson_path(m), None, student, manifest.root)
    stage = tmp_path / "pkg2"
    stage.mkdir()
    assert _stage_package(task, manifest.modules, stage) == "student's"
    assert (stage / "tinytorch" / "data" / "datasets.py").read_text() == course_copy
