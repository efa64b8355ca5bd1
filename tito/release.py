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
from .lesson import BEGIN_SOLUTION, END_SOLUTION, LessonError, provided_sources, read_notebook, scan_markers
from .manifest import KIT_MARKER, MANIFEST_RELPATH, Manifest, ModuleSpec


class ReleaseError(Exception):
    """A lesson cannot be turned into a student notebook."""


def release_notebook(lesson: Path):
    """The student version of one lesson, as an nbformat notebook."""
    import nbformat
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
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

    For each module: the released notebook and, if the lesson has them, its integration tests
    and its provided source files.
    Returns the written notebook paths.
    """
    import nbformat

    written = []
    for m in only if only is not None else manifest.existing_lessons():
        target = out / notebook_relpath(m)
        if manifest.is_kit:  # a student kit holds the released notebooks already
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(manifest.released_path(m), target)
        else:
            atomic_write(target, nbformat.writes(release_notebook(manifest.lesson_path(m))) + "\n")
        folder = manifest.root / m.lesson_relpath.parent
        integration = folder / "test_integration.py"
        if integration.is_file():
            shutil.copyfile(integration, target.parent / integration.name)
        try:
            provided = provided_sources(folder, m.lesson_relpath.name)
        except LessonError as e:
            raise ReleaseError(str(e)) from None
        for path, _ in provided:  # code the course provides: read, not written, by the learner
            shutil.copyfile(path, target.parent / path.name)
        written.append(target)
    return written


def solution_lines(lesson_nb) -> list[str]:
    """Code lines that only the lesson's solution regions contain (what must not leak).

    A line the lesson also shows outside every solution region (in a provided helper, or
    spelled out in a hint) is public on purpose and does not count.
    """
    inside_lines, outside = [], []
    for cell in lesson_nb.cells:
        for ln in scan_markers(cell.source).lines:
            s = ln.text.strip()
            if ln.region == "solution":
                if s and not s.startswith("#") and len(s) > 12:
                    inside_lines.append(s)
            elif ln.marker not in (BEGIN_SOLUTION, END_SOLUTION):
                outside.append(ln.text)
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


# --------------------------------------------------------------------------- the student kit

KIT_README = """# TinyTorch student kit

Everything you need to take the course, without the course repository: the module
notebooks (solutions are stubs for you to write), the list of modules, the integration
tests, and the `tito` command in a wheel.

Set up once (Python 3.10 or newer):

    python3 -m venv ~/tinytorch-venv && . ~/tinytorch-venv/bin/activate
    pip install wheels/{wheel}
    cd THIS_FOLDER && tito init ../my-tinytorch

Then, inside `../my-tinytorch`: `tito module start 01`, `tito module test 01`,
`tito module complete 01`, `tito status`. Keep this folder where it is: your workspace
reads the list of modules from it (and, when you complete a module, the answer sketches
of its Reflect questions, kept sealed in `answers/` until then). `tito module test` scores the tests you can see; your
instructor also runs hidden tests when grading.

Handing in: your instructor says how (nbgrader's assignment list, or upload
`my-tinytorch/modules/01_tensor/tensor.ipynb` under that name).
"""


def _requirements(manifest: Manifest) -> list[str]:
    """What the student's ``tito`` needs: NumPy and the ``tito`` extra of pyproject.toml."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    pyproject = manifest.root / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8")) if pyproject.is_file() else {}
    project = data.get("project", {})
    reqs = list(project.get("dependencies", ["numpy>=1.24"]))
    reqs += project.get("optional-dependencies", {}).get("tito", ["typer>=0.12", "rich>=13", "jupytext>=1.16",
                                                                   "nbformat>=5.9", "nbgrader>=0.9,<0.10"])
    reqs += project.get("optional-dependencies", {}).get("lab", [])
    return reqs


# tito files a student never needs and must not see: the grader's observer for gradcheck
# checks is module 05's finite-difference loop.
GRADING_ONLY = {"_gradprobe.py"}


def build_tito_wheel(manifest: Manifest, out_dir: Path, version: str | None = None) -> Path:
    """A wheel of the ``tito`` package only (the command line: no lesson, no tinytorch code),
    built directly as the zip file the wheel format specifies; ``version``: the course's."""
    import base64
    import hashlib
    import zipfile

    from . import distribution_version

    version = version or distribution_version()
    name = "tinytorch_tito"
    dist = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {}
    src = Path(__file__).parent
    for p in sorted(src.rglob("*")):  # tito and its subpackages (students pack and submit with tito olympics)
        if p.name in GRADING_ONLY:
            continue
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
            files[f"tito/{p.relative_to(src).as_posix()}"] = p.read_bytes()
    files[f"{dist}/METADATA"] = (
        "Metadata-Version: 2.1\nName: tinytorch-tito\nVersion: " + version + "\n"
        "Summary: The TinyTorch course command line (tito) for students\nRequires-Python: >=3.10\n"
        + "".join(f"Requires-Dist: {r}\n" for r in _requirements(manifest))).encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tito release\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}/entry_points.txt"] = b"[console_scripts]\ntito = tito.cli:main\n"
    files[f"{dist}/top_level.txt"] = b"tito\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return wheel


def release_kit(manifest: Manifest, out: Path, only: list[ModuleSpec] | None = None) -> list[Path]:
    """The student kit under ``out``: released notebooks and integration tests, the manifest,
    the bundled datasets, the sealed Reflect answer sketches (revealed by ``tito module
    complete``), the ``tito`` wheel and a README. No solution code anywhere."""
    import json

    written = release(manifest, out, only)
    (out / MANIFEST_RELPATH).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest.root / MANIFEST_RELPATH, out / MANIFEST_RELPATH)
    for rel in manifest.package_data:  # the bundled datasets and trained weights
        if (manifest.root / rel).is_dir():
            shutil.copytree(manifest.root / rel, out / rel, dirs_exist_ok=True)
    for old in (out / "wheels").glob("*.whl") if (out / "wheels").is_dir() else []:
        old.unlink()
    from .answers import write_sealed

    write_sealed(manifest, only if only is not None else manifest.existing_lessons(), out)
    wheel = build_tito_wheel(manifest, out / "wheels")
    atomic_write(out / "README.md", KIT_README.format(wheel=wheel.name))
    atomic_write(out / KIT_MARKER, json.dumps({"format": 1, "modules": [
        p.parent.name for p in written]}, indent=2) + "\n")
    return written
