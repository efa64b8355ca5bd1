"""Answer sketches for the Reflect questions, revealed by ``tito module complete``.

Each lesson folder holds ``reflect_answers.md`` next to the lesson: one numbered item per
Reflect question (``1. ...``, ``2. ...``, the lesson checker holds the numbers equal). The
file is never part of a notebook, so neither ``tito release`` nor plain nbgrader can ship it
to a student. A student kit carries it sealed (zlib + base64 in ``answers/NN_slug.json``): a
spoiler guard, not a secret, since Reflect questions are not graded. When a module is
completed, its sketches are written into the workspace (``modules/NN_slug/reflect_answers.md``)
and printed.
"""
from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

from .lesson import Cell
from .manifest import Manifest, ModuleSpec

ANSWERS_NAME = "reflect_answers.md"
SEALED_DIR = "answers"  # in a student kit
_ITEM = re.compile(r"^(\d+)\.\s+\S")


def numbered_items(text: str) -> dict[int, str]:
    """The top-level numbered items of a markdown text (``1. ...`` at the start of a line),
    each with its continuation lines."""
    items: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = _ITEM.match(line)
        if m:
            current = int(m.group(1))
            items[current] = [line]
        elif current is not None and (line.startswith((" ", "\t")) or not line.strip()):
            items[current].append(line)
        elif line.strip():
            current = None
    return {n: "\n".join(lines).strip() for n, lines in items.items()}


def reflect_questions(cells: list[Cell]) -> list[int]:
    """The numbers of the questions of the lesson's Reflect cell."""
    for c in cells:
        if c.kind == "markdown":
            first = next((ln for ln in c.source.splitlines() if ln.strip()), "")
            if "reflect" in first.lower():
                return sorted(numbered_items(c.source))
    return []


def answer_problems(lesson: Path, cells: list[Cell]) -> list[str]:
    """Every Reflect question has a sketch in ``reflect_answers.md``, and nothing else does."""
    questions = reflect_questions(cells)
    path = Path(lesson).parent / ANSWERS_NAME
    if not path.is_file():
        return [f"no {ANSWERS_NAME} next to the lesson: each Reflect question needs an answer sketch "
                "(revealed by `tito module complete`)"] if questions else []
    answers = numbered_items(path.read_text(encoding="utf-8"))
    problems = []
    missing = [n for n in questions if n not in answers]
    if missing:
        problems.append(f"{ANSWERS_NAME} has no sketch for Reflect question(s) {missing}")
    extra = sorted(set(answers) - set(questions))
    if extra:
        problems.append(f"{ANSWERS_NAME} answers question(s) {extra}, which the Reflect cell does not ask")
    short = [n for n in questions if n in answers and len(answers[n].split()) < 12]
    if short:
        problems.append(f"{ANSWERS_NAME}: the sketch of question(s) {short} is too short to help (under 12 words)")
    return problems


def seal(text: str) -> str:
    return json.dumps({"format": 1, "encoding": "zlib+base64",
                       "answers": base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")},
                      indent=2) + "\n"


def unseal(data: str) -> str:
    doc = json.loads(data)
    if doc.get("encoding") != "zlib+base64":
        raise ValueError(f"unknown encoding {doc.get('encoding')!r}")
    return zlib.decompress(base64.b64decode(doc["answers"])).decode("utf-8")


def sealed_relpath(m: ModuleSpec) -> Path:
    return Path(SEALED_DIR) / f"{m.dirname}.json"


def answer_sketches(manifest: Manifest, m: ModuleSpec) -> str | None:
    """The module's answer sketches from its course (a checkout, or a kit's sealed copy);
    None if it has none, or they cannot be read."""
    try:
        if manifest.is_kit:
            path = manifest.root / sealed_relpath(m)
            return unseal(path.read_text(encoding="utf-8")) if path.is_file() else None
        path = manifest.root / m.lesson_relpath.parent / ANSWERS_NAME
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, ValueError, KeyError, zlib.error, UnicodeDecodeError):
        return None


def write_sealed(manifest: Manifest, modules: list[ModuleSpec], out: Path) -> list[Path]:
    """The sealed sketches of ``modules`` under ``out/answers/`` (for a student kit)."""
    from .export import atomic_write

    written = []
    for m in modules:
        text = answer_sketches(manifest, m)
        if text is not None:
            atomic_write(out / sealed_relpath(m), seal(text))
            written.append(out / sealed_relpath(m))
    return written
