"""The tito wheel in the student kit is a wheel pip installs, with a `tito` command."""
from __future__ import annotations

import subprocess
import sys

from tito.release import build_tito_wheel


def test_pip_installs_the_kit_wheel(manifest, tmp_path):
    wheel = build_tito_wheel(manifest, tmp_path / "wheels")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                        "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "tito" / "cli.py").is_file() and (target / "tito" / "_harness.py").is_file()
    assert not (target / "tinytorch").exists(), "the kit's wheel carries no tinytorch code"
    script = (target / "bin" / "tito").read_text()
    assert "from tito.cli import main" in script
    meta = next(target.glob("tinytorch_tito-*.dist-info")) / "METADATA"
    requires = [l for l in meta.read_text().splitlines() if l.startswith("Requires-Dist:")]
    assert any("numpy" in l for l in requires) and any("nbgrader" in l for l in requires)
