"""Module 15's QuantizedLinear / QuantizedConv2d in a bundle: what the whitelist takes, every
malformed variant refused with a message that says what is wrong, and (with module 15 in the
package) the evaluator rebuilding the quantized model exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from olympics.helpers import bundle_bytes
from tito.olympics import bundle as B

SPEC = {"type": "Sequential", "layers": [
    {"type": "QuantizedConv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": 1,
     "bias": True, "bits": 8, "per_channel": True, "weight_only": False},
    {"type": "ReLU"}, {"type": "Flatten"},
    {"type": "QuantizedLinear", "in_features": 32, "out_features": 3, "bias": False, "bits": 8,
     "per_channel": False, "weight_only": True}]}


def _good():
    rng = np.random.default_rng(0)
    arrays = {"layers.0.weight@q": rng.integers(-127, 128, (2, 1, 3, 3)).astype(np.int8),
              "layers.0.weight@scale": np.array([0.01, 0.02], np.float32),
              "layers.0.bias": np.array([0.1, -0.1], np.float32),
              "layers.0.input_scale": np.array(0.05, np.float32),
              "layers.0.input_zero_point": np.array(-3.0, np.float32),
              "layers.3.weight@q": rng.integers(-127, 128, (32, 3)).astype(np.int8),
              "layers.3.weight@scale": np.array(0.004, np.float32)}
    tensors = {"layers.0.weight": {"encoding": "int8", "shape": [2, 1, 3, 3], "axis": 0},
               "layers.0.bias": {"encoding": "dense", "shape": [2]},
               "layers.0.input_scale": {"encoding": "dense", "shape": []},
               "layers.0.input_zero_point": {"encoding": "dense", "shape": []},
               "layers.3.weight": {"encoding": "int8", "shape": [32, 3], "axis": None}}
    doc = {"format": B.FORMAT, "version": B.VERSION, "track": "compression", "pseudonym": "ada",
           "model": SPEC, "input": {"shape": [1, 4, 4]}, "tensors": tensors}
    return doc, arrays


def _bytes(doc, arrays):
    return bundle_bytes(doc, arrays)


def test_a_quantized_bundle_is_accepted_and_keeps_its_int8_weights():
    b = B.load_bytes(_bytes(*_good()))
    arch = b.architecture
    assert arch.int8_weights == {"layers.0.weight": {"axis": 0, "bits": 8, "scale": "layers.0.weight_scale"},
                                 "layers.3.weight": {"axis": None, "bits": 8, "scale": "layers.3.weight_scale"}}
    assert arch.output_shape == (3,)
    state = b.state_dict()
    assert state["layers.0.weight"].dtype == np.int8 and state["layers.3.weight"].shape == (32, 3)
    np.testing.assert_array_equal(state["layers.0.weight_scale"], np.array([0.01, 0.02], np.float32))
    assert set(state) == {"layers.0.weight", "layers.0.weight_scale", "layers.0.bias", "layers.0.input_scale",
                          "layers.0.input_zero_point", "layers.3.weight", "layers.3.weight_scale"}
    assert "2 int8" in B.summary(b)


def _variant(change):
    doc, arrays = _good()
    doc = json.loads(json.dumps(doc))
    change(doc, arrays)
    return _bytes(doc, arrays)


BAD = {
    "negative scale": (lambda d, a: a.__setitem__("layers.0.weight@scale", np.array([0.01, -0.02], np.float32)),
                       "must be positive"),
    "zero scale": (lambda d, a: a.__setitem__("layers.3.weight@scale", np.array(0.0, np.float32)), "positive"),
    "scale of the wrong shape": (lambda d, a: a.__setitem__("layers.0.weight@scale", np.ones(3, np.float32)),
                                 "float32 of shape [2]"),
    "float weight for a quantized layer": (
        lambda d, a: (a.pop("layers.3.weight@q"), a.pop("layers.3.weight@scale"),
                      a.__setitem__("layers.3.weight", np.zeros((32, 3), np.float32)),
                      d["tensors"].__setitem__("layers.3.weight", {"encoding": "dense", "shape": [32, 3]})),
        "must be encoding int8"),
    "int16 values": (lambda d, a: a.__setitem__("layers.0.weight@q", np.zeros((2, 1, 3, 3), np.int16)),
                     "dtype"),
    "float32 values as q": (lambda d, a: a.__setitem__("layers.0.weight@q", np.zeros((2, 1, 3, 3), np.float32)),
                            "must be int8"),
    "weights of the wrong shape": (lambda d, a: a.__setitem__("layers.3.weight@q", np.zeros((3, 32), np.int8)),
                                   "int8 of shape [32, 3]"),
    "per-channel layer stored per tensor": (
        lambda d, a: (d["tensors"]["layers.0.weight"].__setitem__("axis", None),
                      a.__setitem__("layers.0.weight@scale", np.array(0.01, np.float32))), "axis 0"),
    "a zero point on symmetric weights": (lambda d, a: a.__setitem__("layers.3.weight@zero", np.array(1, np.int8)),
                                          "symmetric"),
    "values outside 4 bits": (lambda d, a: d["model"]["layers"][3].__setitem__("bits", 4), "outside -8..7"),
    "9 bits": (lambda d, a: d["model"]["layers"][3].__setitem__("bits", 9), "bits must be an integer in 2..8"),
    "missing input scale": (lambda d, a: (a.pop("layers.0.input_scale"), d["tensors"].pop("layers.0.input_scale")),
                            "missing"),
    "negative input scale": (lambda d, a: a.__setitem__("layers.0.input_scale", np.array(-1.0, np.float32)),
                             "positive scale"),
    "fractional zero point": (lambda d, a: a.__setitem__("layers.0.input_zero_point", np.array(0.5, np.float32)),
                              "integer in -128..127"),
    "zero point out of range": (lambda d, a: a.__setitem__("layers.0.input_zero_point", np.array(300, np.float32)),
                                "integer in -128..127"),
    "NaN scale": (lambda d, a: a.__setitem__("layers.3.weight@scale", np.array(np.nan, np.float32)), "NaN"),
    "unknown hyperparameter": (lambda d, a: d["model"]["layers"][0].__setitem__("zero_point", 0), "zero_point"),
    "weight_only as a number": (lambda d, a: d["model"]["layers"][3].__setitem__("weight_only", 1), "true or false"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_quantized_bundles_are_refused(case):
    change, fragment = BAD[case]
    with pytest.raises(B.BundleError) as e:
        B.load_bytes(_variant(change))
    assert fragment in str(e.value), f"{case}: {e.value}"


def test_the_evaluator_rebuilds_a_module_15_model_exactly(tmp_path):
    quant = pytest.importorskip("tinytorch.optimization.quantization", reason="module 15 is not in this package")
    from tinytorch.core.activations import ReLU
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
    from tinytorch.core.tensor import Tensor
    from tinytorch.olympics.submission import pack_submission
    from tito.olympics.evaluate import build_model

    np.random.seed(0)
    model = Sequential(Conv2d(3, 4, 3, padding=1, bias=False), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                       Flatten(), Linear(64, 5))
    model.eval()
    x = np.random.default_rng(1).normal(size=(16, 3, 8, 8)).astype(np.float32)
    for kw in ({}, {"weight_only": True}, {"per_channel": False}):
        qmodel = quant.quantize_model(model, [Tensor(x[:8]), Tensor(x[8:])], **kw)
        path = tmp_path / "q.ttb"
        pack_submission(qmodel, path, "compression", "ada", input_shape=(3, 8, 8))
        b = B.load(path)
        assert len(b.architecture.int8_weights) == 2, kw
        rebuilt = build_model(b)
        with no_grad():
            np.testing.assert_array_equal(rebuilt(Tensor(x)).data, qmodel(Tensor(x)).data, err_msg=str(kw))


def test_a_weight_only_int8_gpt_round_trips_and_a_float_one_in_its_place_is_refused(tmp_path):
    quant = pytest.importorskip("tinytorch.optimization.quantization", reason="module 15 is not in this package")
    from tinytorch.core.autograd import no_grad
    from tinytorch.models.transformer import GPT
    from tinytorch.olympics.submission import pack_submission
    from tito.olympics.evaluate import build_model

    chars = [chr(i) for i in range(4)] + list("abcdefgh")
    g = GPT(len(chars), 16, 2, 2, 16, seed=1)
    qg = quant.quantize_model(g, None, weight_only=True)
    pack_submission(qg, tmp_path / "q.ttb", "language", "ada", chars=chars)
    b = B.load(tmp_path / "q.ttb")
    assert b.architecture.spec["quantized"] == {"bits": 8, "per_channel": True, "weight_only": True}
    assert len(b.architecture.int8_weights) == 2 * 6 + 1                  # six Linears per block + lm_head
    idx = np.array([[4, 5, 6, 7, 8]])
    with no_grad():
        np.testing.assert_array_equal(build_model(b)(idx).data, qg(idx).data)
    # the float GPT's tensors under a quantized spec: refused, the message names the tensor
    doc, arrays = _parts(tmp_path, g, chars)
    doc["model"]["quantized"] = {"bits": 8, "per_channel": True, "weight_only": True}
    with pytest.raises(B.BundleError, match="blocks.0.attn.q_proj.weight of a quantized layer must be encoding int8"):
        B.load_bytes(_bytes(doc, arrays))
    doc["model"]["quantized"] = {"bits": 8, "per_channel": True, "weight_only": True, "zero": 1}
    with pytest.raises(B.BundleError, match="unknown hyperparameter"):
        B.load_bytes(_bytes(doc, arrays))


def _parts(tmp_path, model, chars):
    from olympics.helpers import parts
    B.pack(model, tmp_path / "f.ttb", "language", "bob", chars=chars)
    return parts((tmp_path / "f.ttb").read_bytes())
