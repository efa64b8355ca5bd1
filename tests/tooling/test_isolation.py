"""A workspace runs only the learner's code, wherever Python starts inside it.

The places a learner's Python starts: the workspace root, any folder inside it (a notebook's
folder is where Jupyter and editors start kernels), a kernel started by `tito module start`
(its environment) and one started by another editor (nothing set), with the editable install
`make` creates and with a plain (wheel) install. In every one of them a completed module is the
learner's file, a module not completed raises an ImportError naming the module to complete,
and nothing comes from the course's package. Outside a workspace the course's package is used.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tito.export import export_cells, package_init_files, write_files
from tito.lesson import read_cells

PROBE = r"""
import importlib, json
out = {}
import tinytorch
out["tinytorch"] = tinytorch.__file__
for name in ("tinytorch.core.tensor", "tinytorch.core.layers", "tinytorch.text.tokenization"):
    try:
        out[name] = importlib.import_module(name).__file__
    except ImportError as e:
        out[name] = "ImportError: " + str(e)
from tinytorch.core.tensor import Tensor
out["written_by"] = getattr(Tensor, "written_by", "the course")
import tinytorch.nn
from tinytorch.core import Tensor as CoreTensor
out["nn"] = tinytorch.nn.__file__
out["same Tensor"] = tinytorch.Tensor is Tensor and CoreTensor is Tensor and tinytorch.tensor([1.0]).__class__ is Tensor
try:
    from tinytorch.nn import Linear
    out["nn.Linear"] = importlib.import_module(Linear.__module__).__file__
except ImportError as e:
    out["nn.Linear"] = "ImportError: " + str(e)
print("PROBE " + json.dumps(out))
"""


def make_workspace(root: Path, manifest) -> Path:
    """A workspace as `tito init` + `tito module complete 01` leave it (without running the
    tests: the learner's module 01 is the reference lesson's code, with the learner's mark)."""
    ws = root / "ws"
    (ws / ".tinytorch").mkdir(parents=True)
    (ws / ".tinytorch" / "workspace.json").write_text(json.dumps({"format": 1, "course": str(manifest.root)}))
    m = manifest.module(1)
    files = export_cells(read_cells(manifest.lesson_path(m)), m.lesson_relpath.as_posix(), m.export_target)
    files = {rel: text + "\nTensor.written_by = 'the learner'\n" for rel, text in files.items()}
    write_files(files, ws)
    write_files(package_init_files(list(files), manifest), ws)
    (ws / "modules" / m.dirname / "deeper").mkdir(parents=True)
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory, manifest):
    return make_workspace(tmp_path_factory.mktemp("isolation"), manifest)


def clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYTORCH_WORKSPACE")}
    return dict(env, **extra)


def probe(python, cwd: Path, env=None) -> dict:
    r = subprocess.run([str(python), "-c", PROBE], cwd=cwd, env=env or clean_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.split("PROBE ", 1)[1])


def assert_only_the_learners_code(got: dict, ws: Path) -> None:
    assert got["tinytorch"] == str(ws / "tinytorch" / "__init__.py"), got
    assert got["tinytorch.core.tensor"] == str(ws / "tinytorch" / "core" / "tensor.py"), got
    assert got["written_by"] == "the learner", got
    layers, tokenization = got["tinytorch.core.layers"], got["tinytorch.text.tokenization"]
    assert layers.startswith("ImportError") and "tito module complete 03" in layers, layers
    assert tokenization.startswith("ImportError") and "tito module complete 10" in tokenization, tokenization
    assert str(ws) in tokenization  # names the package it looked in
    # the PyTorch-shaped namespaces are the workspace's, filled by the modules completed so far
    assert got["nn"] == str(ws / "tinytorch" / "nn" / "__init__.py"), got
    assert got["same Tensor"] is True, got
    assert got["nn.Linear"].startswith("ImportError") and "tito module complete 03" in got["nn.Linear"], got


def installed_reference(python) -> bool:
    """Whether ``python`` imports the course's package from outside any checkout."""
    r = subprocess.run([str(python), "-c", "import tinytorch"], cwd=Path(os.sep), env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0


@pytest.fixture(scope="module")
def editable(repo_root):
    if not installed_reference(sys.executable):
        pytest.skip("tinytorch is not installed in this interpreter (`make` installs it editable)")
    return sys.executable


def test_the_course_package_outside_a_workspace(editable, tmp_path, repo_root):
    got = probe(editable, tmp_path)
    assert got["tinytorch"] == str(repo_root / "tinytorch" / "__init__.py")
    assert got["tinytorch.text.tokenization"] == str(repo_root / "tinytorch" / "text" / "tokenization.py")
    assert got["written_by"] == "the course"
    assert got["nn"] == str(repo_root / "tinytorch" / "nn" / "__init__.py"), got
    assert got["same Tensor"] is True, got
    assert got["nn.Linear"] == str(repo_root / "tinytorch" / "core" / "layers.py"), got


@pytest.mark.parametrize("where", [".", "modules/01_tensor", "modules/01_tensor/deeper", "tinytorch"])
def test_editable_install_inside_the_workspace(editable, ws, where):
    assert_only_the_learners_code(probe(editable, ws / where), ws)


def test_workspace_named_by_the_environment(editable, ws, tmp_path):
    assert_only_the_learners_code(probe(editable, tmp_path, clean_env(TINYTORCH_WORKSPACE=str(ws))), ws)


def test_a_wrong_workspace_setting_is_an_error(editable, tmp_path):
    r = subprocess.run([sys.executable, "-c", "import tinytorch"], cwd=tmp_path,
                       env=clean_env(TINYTORCH_WORKSPACE=str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "TINYTORCH_WORKSPACE" in r.stderr and "not in a TinyTorch workspace" in r.stderr


def test_nothing_completed_nothing_importable(editable, tmp_path, manifest):
    ws = tmp_path / "empty"
    (ws / ".tinytorch").mkdir(parents=True)
    (ws / ".tinytorch" / "workspace.json").write_text("{}")
    write_files(package_init_files([], manifest), ws)
    (ws / "modules").mkdir()
    r = subprocess.run([sys.executable, "-c", "from tinytorch.core.tensor import Tensor"], cwd=ws / "modules",
                       env=clean_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "ModuleNotFoundError" in r.stderr and "tito module complete 01" in r.stderr, r.stderr


def _kernel_probe(cwd: Path, env: dict) -> dict:
    jupyter_client = pytest.importorskip("jupyter_client")
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env=env)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        out = []
        reply = kc.execute_interactive(PROBE, timeout=60, output_hook=lambda msg: out.append(
            msg["content"].get("text", "") if msg["msg_type"] == "stream" else ""))
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    return json.loads("".join(out).split("PROBE ", 1)[1])


def test_kernel_started_by_another_editor(editable, ws):
    """An editor or a plain `jupyter lab` starts the kernel in the notebook's folder, nothing set."""
    assert_only_the_learners_code(_kernel_probe(ws / "modules" / "01_tensor", clean_env()), ws)


def test_kernel_started_by_tito_module_start(editable, ws, manifest):
    from tito.cli import learner_env
    from tito.workspace import Workspace

    env = learner_env(Workspace(ws, manifest))
    assert env["TINYTORCH_WORKSPACE"] == str(ws) and env["PYTHONPATH"] == str(ws)
    assert_only_the_learners_code(_kernel_probe(ws / "modules" / "01_tensor", env), ws)


@pytest.mark.slow
def test_plain_install_inside_the_workspace(installed_wheel, ws, tmp_path):
    python, site, _ = installed_wheel
    got = probe(python, tmp_path)
    assert Path(got["tinytorch"]).resolve().is_relative_to(site.resolve()), got
    for where in (".", "modules/01_tensor/deeper"):
        assert_only_the_learners_code(probe(python, ws / where), ws)


def test_course_and_workspace_inits_differ_only_in_the_hand_over(manifest):
    """The rest of the course's __init__.py runs against the workspace's folders after the
    hand-over, so it must be the workspace's __init__.py, word for word."""
    top = Path("tinytorch", "__init__.py")
    course_files, workspace_files = package_init_files([], manifest, course=True), package_init_files([], manifest)
    # the namespaces (tinytorch.nn ...) and their helper are the same files in both packages
    assert sorted(course_files) == sorted(workspace_files)
    assert [p for p in course_files if p != top and course_files[p] != workspace_files[p]] == []
    course, workspace = course_files[top], workspace_files[top]
    diff = [(a, b) for a, b in zip(course.splitlines(), workspace.splitlines()) if a != b]
    assert len(course.splitlines()) == len(workspace.splitlines()) and len(diff) == 1, diff
    assert "_only_the_learners_code(globals(), True," in diff[0][0]
    assert "_only_the_learners_code(globals(), False," in diff[0][1]
