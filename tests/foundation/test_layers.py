"""Layers (module 03): Module discovery and state, Linear, Dropout, Sequential."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU, Tanh
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


# ----------------------------------------------------------------------------- Module
class Block(Module):
    def __init__(self, seed):
        super().__init__()
        self.fc = Linear(3, 4, seed=seed)
        self.register_buffer("running", Tensor(np.zeros(4, dtype=np.float32)))


class Net(Module):
    def __init__(self):
        super().__init__()
        self.scale = Tensor(np.ones(1, dtype=np.float32), requires_grad=True)
        self.blocks = [Block(0), Block(1)]
        self.pair = (Linear(4, 2, seed=2), ReLU())          # activations in tuples are skipped
        self.head = Linear(2, 1, seed=3)
        self.tied = self.head.weight                          # shared: listed once
        self.constant = Tensor(np.ones(3, dtype=np.float32))  # requires_grad False: ignored
        self.notes = {"x": Linear(1, 1)}                      # dicts are not searched (like PyTorch attrs)


def test_named_parameters_order_and_uniqueness():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["scale", "blocks.0.fc.weight", "blocks.0.fc.bias", "blocks.1.fc.weight",
                     "blocks.1.fc.bias", "pair.0.weight", "pair.0.bias", "head.weight", "head.bias"]
    params = Net().parameters()
    assert len({id(p) for p in params}) == len(params) == 9


def test_shared_tensor_between_children_listed_once():
    a = Linear(3, 3, seed=0)
    b = Linear(3, 3, seed=1)
    b.weight = a.weight
    seq = Sequential(a, b)
    assert len(seq.parameters()) == 3


def test_children_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["blocks.0", "blocks.1", "pair.0", "head"]
    assert [n for n, _ in net.named_buffers()] == ["blocks.0.running", "blocks.1.running"]
    assert all(id(b) not in {id(p) for p in net.parameters()} for _, b in net.named_buffers())


def test_buffer_that_requires_grad_is_not_a_parameter():
    m = Module()
    m.register_buffer("mask", Tensor(np.ones(2, dtype=np.float32), requires_grad=True))
    assert m.parameters() == [] and set(m.state_dict()) == {"mask"}


def test_register_buffer_rejects_non_tensor():
    with pytest.raises(TypeError, match="Tensor"):
        Module().register_buffer("x", np.zeros(2))


def test_module_without_super_init_still_works():
    class Lazy(Module):
        def __init__(self):
            self.fc = Linear(2, 2, seed=0)
    m = Lazy()
    assert len(m.parameters()) == 2 and m.training
    m.eval()
    assert not m.training and not m.fc.training


def test_state_dict_round_trip_copies_and_dtypes():
    a, b = Net(), Net()
    for p in b.parameters():
        p.data[...] = 7.0
    sd = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert set(sd) == {n for n, _ in a.named_parameters()} | {"blocks.0.running", "blocks.1.running"}
    b.load_state_dict({k: v.astype(np.float64) for k, v in sd.items()})   # float64 loads as float32
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=n)
        assert pb.dtype == np.float32, f"{n} became {pb.dtype}"
    sd["head.bias"][...] = 123.0
    assert a.head.bias.data[0] != 123.0, "state_dict must hold copies"


def test_load_state_dict_keeps_tensor_identity():
    """Optimizers hold the parameter Tensors: loading must not replace them."""
    a = Linear(3, 2, seed=0)
    w = a.weight
    a.load_state_dict(Linear(3, 2, seed=1).state_dict())
    assert a.weight is w
    np.testing.assert_array_equal(a.weight.data, Linear(3, 2, seed=1).weight.data)


def test_load_state_dict_errors_name_the_problem():
    m = Linear(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"weight.*\(3, 2\).*\(2, 3\)"):
        m.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2)})
    with pytest.raises(KeyError, match="bias"):
        m.load_state_dict({"weight": np.zeros((3, 2))})
    with pytest.raises(KeyError, match="extra"):
        m.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2), "extra": np.zeros(1)})


def test_train_eval_recursive_and_chainable():
    net = Sequential(Linear(2, 2), Dropout(0.5), Sequential(Dropout(0.1)))
    assert net.eval() is net
    assert not any(m.training for m in (net, net[1], net[2], net[2][0]))
    net.train()
    assert all(m.training for m in (net, net[1], net[2], net[2][0]))


def test_zero_grad_clears_every_parameter():
    net = Net()
    for p in net.parameters():
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_not_implemented_names_the_class():
    class Empty(Module):
        pass
    with pytest.raises(NotImplementedError, match="Empty"):
        Empty()(Tensor([1.0]))


# ----------------------------------------------------------------------------- Linear
@given(fan_in=st.integers(1, 300), fan_out=st.integers(1, 40), seed=st.integers(0, 2**31))
@settings(max_examples=25, deadline=None)
def test_linear_init_range_dtype_and_seed(fan_in, fan_out, seed):
    layer = Linear(fan_in, fan_out, seed=seed)
    bound = 1 / np.sqrt(fan_in)
    for t in (layer.weight, layer.bias):
        assert t.dtype == np.float32 and t.requires_grad
        assert np.abs(t.data).max() <= bound * (1 + 1e-6)
    assert layer.weight.shape == (fan_in, fan_out) and layer.bias.shape == (fan_out,)
    np.testing.assert_array_equal(Linear(fan_in, fan_out, seed=seed).weight.data, layer.weight.data)


def test_linear_init_statistics_match_uniform():
    w = Linear(400, 500, seed=0).weight.data
    bound = 1 / 20
    assert abs(float(w.mean())) < 0.002
    np.testing.assert_allclose(float(w.std()), bound / np.sqrt(3), rtol=0.02)


def test_linear_unseeded_layers_differ():
    assert not np.array_equal(Linear(8, 8).weight.data, Linear(8, 8).weight.data)


@given(batch=st.lists(st.integers(1, 4), min_size=0, max_size=3), seed=st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_linear_forward_matches_numpy_any_leading_dims(batch, seed):
    layer = Linear(5, 3, seed=seed)
    x = np.random.default_rng(seed).normal(size=tuple(batch) + (5,)).astype(np.float32)
    y = layer(Tensor(x))
    assert isinstance(y, Tensor) and y.shape == tuple(batch) + (3,) and y.dtype == np.float32
    expected = x.astype(np.float64) @ layer.weight.data.astype(np.float64) + layer.bias.data
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


def test_linear_accepts_numpy_and_no_bias():
    layer = Linear(2, 2, bias=False, seed=0)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    np.testing.assert_allclose(layer(np.eye(2, dtype=np.float32)).data, layer.weight.data)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_linear_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="in_features"):
        Linear(bad, 3)


def test_linear_shape_error_names_expected_and_got():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\).*\(2, 5\)"):
        Linear(4, 3, seed=0)(Tensor(np.zeros((2, 5), dtype=np.float32)))


def test_linear_output_keeps_grad_graph_hook():
    """Linear is built from Tensor ops, so after module 05 the output is part of a graph."""
    autograd = pytest.importorskip("tinytorch.core.autograd", reason="module 05 (autograd) not exported yet")
    autograd.enable_autograd()
    layer = Linear(3, 2, seed=0)
    y = layer(Tensor(np.ones((4, 3), dtype=np.float32)))
    assert y.requires_grad, "the output of Linear must require grad after enable_autograd()"
    y.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, np.full((3, 2), 4.0))
    np.testing.assert_allclose(layer.bias.grad.data, np.full(2, 4.0))


# ----------------------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_rate_scale_and_mean(p):
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    y = Dropout(p, seed=1)(x).data
    assert y.dtype == np.float32
    assert abs(float((y == 0).mean()) - p) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.03


def test_dropout_seeded_reproducible_and_fresh_masks():
    x = Tensor(np.ones((10, 10), dtype=np.float32))
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)


def test_dropout_eval_and_edge_probabilities():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0)(x) is x
    np.testing.assert_array_equal(Dropout(1.0)(x).data, np.zeros((2, 3)))
    for bad in (-0.1, 1.01):
        with pytest.raises(ValueError, match="p must be in"):
            Dropout(bad)


# ----------------------------------------------------------------------------- Sequential
def test_sequential_mixes_modules_and_activations():
    net = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    h = np.tanh(x @ net[0].weight.data + net[0].bias.data)
    np.testing.assert_allclose(net(Tensor(x)).data, h @ net[2].weight.data + net[2].bias.data, rtol=1e-5, atol=1e-6)
    assert len(net) == 3 and len(net.parameters()) == 4
    assert "Tanh()" in repr(net) and "Linear(in_features=3, out_features=4, bias=True)" in repr(net)


def test_sequential_accepts_a_list_and_rejects_non_callables():
    assert len(Sequential([Linear(2, 2), ReLU()])) == 2
    with pytest.raises(TypeError, match="layer 1"):
        Sequential(Linear(2, 2), 3)


def test_empty_sequential_is_identity():
    x = Tensor([1.0, 2.0])
    assert Sequential()(x) is x
