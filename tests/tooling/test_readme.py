"""The README's learner path, pasted line by line into a shell on a fresh machine.

The lines come from the README itself (the first code block of "Learning with TinyTorch") and
run, unchanged and in order, in one bash session with a fresh HOME and a PATH that holds only
the system's directories (so `tito` is found only if the README says how to get it). Where the
README leaves the learner to write code, the test writes the reference solution into their
notebook, as a learner who solved the exercise would.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

SECTION = "## Learning with TinyTorch"


def readme_learner_lines(readme: str) -> list[str]:
    section = readme.split(SECTION, 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def learner_writes(modules: list[str], complete: bool) -> str:
    """Shell lines: the learner's solution for ``modules`` goes into their notebooks."""
    code = ("import sys; from tito.manifest import load_manifest; from tooling.learner import "
            "write_reference_solutions as w; m = load_manifest(); import pathlib; ws = pathlib.Path.cwd(); "
            "[w(ws, m, m.module(n)) for n in sys.argv[1:]]")
    lines = [f"PYTHONPATH={shlex.quote(str(Path(__file__).parents[1]))} "
             f"python -c {shlex.quote(code)} {' '.join(modules)}"]
    if complete:
        lines += [f"tito module complete {n} > /dev/null" for n in modules]
    return "\n".join(lines)


@pytest.mark.slow
def test_the_readme_learner_path_works_when_pasted(repo_root, tmp_path):
    venv = repo_root / ".venv"
    made = subprocess.run(["make", "-q", ".venv/.installed"], cwd=repo_root, capture_output=True)
    if not (venv / "bin" / "python").is_file() or made.returncode != 0:
        pytest.skip("the repository's .venv is not set up and current (`make setup`); this test does not install")
    lines = readme_learner_lines((repo_root / "README.md").read_text(encoding="utf-8"))
    assert lines[0].startswith("make setup") and lines[1].startswith("source .venv/bin/activate"), lines
    script = ["set -e", "trap 'echo \"FAILED LINE: $BASH_COMMAND\" >&2' ERR",
              f"cd {shlex.quote(str(repo_root))}",
              "! command -v tito  # a fresh machine: nothing on the PATH yet"]
    for line in lines:
        command = line.split("#", 1)[0].strip()
        if command.startswith("tito module test 01"):
            script.append(learner_writes(["01"], complete=False))
        if command.startswith("tito milestone run 1"):
            script.append(learner_writes(["02", "03", "04"], complete=True))
        script.append(f"echo '$ {command}'")
        script.append(line)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8"),
           "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "200"}
    r = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-3000:] + "\n" + r.stderr[-3000:]
    ws = home / "my-tinytorch"
    assert (ws / "tinytorch" / "core" / "tensor.py").is_file()
    assert "Module 01 completed" in r.stdout and "YOUR tinytorch" in r.stdout, r.stdout[-2000:]
