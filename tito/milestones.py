"""Milestones: which a learner has unlocked, and a milestone script loaded as a module.

The milestones themselves (number, title, script, the modules they require) are listed in
``modules/modules.toml`` and read by :mod:`tito.manifest`.
"""
from __future__ import annotations

import os

from .manifest import Manifest, MilestoneSpec, load_manifest


def missing_modules(ms: MilestoneSpec, done) -> list[int]:
    """The modules ``ms`` requires that progress ``done`` has not completed (or been provided):
    the milestone is unlocked when this is empty. The one place the gate is computed."""
    return [r for r in ms.requires if not done.is_done(r)]


def unlocked(manifest: Manifest, done) -> list[MilestoneSpec]:
    """The milestones of this course that exist and that progress ``done`` has unlocked."""
    return [ms for ms in manifest.milestones
            if not missing_modules(ms, done) and (manifest.root / ms.script).is_file()]


def load_milestone(key: int | str, manifest: Manifest | None = None):
    """A milestone script as a Python module (its functions; ``main()`` is not run), for
    tests and benchmarks that reuse the milestone's own network and training step.
    Environment defaults the script sets when imported (BLAS threads) are undone."""
    import importlib.util

    manifest = manifest or load_manifest()
    ms = manifest.milestone(key)
    saved = dict(os.environ)
    try:
        spec = importlib.util.spec_from_file_location(f"milestone_{ms.slug}", manifest.root / ms.script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module
