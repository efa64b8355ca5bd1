"""Write the golden fixtures tests/golden/<name>.npz from PyTorch: the one fixture pipeline.

Usage (torch must be installed; the fixtures are then committed so the suite runs without it):
    python scripts/make_golden.py                      # every tests/**/*opcases*.py
    python scripts/make_golden.py tests/opcheck/core_opcases.py   # one cases file
    python scripts/make_golden.py --check              # only report stale or missing fixtures

A cases file defines ``CASES`` (a list of ``opcheck.OpCase``; each case with a ``torch_fn`` gets
a fixture with its inputs, the float64 forward output and the gradient of every float input
for the projection ``sum(out * R)``, R seeded from the case name) and/or ``FIXTURES`` (name ->
a function that returns the arrays of a reference PyTorch computes, such as optimizer
trajectories). Tests read the first through ``opcheck.check_case``, the second through
``opcheck.load_golden``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from opcheck import (  # noqa: E402
    GOLDEN_DIR,
    case_files,
    golden_path,
    load_cases_file,
    reference_with_torch,
    torch_available,
)


def references(files: list[Path]):
    """(fixture name, a function computing its arrays) for every fixture the files define."""
    for f in files:
        module = load_cases_file(f.resolve())
        for case in getattr(module, "CASES", []):
            if case.torch_fn is not None:
                yield case.name, (lambda case=case: reference_with_torch(case))
        yield from getattr(module, "FIXTURES", {}).items()


def _same(path: Path, ref: dict) -> bool:
    if not path.exists():
        return False
    with np.load(path) as z:
        return set(z.files) == set(ref) and all(
            z[k].shape == ref[k].shape and np.allclose(z[k], ref[k], rtol=1e-12, atol=1e-12) for k in ref)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="cases files (default: tests/**/*opcases*.py)")
    parser.add_argument("--check", action="store_true", help="report stale/missing fixtures, write nothing")
    args = parser.parse_args(argv)
    if not torch_available():
        print("torch is not installed: golden fixtures are made from PyTorch", file=sys.stderr)
        return 2
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    written = stale = 0
    for name, compute in references(args.files or case_files()):
        ref = {k: np.asarray(v) for k, v in compute().items()}
        path = golden_path(name)
        if args.check:
            if not _same(path, ref):
                stale += 1
                print(f"stale or missing: {path.relative_to(ROOT)}")
            continue
        np.savez_compressed(path, **ref)
        written += 1
    if args.check:
        print(f"{stale} stale or missing fixtures")
        return 1 if stale else 0
    total = sum(p.stat().st_size for p in GOLDEN_DIR.glob("*.npz"))
    print(f"wrote {written} fixtures to {GOLDEN_DIR.relative_to(ROOT)} ({total / 1024:.0f} KiB in total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
