"""Every import line the paper prints works verbatim on the reference package.

The lines are read from the paper itself (``../shared/reference/tinytorch-paper.txt``, beside
the clone in CI); ``PAPER_LINES`` is a copy for checkouts without it, and the test fails if
the paper and the copy disagree, so the copy cannot go stale silently.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

# Copied from the paper (section 4's milestones, section 6.4's Listing 6), in order of appearance.
PAPER_LINES = [
    "from tinytorch.core import Tensor",
    "from tinytorch.nn import Linear, Sigmoid",
    "from tinytorch.optim import SGD",
    "from tinytorch.nn import CrossEntropyLoss",
    "from tinytorch.nn import Conv2d, MaxPool2d",
    "from tinytorch.nn import Transformer",
    "from tinytorch.optim import Adam",
    "from tinytorch.profiling import profile_memory",
    "from tinytorch.core import Tensor",
    "from tinytorch.nn import Conv2d, MaxPool2d, Linear",
    "from tinytorch.nn import Transformer, Embedding, Attention",
]

IMPORT = re.compile(r"(?:from tinytorch[\w.]* import [\w, ]*\w|import tinytorch[\w.]*)")


def paper_import_lines(text: str) -> list[str]:
    """Import statements in the paper's text: inline code, `;`-separated, and listing lines
    wrapped after a comma (``from tinytorch.nn import Conv2d, MaxPool2d,\\n   Linear``)."""
    joined = re.sub(r",[ \t]*\n[ \t]+", ", ", text)
    return [re.sub(r"\s+", " ", m) for m in IMPORT.findall(joined)]


@pytest.fixture(scope="module")
def lines(repo_root):
    paper = repo_root.parent / "shared" / "reference" / "tinytorch-paper.txt"
    if paper.is_file():
        found = paper_import_lines(paper.read_text(encoding="utf-8"))
        assert found == PAPER_LINES, (
            f"the paper's import lines changed; update PAPER_LINES:\n{found}")
    return PAPER_LINES


def test_extraction_handles_the_papers_layouts():
    text = ("Students import `from tinytorch.core import Tensor; from tinytorch.nn import Linear, Sigmoid`-their\n"
            "5 from tinytorch.nn import Conv2d, MaxPool2d,\n   Linear\n6 # Autograd\n")
    assert paper_import_lines(text) == ["from tinytorch.core import Tensor", "from tinytorch.nn import Linear, Sigmoid",
                                        "from tinytorch.nn import Conv2d, MaxPool2d, Linear"]


def _run(code: str, repo_root) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(repo_root), "PATH": ""}, timeout=120)


RUNNER = """
import json, sys
results = []
for line in json.loads(sys.argv[1]):
    try:
        exec(line, {})
        results.append([line, ""])
    except Exception as e:
        results.append([line, type(e).__name__ + ": " + str(e)])
print(json.dumps(results))
"""


def test_every_paper_import_runs_verbatim(lines, repo_root):
    """Each line in order in one fresh interpreter (the first one from a cold start); module
    14's ``from tinytorch.profiling import profile_memory`` included."""
    import json

    out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(lines)], cwd=repo_root, capture_output=True,
                         text=True, env={"PYTHONPATH": str(repo_root), "PATH": ""}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert [line for line, _ in results] == lines
    for line, error in results:
        assert not error, f"{line!r} failed: {error}"


def test_the_papers_names_are_the_modules_classes(repo_root):
    code = "\n".join([
        "from tinytorch.core import Tensor",
        "from tinytorch.nn import Transformer, Embedding, Attention, Conv2d, Linear, CrossEntropyLoss",
        "from tinytorch.optim import SGD, Adam",
        "from tinytorch.core.tensor import Tensor as T1",
        "from tinytorch.models.transformer import GPT",
        "from tinytorch.core.attention import MultiHeadAttention",
        "from tinytorch.core.spatial import Conv2d as C",
        "from tinytorch.text.embeddings import Embedding as E",
        "from tinytorch.profiling import profile_memory, Profiler",
        "from tinytorch.profiling.profiler import profile_memory as pm, Profiler as P",
        "import tinytorch",
        "assert profile_memory is pm and Profiler is P",
        "assert Tensor is T1 is tinytorch.Tensor",
        "assert Transformer is GPT and Attention is MultiHeadAttention and Conv2d is C and Embedding is E",
        "print('ok')",
    ])
    out = _run(code, repo_root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
