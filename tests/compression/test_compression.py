"""Module 16 against PyTorch's choices (golden fixtures from tests/compression/compression_opcases.py,
or torch itself where it is installed), and load_sparse against hostile files."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from opcheck import load_golden, torch_available
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.optimization.compression import (
    SparseFormatError,
    distillation_loss,
    global_unstructured_masks,
    l1_unstructured_mask,
    ln_structured_mask,
    load_sparse,
    magnitude_prune,
    save_sparse,
    structured_prune,
)

from .compression_opcases import ALPHA, AMOUNTS, GLOBAL_AMOUNT, STRUCTURED, T, _masks


@pytest.fixture(scope="module")
def ref():
    return _masks() if torch_available() else load_golden("compression_masks")


def test_unstructured_masks_match_torch(ref):
    for a in AMOUNTS:
        for name in ("lin", "conv"):
            np.testing.assert_array_equal(l1_unstructured_mask(ref[name], a), ref[f"l1.{name}.{a}"], err_msg=f"{name} {a}")
    masks = global_unstructured_masks({"lin": ref["lin"], "conv": ref["conv"]}, GLOBAL_AMOUNT)
    np.testing.assert_array_equal(masks["lin"], ref["global.lin"])
    np.testing.assert_array_equal(masks["conv"], ref["global.conv"])


def test_layer_masks_in_tinytorch_layout(ref):
    """A tinytorch Linear holds W as (in, out): its mask is the transpose of torch's."""
    model = Sequential(Linear(6, 8), ReLU(), Linear(8, 3))
    model.layers[0].weight.data[...] = ref["lin"].T
    masks = magnitude_prune(model, 0.5, scope="layer")
    np.testing.assert_array_equal(masks["layers.0.weight"], ref["l1.lin.0.5"].T)
    assert (model.layers[0].weight.data == 0).sum() == 24


def test_structured_masks_match_torch(ref):
    for a, n, dim in STRUCTURED:
        np.testing.assert_array_equal(ln_structured_mask(ref["conv"], a, n=n, dim=dim), ref[f"ln.{a}.{n}.{dim}"],
                                      err_msg=f"amount {a} n {n} dim {dim}")


def test_distillation_loss_matches_torch(ref):
    s = Tensor(ref["student"], requires_grad=True)
    loss = distillation_loss(s, ref["teacher"], ref["labels"], temperature=T, alpha=ALPHA)
    np.testing.assert_allclose(loss.data, ref["kd.loss"], rtol=1e-5)
    loss.backward()
    np.testing.assert_allclose(s.grad, ref["kd.grad"], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, ref["teacher"], ref["labels"], temperature=0.0)
    with pytest.raises(ValueError, match="logits"):
        distillation_loss(s, ref["teacher"][:2], ref["labels"])


def test_structured_mlp_with_dropout_equals_zeroed_units():
    model = Sequential(Linear(5, 8, seed=0), ReLU(), Dropout(0.3), Linear(8, 6, seed=1), ReLU(), Linear(6, 2, seed=2))
    model.eval()
    small = structured_prune(model, 0.5, norm=2)
    assert [l.weight.shape for l in small.layers if isinstance(l, Linear)] == [(5, 4), (4, 3), (3, 2)]
    zeroed = Sequential(*[l for l in model.layers])
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    keep0 = ln_structured_mask(model.layers[0].weight.data, 0.5, n=2, dim=1)[0]
    keep3 = ln_structured_mask(model.layers[3].weight.data, 0.5, n=2, dim=1)[0]
    h = np.maximum(x.data @ model.layers[0].weight.data + model.layers[0].bias.data, 0) * keep0
    h = np.maximum(h @ model.layers[3].weight.data + model.layers[3].bias.data, 0) * keep3
    want = h @ model.layers[5].weight.data + model.layers[5].bias.data
    np.testing.assert_allclose(small(x).data, want, rtol=1e-5, atol=1e-6)
    assert zeroed.layers[0].weight.shape == (5, 8), "structured_prune must not change its input"


def test_bad_arguments_are_refused():
    model = Sequential(Linear(4, 4), ReLU(), Linear(4, 2))
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(model, 0.5, scope="row")
    with pytest.raises(ValueError, match="amount"):
        magnitude_prune(model, -0.1)
    with pytest.raises(ValueError, match="amount"):
        structured_prune(model, 1.0)
    with pytest.raises(ValueError, match="values"):
        save_sparse(model, "never_written.npz", values="int4")
    assert not os.path.exists("never_written.npz")

    class Odd:
        def __call__(self, x):
            return x
    with pytest.raises(ValueError, match="Odd"):
        structured_prune(Sequential(Linear(4, 4), Odd(), Linear(4, 2)), 0.5)


def _good_file(tmp_path):
    model = Sequential(Linear(16, 8, seed=0), ReLU(), Linear(8, 4, seed=1))
    magnitude_prune(model, 0.8)
    path = save_sparse(model, tmp_path / "m.npz")
    with np.load(path) as z:
        return model, {k: z[k] for k in z.files}


def _write(tmp_path, arrays, name="bad.npz", allow_pickle=False):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _meta(arrays):
    return json.loads(arrays["__model__"].tobytes())


def _with_meta(arrays, meta):
    out = dict(arrays)
    out["__model__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return out


def test_sparse_round_trip_and_hostile_files(tmp_path):
    model, arrays = _good_file(tmp_path)
    back = load_sparse(tmp_path / "m.npz")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)

    bad = {}
    bad["no description"] = {k: v for k, v in arrays.items() if k != "__model__"}
    bad["not JSON"] = {**arrays, "__model__": np.frombuffer(b"\xff{", dtype=np.uint8)}
    m = _meta(arrays)
    bad["wrong format"] = _with_meta(arrays, {**m, "format": "other"})
    m2 = json.loads(json.dumps(m))
    m2["architecture"]["layers"][1]["type"] = "os.system"
    bad["unknown layer"] = _with_meta(arrays, m2)
    bad["values one short"] = {**arrays, "layers.0.weight@values": arrays["layers.0.weight@values"][:-1]}
    bad["mask too short"] = {**arrays, "layers.0.weight@mask": arrays["layers.0.weight@mask"][:-1]}
    bad["missing array"] = {k: v for k, v in arrays.items() if k != "layers.2.weight@mask"}
    bad["float64 values"] = {**arrays, "layers.0.weight@values": arrays["layers.0.weight@values"].astype(np.float64)}
    m3 = json.loads(json.dumps(m))
    m3["tensors"]["layers.0.bias"]["encoding"] = "pickle"
    bad["unknown encoding"] = _with_meta(arrays, m3)
    m4 = json.loads(json.dumps(m))
    m4["tensors"]["layers.0.bias"]["shape"] = [9]
    bad["shape lies"] = _with_meta(arrays, m4)
    m5 = json.loads(json.dumps(m))
    del m5["tensors"]["layers.0.bias"]
    bad["tensor list differs"] = _with_meta(arrays, m5)
    m6 = json.loads(json.dumps(m))
    m6["tensors"]["layers.0.weight"]["shape"] = [1 << 30, 1 << 30]
    bad["huge shape"] = _with_meta(arrays, m6)
    bad["bad preprocess"] = _with_meta(arrays, {**m, "preprocess": {"type": "image", "mean": "x"}})
    bad["int8 values without a scale"] = {**arrays, "layers.0.weight@values":
                                          arrays["layers.0.weight@values"].astype(np.int8)}
    for what, arr in bad.items():
        with pytest.raises(SparseFormatError):
            load_sparse(_write(tmp_path, arr))
        assert what

    path = tmp_path / "pickled.npz"
    np.savez(path, __model__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SparseFormatError):
        load_sparse(path)
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(SparseFormatError):
        load_sparse(tmp_path / "garbage.npz")
    with pytest.raises(SparseFormatError):
        load_sparse(tmp_path / "missing.npz")


def test_int8_sparse_values_come_from_module_15(tmp_path):
    """INT8 values: module 15's symmetric per-tensor quantize_tensor, a scalar float32 scale, each
    value within half a step of the float one; the file is smaller than with float16 values."""
    from tinytorch.optimization.quantization import quantize_tensor
    model = Sequential(Linear(64, 96, seed=0), ReLU(), Linear(96, 10, seed=1))
    magnitude_prune(model, 0.9, scope="global")
    path = save_sparse(model, tmp_path / "i8.npz", values="int8")
    with np.load(path) as z:
        v, scale = z["layers.0.weight@values"], z["layers.0.weight@scale"]
    assert v.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == ()
    w = model.layers[0].weight.data
    q, s, zero = quantize_tensor(w[w != 0], bits=8, symmetric=True)
    np.testing.assert_array_equal(v, q)
    np.testing.assert_allclose(scale, s)
    back = load_sparse(path)
    for name, layer in (("layers.0.weight", back.layers[0]), ("layers.2.weight", back.layers[2])):
        orig = dict(model.state_dict())[name]
        step = float(np.abs(orig).max()) / 127
        assert np.abs(layer.weight.data - orig).max() <= step / 2 + 1e-7, name
    assert os.path.getsize(path) < os.path.getsize(save_sparse(model, tmp_path / "f16.npz", values="float16"))
