"""The student release, made by NBGrader's own preprocessors.

The chain is nbgrader 0.9's ``generate_assignment`` pipeline without its gradebook
database: lock cells, replace solution regions by stubs, clear outputs, check and checksum
the cells, remove hidden tests, checksum again. Export directives sit outside solution
regions (the lesson checker enforces it), so released notebooks still export.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .export import atomic_write
from .lesson import read_notebook
from .manifest import Manifest, ModuleSpec


class ReleaseError(Exception):
    """A lesson cannot be turned into a student notebook."""


def release_notebook(lesson: Path):
    """The student version of one lesson, as an nbformat notebook."""
    import nbformat
    from nbgrader.preprocessors import (
        CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions,
        ComputeChecksums, LockCells,
    )

    nb = read_notebook(lesson)
    resources: dict = {}
    chain = [
        LockCells(), ClearSolutions(), ClearOutput(), CheckCellMetadata(), ComputeChecksums(),
        ClearHiddenTests(), ClearMarkScheme(), ComputeChecksums(), CheckCellMetadata(),
    ]
    try:
        for pre in chain:
            nb, resources = pre.preprocess(nb, resources)
    except Exception as e:  # nbgrader raises RuntimeError/ValidationError with its own message
        raise ReleaseError(f"{lesson}: nbgrader cannot release it: {e}") from None
    nbformat.validate(nb)
    return nb


def notebook_relpath(m: ModuleSpec) -> Path:
    """Where a module's notebook lives in a release or workspace: ``modules/01_tensor/tensor.ipynb``."""
    return Path("modules") / m.dirname / f"{m.slug}.ipynb"


def release(manifest: Manifest, out: Path, only: list[ModuleSpec] | None = None) -> list[Path]:
    """Write the student release of every existing lesson (or ``only``) under ``out``.

    For each module: the released notebook and, if the lesson has one, its integration tests.
    Returns the written notebook paths.
    """
    import nbformat

    written = []
    for m in only if only is not None else manifest.existing_lessons():
        nb = release_notebook(manifest.lesson_path(m))
        target = out / notebook_relpath(m)
        atomic_write(target, nbformat.writes(nb) + "\n")
        integration = manifest.lesson_path(m).parent / "test_integration.py"
        if integration.is_file():
            shutil.copyfile(integration, target.parent / integration.name)
        written.append(target)
    return written


def solution_lines(lesson_nb) -> list[str]:
    """Code lines that only the lesson's solution regions contain (what must not leak).

    A line the lesson also shows outside every solution region (in a provided helper, or
    spelled out in a hint) is public on purpose and does not count.
    """
    inside_lines, outside = [], []
    for cell in lesson_nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s == "### BEGIN SOLUTION":
                inside = True
            elif s == "### END SOLUTION":
                inside = False
            elif inside:
                if s and not s.startswith("#") and len(s) > 12:
                    inside_lines.append(s)
            else:
                outside.append(line)
    public = "\n".join(outside)
    return [line for line in inside_lines if line not in public]


def restore_solutions(released_nb, lesson_nb):
    """The released notebook with each solution cell's source taken from the reference lesson
    (matched by grade_id): what a learner who wrote the reference solution would hand in."""
    import copy

    reference = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in lesson_nb.cells}
    nb = copy.deepcopy(released_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = reference[meta["grade_id"]]
    return nb
