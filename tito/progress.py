"""The learner's progress file: read and written atomically, validated on every read.

A damaged or hand-edited file is never overwritten silently: commands stop with a message
that says what is wrong and how to repair it, and nothing else is touched.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .export import atomic_write
from .manifest import Manifest

FORMAT = 1


class ProgressError(Exception):
    """The progress file cannot be trusted."""


@dataclass
class Progress:
    completed: dict[str, dict] = field(default_factory=dict)  # "01" -> {"completed_at", "score", "max_score"}

    def is_done(self, number: int) -> bool:
        """Completed by the learner, or provided by the reference solution (``tito init --start``)."""
        return f"{number:02d}" in self.completed

    def is_provided(self, number: int) -> bool:
        """In the package as the reference solution, standing in for a module the learner skipped."""
        return bool(self.completed.get(f"{number:02d}", {}).get("provided"))

    def done_numbers(self) -> list[int]:
        return sorted(int(k) for k in self.completed)

    def provided_numbers(self) -> list[int]:
        return [n for n in self.done_numbers() if self.is_provided(n)]

    def learners_numbers(self) -> list[int]:
        """Modules whose code in the package is the learner's own."""
        return [n for n in self.done_numbers() if not self.is_provided(n)]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "completed": dict(sorted(self.completed.items()))}, indent=2) + "\n"


def _damaged(path: Path, why: str) -> ProgressError:
    return ProgressError(
        f"{path} is damaged: {why}.\n"
        "Nothing was changed: your notebooks (modules/) and your package (tinytorch/) are intact.\n"
        "Fix the file by hand, or run `tito progress repair` to keep a backup of it and rebuild "
        "progress from the modules your package already contains."
    )


def load(path: Path, manifest: Manifest) -> Progress:
    if not path.exists():
        return Progress()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged(path, f"it is not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("completed"), dict):
        raise _damaged(path, 'expected an object with a "completed" object')
    if data.get("format") != FORMAT:
        raise _damaged(path, f"unknown format {data.get('format')!r} (expected {FORMAT})")
    known = {m.code for m in manifest.modules}
    for key, value in data["completed"].items():
        if key not in known:
            raise _damaged(path, f"it lists module {key!r}, which the course does not have")
        if not isinstance(value, dict):
            raise _damaged(path, f"the entry of module {key} is not an object")
    return Progress(completed=dict(data["completed"]))


def save(path: Path, progress: Progress) -> None:
    atomic_write(path, progress.to_json())


def record(path: Path, manifest: Manifest, number: int, score: float, max_score: float) -> Progress:
    progress = load(path, manifest)
    progress.completed[f"{number:02d}"] = {
        "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "score": score,
        "max_score": max_score,
    }
    save(path, progress)
    return progress


def provide(path: Path, manifest: Manifest, numbers: list[int]) -> Progress:
    """Record modules as provided: their reference solution is in the package (not scored)."""
    progress = load(path, manifest)
    for n in numbers:
        progress.completed[f"{n:02d}"] = {"completed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                          "score": None, "max_score": None, "provided": True}
    save(path, progress)
    return progress


def describe(progress: Progress) -> str:
    """Whose code the package holds, in one line: "yours: 12, 13; provided (reference solution): 01-11"."""
    def codes(numbers):
        return ", ".join(f"{n:02d}" for n in numbers) or "none yet"
    text = f"yours: {codes(progress.learners_numbers())}"
    if progress.provided_numbers():
        text += f"; provided (the reference solution): {codes(progress.provided_numbers())}"
    return text


def repair(path: Path, manifest: Manifest, package_root: Path) -> tuple[Path | None, Progress]:
    """Back up a damaged progress file and rebuild it from the workspace package."""
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copyfile(path, backup)
    from .export import module_path

    progress = Progress()
    for m in manifest.modules:
        mine, course = package_root / module_path(m.package), manifest.root / module_path(m.package)
        if mine.is_file():
            progress.completed[m.code] = {"completed_at": None, "score": None, "max_score": None,
                                          "rebuilt": True}
            if course.is_file() and mine.read_bytes() == course.read_bytes():
                progress.completed[m.code]["provided"] = True  # the reference solution, word for word
    save(path, progress)
    return backup, progress
