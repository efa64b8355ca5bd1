"""The manifest is the one list of modules: complete, consistent, and not repeated elsewhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tito.manifest import ManifestError, load_manifest

TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".json", ".yml", ".yaml", ""}
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist", "files", "golden"}


def test_manifest_lists_twenty_modules_and_six_milestones(manifest):
    assert len(manifest.modules) == 20
    assert [m.number for m in manifest.modules] == list(range(1, len(manifest.modules) + 1))
    assert len(manifest.milestones) == 6
    assert len({m.slug for m in manifest.modules}) == len(manifest.modules)
    assert len({m.package for m in manifest.modules}) == len(manifest.modules)
    assert manifest.module("autograd").points == max(m.points for m in manifest.modules)
    for m in manifest.modules:
        assert m.package.startswith("tinytorch.") and m.points > 0 and m.hours > 0 and m.unlocks


def test_manifest_matches_the_curriculum(manifest, repo_root):
    """Slugs in order are those of the curriculum's module table, when the curriculum is beside us."""
    curriculum = repo_root.parent / "shared" / "CURRICULUM.md"
    if not curriculum.is_file():
        pytest.skip("../shared/CURRICULUM.md is not beside this checkout")
    rows = re.findall(r"^\| (\d\d) \| ([a-z]+)", curriculum.read_text(), flags=re.M)
    assert [(int(n), s) for n, s in rows] == [(m.number, m.slug) for m in manifest.modules]


def test_lessons_live_where_the_manifest_says(manifest, repo_root):
    known = {m.dirname for m in manifest.modules}
    for d in (repo_root / "modules").iterdir():
        if d.is_dir() and not d.name.startswith((".", "_")):
            assert d.name in known, f"modules/{d.name} is not in the manifest"


def test_bad_manifests_are_refused(tmp_path):
    (tmp_path / "modules").mkdir()
    bad = tmp_path / "modules" / "modules.toml"
    bad.write_text('[[module]]\nnumber = 1\nslug = "a"\n')
    with pytest.raises(ManifestError, match="lacks the field"):
        load_manifest(tmp_path)
    base = ('[[module]]\nnumber = {n}\nslug = "m{n}"\ntitle = "t"\ntier = "foundation"\nprerequisites = {p}\n'
            'package = "tinytorch.m{n}"\npoints = 1\nhours = 1\nunlocks = "x"\n')
    bad.write_text(base.format(n=1, p="[2]") + base.format(n=2, p="[]"))
    load_manifest.cache_clear()
    with pytest.raises(ManifestError, match="not earlier modules"):
        load_manifest(tmp_path)
    bad.write_text("this is = = not toml")
    load_manifest.cache_clear()
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(tmp_path)


def test_package_data_ships_in_the_wheel_and_is_not_code(manifest, repo_root):
    """Every package_data folder exists, holds no Python, and pyproject ships it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    assert manifest.package_data, "the manifest declares no package_data"
    shipped = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tinytorch"]
    for rel in manifest.package_data:
        assert (repo_root / rel).is_dir(), rel
        assert not list((repo_root / rel).rglob("*.py")), f"{rel} holds Python: data folders hold data"
        assert f"{rel.relative_to('tinytorch').as_posix()}/*" in shipped, (rel, shipped)


def test_package_data_outside_the_package_is_refused(tmp_path):
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "modules.toml").write_text('package_data = ["../etc"]\n')
    load_manifest.cache_clear()
    with pytest.raises(ManifestError, match="not a folder inside tinytorch"):
        load_manifest(tmp_path)
    load_manifest.cache_clear()


def _text_files(root: Path):
    for path in root.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(root).parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            yield path


def module_list_hits(text: str, manifest) -> list[str]:
    """Places where ``text`` spells out a list of modules by number: three or more distinct
    modules named with their number ("01_tensor", "02 activations", "| 03 | layers"), or a
    range over the module numbers."""
    hits = set()
    for m in manifest.modules:
        pattern = rf"(?<![\d.])0?{m.number}(?!\d)[\s_|.:)\-]{{1,4}}(?:{re.escape(m.slug)}|{re.escape(m.title)})\b"
        if re.search(pattern, text, flags=re.I):
            hits.add(m.code)
    found = []
    if len(hits) >= 3:
        found.append("numbers with names of modules " + ", ".join(sorted(hits)))
    n = len(manifest.modules)
    if re.search(rf"range\(\s*1\s*,\s*{n + 1}\s*\)", text):
        found.append(f"range(1, {n + 1})")
    return found


def test_no_other_file_hard_codes_a_module_list(manifest, repo_root):
    """modules/modules.toml is the only module map. Lessons are exempt (their connection
    maps name neighbours and the checker verifies them against the manifest)."""
    offenders = {}
    for path in _text_files(repo_root):
        rel = path.relative_to(repo_root)
        if rel in (Path("modules/modules.toml"), Path(__file__).relative_to(repo_root)) or (rel.parts[0] == "modules" and len(rel.parts) == 3):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits = module_list_hits(text, manifest)
        if hits:
            offenders[rel.as_posix()] = hits
    assert not offenders, offenders


def test_the_detector_detects(manifest):
    assert module_list_hits("01_tensor 02_activations 03_layers", manifest)
    assert module_list_hits("| 01 | tensor |\n| 02 | activations |\n| 05 | autograd |", manifest)
    assert module_list_hits("for n in range(1, 21):", manifest)
    assert not module_list_hits("needs 01 tensor completed first", manifest)
