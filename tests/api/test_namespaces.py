"""The PyTorch-shaped namespaces are generated from the lessons' `#| namespace` lines, point
at the modules' own objects, and in a partial package name the module to complete."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tito.export import (
    ExportError,
    check_namespaces,
    course_namespaces,
    module_path,
    namespace_entries,
    package_init_files,
    write_files,
)


def _committed_modules(manifest, repo_root) -> dict:
    """The exported module files as committed (`tito export --check` keeps them equal to the
    lessons; reading them is much faster than exporting again)."""
    paths = {module_path(e.module) for e in course_namespaces(manifest)}
    return {rel: (repo_root / rel).read_text(encoding="utf-8") for rel in paths}


def _run(code: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)


def test_namespaces_hold_what_the_issue_lists(manifest):
    names = {(e.namespace, e.name) for e in course_namespaces(manifest)}
    wanted = {
        "tinytorch": "Tensor tensor zeros ones randn manual_seed no_grad save load",
        "tinytorch.core": "Tensor",
        "tinytorch.nn": ("Module Linear Sequential Dropout ReLU Sigmoid Tanh GELU Softmax MSELoss CrossEntropyLoss "
                         "BCELoss Conv2d MaxPool2d AvgPool2d Flatten BatchNorm2d Embedding MultiHeadAttention "
                         "LayerNorm TransformerBlock Transformer Attention"),
        "tinytorch.nn.functional": "relu softmax log_softmax cross_entropy mse_loss conv2d max_pool2d dropout",
        "tinytorch.optim": "SGD Adam AdamW",
        "tinytorch.optim.lr_scheduler": "StepLR CosineAnnealingLR OneCycleLR",
        "tinytorch.utils.data": "Dataset TensorDataset DataLoader",
    }
    missing = [f"{ns}.{n}" for ns, ns_names in wanted.items() for n in ns_names.split() if (ns, n) not in names]
    assert not missing, f"not declared by any lesson: {missing}"


def test_every_name_is_its_modules_object(manifest, repo_root):
    lines = ["import importlib"]
    for e in course_namespaces(manifest):
        lines.append(f"assert getattr(importlib.import_module({e.namespace!r}), {e.name!r}) is "
                     f"getattr(importlib.import_module({e.module!r}), {e.source!r}), {e.name!r}")
    lines += ["from tinytorch.nn import *", "assert Linear and Conv2d and Transformer",
              "import tinytorch", "assert tinytorch.nn.functional.relu and tinytorch.optim.lr_scheduler.StepLR",
              "assert 'Linear' in dir(tinytorch.nn)", "print('ok')"]
    out = _run("\n".join(lines), repo_root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_partial_package_names_the_module_to_complete(manifest, repo_root, tmp_path):
    """What a learner's workspace holds after completing module 01 only."""
    tensor = module_path(manifest.module(1).package)
    write_files({tensor: (repo_root / tensor).read_text(encoding="utf-8")}, tmp_path)
    write_files(package_init_files([tensor], manifest), tmp_path)
    out = _run("\n".join([
        "from tinytorch.core import Tensor",
        "import tinytorch",
        "assert tinytorch.tensor([1, 2]).shape == (2,)",
        "import tinytorch.nn as nn",
        "assert 'Linear' not in nn.__all__",
        "try:",
        "    from tinytorch.nn import Linear",
        "except ImportError as e:",
        "    print(e)",
        "try:",
        "    from tinytorch.optim import Adam",
        "except ImportError as e:",
        "    print(e)",
    ]), tmp_path)
    assert out.returncode == 0, out.stderr
    layers, optim = out.stdout.strip().splitlines()
    assert "module 03 layers" in layers and "tito module complete 03" in layers, layers
    assert "module 06 optimizers" in optim, optim


def test_a_directive_for_a_missing_name_fails_the_export(manifest, repo_root):
    files = _committed_modules(manifest, repo_root)
    cells = ["#| default_exp core.layers\n#| export\n#| namespace tinytorch.nn Linear NoSuchLayer\nimport numpy"]
    entries = namespace_entries(cells, "modules/03_layers/layers.py")
    assert [e.name for e in entries] == ["Linear", "NoSuchLayer"]
    import tito.export as ex

    original = ex.course_namespaces
    ex.course_namespaces = lambda m: entries
    try:
        with pytest.raises(ExportError, match="NoSuchLayer"):
            check_namespaces(files, manifest)
    finally:
        ex.course_namespaces = original


def test_a_directive_outside_an_export_cell_is_refused():
    with pytest.raises(ExportError, match="export"):
        namespace_entries(["#| namespace tinytorch.nn Linear\nx = 1"], "lesson.py")
    with pytest.raises(ExportError, match="tinytorch"):
        namespace_entries(["#| export\n#| namespace torch.nn Linear\nx = 1"], "lesson.py")
