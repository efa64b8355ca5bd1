"""The one manifest of modules and milestones (``modules/modules.toml``).

Every tool reads module numbers, slugs, prerequisites and package paths from here.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MANIFEST_RELPATH = Path("modules") / "modules.toml"
KIT_MARKER = "tinytorch-kit.json"  # at the root of a student kit (see tito.release.release_kit)
TIERS = ("foundation", "architecture", "optimization", "capstone")


class ManifestError(Exception):
    """The manifest is missing or inconsistent."""


@dataclass(frozen=True)
class ModuleSpec:
    number: int
    slug: str
    title: str
    tier: str
    prerequisites: tuple[int, ...]
    package: str
    points: int
    hours: float
    unlocks: str

    @property
    def code(self) -> str:
        """Two-digit number, as learners type it: ``01``."""
        return f"{self.number:02d}"

    @property
    def dirname(self) -> str:
        return f"{self.code}_{self.slug}"

    @property
    def lesson_relpath(self) -> Path:
        return Path("modules") / self.dirname / f"{self.slug}.py"

    @property
    def export_target(self) -> str:
        """What ``#| default_exp`` says: the package path without ``tinytorch.``."""
        return self.package.removeprefix("tinytorch.")


@dataclass(frozen=True)
class MilestoneSpec:
    number: int
    slug: str
    title: str
    requires: tuple[int, ...]
    script: str
    target: str


@dataclass(frozen=True)
class Manifest:
    root: Path
    modules: tuple[ModuleSpec, ...]
    milestones: tuple[MilestoneSpec, ...] = field(default=())
    # folders of data inside the package that no lesson generates (datasets, trained weights):
    # export leaves them alone; workspaces, grading stages, student kits and wheels copy them
    package_data: tuple[Path, ...] = field(default=())

    def module(self, key: int | str) -> ModuleSpec:
        """Look a module up by number (1, "1", "01") or slug ("tensor")."""
        text = str(key).strip()
        for m in self.modules:
            if text.isdigit() and int(text) == m.number or text == m.slug or text == m.dirname:
                return m
        known = ", ".join(f"{m.code} {m.slug}" for m in self.modules)
        raise ManifestError(f"No module {key!r}. Known modules: {known}")

    def milestone(self, key: int | str) -> MilestoneSpec:
        text = str(key).strip()
        for m in self.milestones:
            if text.isdigit() and int(text) == m.number or text == m.slug:
                return m
        known = ", ".join(f"{m.number} {m.slug}" for m in self.milestones)
        raise ManifestError(f"No milestone {key!r}. Known milestones: {known}")

    def lesson_path(self, m: ModuleSpec) -> Path:
        return self.root / m.lesson_relpath

    @property
    def is_kit(self) -> bool:
        """This "course" is a student kit made by ``tito release``: released notebooks, no lessons."""
        return (self.root / KIT_MARKER).is_file()

    def released_path(self, m: ModuleSpec) -> Path:
        return self.root / "modules" / m.dirname / f"{m.slug}.ipynb"

    def existing_lessons(self) -> list[ModuleSpec]:
        """Modules whose lesson file exists in this course checkout (in a student kit: whose
        released notebook exists)."""
        if self.is_kit:
            return [m for m in self.modules if self.released_path(m).is_file()]
        return [m for m in self.modules if self.lesson_path(m).is_file()]

    def by_package(self) -> dict[str, ModuleSpec]:
        return {m.package: m for m in self.modules}


def _validate(data: dict, path: Path) -> Manifest:
    try:
        modules = tuple(
            ModuleSpec(
                number=int(d["number"]), slug=str(d["slug"]), title=str(d["title"]),
                tier=str(d["tier"]), prerequisites=tuple(int(p) for p in d["prerequisites"]),
                package=str(d["package"]), points=int(d["points"]), hours=float(d["hours"]),
                unlocks=str(d["unlocks"]),
            )
            for d in data.get("module", [])
        )
        milestones = tuple(
            MilestoneSpec(
                number=int(d["number"]), slug=str(d["slug"]), title=str(d["title"]),
                requires=tuple(int(r) for r in d["requires"]), script=str(d["script"]),
                target=str(d["target"]),
            )
            for d in data.get("milestone", [])
        )
    except KeyError as e:
        raise ManifestError(f"{path}: an entry lacks the field {e}") from None
    numbers = [m.number for m in modules]
    if numbers != list(range(1, len(modules) + 1)):
        raise ManifestError(f"{path}: modules must be numbered 1..N in order, found {numbers}")
    known = set(numbers)
    for m in modules:
        if m.tier not in TIERS:
            raise ManifestError(f"{path}: module {m.code} has tier {m.tier!r}, expected one of {TIERS}")
        bad = [p for p in m.prerequisites if p not in known or p >= m.number]
        if bad:
            raise ManifestError(f"{path}: module {m.code} has prerequisites {bad} that are not earlier modules")
        if not m.package.startswith("tinytorch."):
            raise ManifestError(f"{path}: module {m.code} package {m.package!r} is not under tinytorch.")
    for ms in milestones:
        bad = [r for r in ms.requires if r not in known]
        if bad:
            raise ManifestError(f"{path}: milestone {ms.number} requires unknown modules {bad}")
    package_data = tuple(Path(p) for p in data.get("package_data", []))
    for p in package_data:
        if p.is_absolute() or ".." in p.parts or p.parts[:1] != ("tinytorch",) or len(p.parts) < 2:
            raise ManifestError(f"{path}: package_data entry {p.as_posix()!r} is not a folder inside tinytorch/")
    return Manifest(root=path.parent.parent, modules=modules, milestones=milestones,
                    package_data=package_data)


@lru_cache(maxsize=8)
def load_manifest(root: Path | None = None) -> Manifest:
    """Load the manifest of the course at ``root`` (default: :func:`course_root`)."""
    root = Path(root) if root is not None else course_root()
    path = root / MANIFEST_RELPATH
    if not path.is_file():
        raise ManifestError(f"No manifest at {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path} is not valid TOML: {e}") from None
    return _validate(data, path)


def course_root() -> Path:
    """The TinyTorch checkout holding ``modules/modules.toml``.

    ``TINYTORCH_COURSE`` wins; otherwise the checkout this ``tito`` was installed from
    (editable install), otherwise the current directory or one of its parents.
    """
    env = os.environ.get("TINYTORCH_COURSE")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / MANIFEST_RELPATH).is_file():
        return here
    for p in [Path.cwd(), *Path.cwd().parents]:
        if (p / MANIFEST_RELPATH).is_file():
            return p
    raise ManifestError(
        "Cannot find the TinyTorch course (modules/modules.toml). Run tito from a TinyTorch "
        "checkout or set TINYTORCH_COURSE to one."
    )
