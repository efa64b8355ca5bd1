"""After enable_autograd() every replaced method still presents itself as the one it replaced.

Module 05 swaps Tensor's methods (and the activations' and losses' forward) for versions that
record the graph. help(Tensor.sum), Jupyter's Shift-Tab and tracebacks must still show the
method's name, module 01's (02's, 04's) docstring and signature, not a nameless lambda.
"""
import inspect
import traceback

import numpy as np
import pytest

import tinytorch  # noqa: F401  (enables autograd)
from tinytorch.core import autograd
from tinytorch.core.tensor import Tensor

# module 05's versions that document what they now do; every other one shows the original's
OWN_DOCS = {"backward", "log_softmax"}
PATCHED = sorted(autograd._ORIGINALS, key=lambda key: (str(key[0]), key[1]))


def _owner_name(owner) -> str:
    return owner.__name__ if inspect.ismodule(owner) else owner.__qualname__


def test_every_table_entry_is_patched():
    expected = {(Tensor, name) for name in autograd._TENSOR_METHODS}
    expected |= {(cls, "forward") for cls in autograd._ACTIVATION_FORWARDS}
    expected |= {(cls, "forward") for cls in autograd._LOSS_FORWARDS}
    assert expected <= set(autograd._ORIGINALS)
    assert len(PATCHED) >= len(autograd._TENSOR_METHODS) + 8


@pytest.mark.parametrize("owner, name", PATCHED, ids=[f"{_owner_name(o)}.{n}" for o, n in PATCHED])
def test_patched_method_keeps_name_doc_and_signature(owner, name):
    original = autograd._ORIGINALS[(owner, name)]
    method = getattr(owner, name)
    assert original is not None, f"{name}: module 05 patches a method its module does not define"
    assert method is not original, f"{name} was not replaced by enable_autograd()"
    qualname = name if inspect.ismodule(owner) else f"{owner.__qualname__}.{name}"
    assert method.__name__ == name
    assert method.__qualname__ == qualname
    assert method.__code__.co_name == name, "a traceback would not name the method"
    assert isinstance(method.__doc__, str) and method.__doc__.strip(), f"{qualname} has no docstring"
    if name not in OWN_DOCS:
        assert method.__doc__ == original.__doc__, f"{qualname}: not the original's docstring"
    assert inspect.signature(method, eval_str=True) == inspect.signature(original, eval_str=True), (
        f"{qualname}: {inspect.signature(method)} differs from {inspect.signature(original)}")


def test_traceback_names_the_method():
    x = Tensor(np.arange(6, dtype=np.float32), requires_grad=True)
    with pytest.raises(ValueError) as info:
        x.reshape(4, 2)
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "reshape" in names and "<lambda>" not in names, names


def test_help_shows_the_docstring():
    assert "Sum over" in pydoc_text(Tensor.sum)
    assert "other + self" in pydoc_text(Tensor.__radd__)


def pydoc_text(obj) -> str:
    import pydoc
    return pydoc.plain(pydoc.render_doc(obj))


def test_no_grad_decorator_keeps_the_function():
    @autograd.no_grad()
    def evaluate(model, batch: int = 2):
        """Run without a graph."""
        return batch

    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Run without a graph."
    assert list(inspect.signature(evaluate).parameters) == ["model", "batch"]
