"""Module 15 (tinytorch.optimization.quantization): PyTorch's numbers (golden fixtures always, live
torch where installed), exact integer accumulation, the quantized layers against integer
references, hostile checkpoints, and the trained models (a few hundred test images here; the
full test sets in benchmarks/quantization.py)."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from opcheck import load_golden, torch_available
from quantization.quant_opcases import CONFIGS, SEEDS, inputs
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d, conv2d_loops
from tinytorch.core.tensor import Tensor
from tinytorch.models import pretrained as P
from tinytorch.optimization import quantization as Q

CASES = [(name, seed) for name in CONFIGS for seed in SEEDS]
CARD = {"dataset": "toy", "split": "none", "metric": "accuracy", "value": 0.5, "command": "test", "date": "today"}


@pytest.fixture(scope="module")
def golden():
    return load_golden("quant_observers")


def _check_against(ref, x, axis, symmetric, bits, label):
    q, s, z = Q.quantize_tensor(x, bits=bits, symmetric=symmetric, axis=axis)
    assert q.dtype == np.int8 and s.dtype == np.float32 and z.dtype == np.int32, label
    np.testing.assert_array_equal(s, ref["scale"], err_msg=f"{label}: scale")
    np.testing.assert_array_equal(z, ref["zero_point"], err_msg=f"{label}: zero_point")
    np.testing.assert_array_equal(q, ref["q"], err_msg=f"{label}: quantized integers")
    np.testing.assert_array_equal(Q.dequantize(q, s, z, axis=axis), ref["dequantized"], err_msg=f"{label}: dequantize")


@pytest.mark.parametrize("name,seed", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_matches_pytorch_golden(golden, name, seed):
    shape, axis, symmetric, bits = CONFIGS[name]
    key = f"{name}.{seed}"
    x = inputs(name, seed)
    np.testing.assert_array_equal(x, golden[key + ".x"], err_msg="the fixture's input is stale: run make_golden")
    ref = {k: golden[f"{key}.{k}"] for k in ("scale", "zero_point", "q", "dequantized")}
    _check_against(ref, x, axis, symmetric, bits, key)


@pytest.mark.skipif(not torch_available(), reason="torch not installed: the golden fixtures cover this")
def test_matches_live_pytorch_on_fresh_tensors():
    import warnings

    import torch
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    warnings.filterwarnings("ignore", category=UserWarning)
    rng = np.random.default_rng(2024)
    for trial in range(15):
        x = (rng.standard_normal((12, 21)) * rng.uniform(0.01, 5) + rng.uniform(-1, 1)).astype(np.float32)
        for symmetric in (True, False):
            for bits in (8, 6, 4):
                qmin, qmax = Q.qrange(bits)
                t = torch.from_numpy(x)
                scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
                obs = MinMaxObserver(dtype=torch.qint8, qscheme=scheme, quant_min=qmin, quant_max=qmax)
                obs(t)
                s, z = obs.calculate_qparams()
                q = torch.clamp(torch.quantize_per_tensor(t, float(s), int(z), torch.qint8).int_repr(), qmin, qmax)
                deq = torch._make_per_tensor_quantized_tensor(q, float(s), int(z)).dequantize()
                _check_against({"scale": s.numpy().reshape(()), "zero_point": z.numpy().astype(np.int32).reshape(()),
                                "q": q.numpy(), "dequantized": deq.numpy()}, x, None, symmetric, bits, f"tensor {trial}")
                scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
                obs = PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8, qscheme=scheme, quant_min=qmin,
                                               quant_max=qmax)
                obs(t)
                s, z = obs.calculate_qparams()
                q = torch.clamp(torch.quantize_per_channel(t, s, z, 1, torch.qint8).int_repr(), qmin, qmax)
                deq = torch._make_per_channel_quantized_tensor(q, s.to(torch.float64), z, 1).dequantize()
                _check_against({"scale": s.numpy(), "zero_point": z.numpy().astype(np.int32), "q": q.numpy(),
                                "dequantized": deq.numpy()}, x, 1, symmetric, bits, f"channel {trial}")


def test_bad_input_is_refused_clearly():
    x = np.ones((3, 4), np.float32)
    for bad, match in (((x, {"bits": 9}), "bits"), ((x, {"bits": 1}), "bits"), ((x, {"axis": 2}), "axis"),
                       ((x, {"method": "kl"}), "method"), ((np.array([1.0, np.nan]), {}), "NaN"),
                       ((np.zeros(0), {}), "empty"), ((x, {"method": "percentile", "percentile": 30}), "percentile")):
        with pytest.raises(ValueError, match=match):
            Q.quantize_tensor(bad[0], **bad[1])
    with pytest.raises(ValueError, match="Shape mismatch"):
        Q.int_matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(TypeError):
        Q.fold_batchnorm(Linear(2, 2))
    with pytest.raises(ValueError, match="calibration"):
        Q.quantize_model(Sequential(Linear(2, 2)), None)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        Q.quantize_model(Sequential(ReLU()), None, weight_only=True)
    layer = Q.QuantizedLinear.from_float(Linear(3, 2, seed=0), weight_only=True)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        layer(Tensor(np.ones((2, 4), np.float32)))
    with pytest.raises(ValueError, match="bits"):
        Q.QuantizedConv2d(1, 2, 3, bits=16)


def test_int_matmul_exact_at_the_float32_boundary():
    """Just below 2^24 float32 is used and exact; just above, float64; odd sums prove exactness."""
    K = 1024
    a = np.full((2, K), 255, dtype=np.int16)                       # row sum 261,120
    b = np.full((K, 3), 64, dtype=np.int8)
    b[0] = 63                                                      # an odd total: no rounding hides
    bound = Q.accumulation_bound(a, b)
    assert bound == min(255 * K * 64, 255 * (63 + 64 * (K - 1))) and bound <= Q.F32_EXACT
    got = Q.int_matmul(a, b)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.astype(np.int64), a.astype(np.int64) @ b.astype(np.int64))
    b2 = np.full((K, 3), 65, dtype=np.int8)                        # bound 16,972,800 > 2^24
    b2[0] = 64
    got = Q.int_matmul(a, b2)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got.astype(np.int64), a.astype(np.int64) @ b2.astype(np.int64))
    exact = a.astype(np.int64) @ b2.astype(np.int64)                # odd and above 2^24:
    naive = (a.astype(np.float32) @ b2.astype(np.float32)).astype(np.int64)
    assert exact[0, 0] % 2 == 1 and exact[0, 0] > 2 ** 24 and naive[0, 0] != exact[0, 0], \
        "float32 cannot even represent the true sum: that is why int_matmul switched to float64"


@pytest.mark.parametrize("stride,padding,kernel", [(1, 0, 3), (2, 1, 3), (1, 2, (3, 5)), (3, 1, 2)])
def test_quantized_conv_equals_integer_reference(stride, padding, kernel):
    rng = np.random.default_rng(stride * 10 + padding)
    conv = Conv2d(3, 5, kernel, stride=stride, padding=padding, seed=stride)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    s_x, z_x = Q.qparams_from_range(x.min(), x.max(), symmetric=False)
    for per_channel in (True, False):
        qc = Q.QuantizedConv2d.from_float(conv, input_qparams=(s_x, z_x), per_channel=per_channel)
        qx = Q.quantize_with(x, s_x, z_x).astype(np.float64) - float(z_x)
        acc = conv2d_loops(qx, qc.weight.data.astype(np.float64), stride=stride, padding=padding)
        scale = (s_x * qc.weight_scale.data).astype(np.float64)
        want = acc * (scale[None, :, None, None] if per_channel else scale) + conv.bias.data[None, :, None, None]
        got = qc(Tensor(x)).data
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_with_conv_bias_and_untouched_layers():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(2, 3, 3, bias=True, seed=0), BatchNorm2d(3), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(3, 2, seed=1))
    bn = model.layers[1]
    bn.weight.data[...] = [0.5, 2.0, -1.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3]
    bn.running_mean.data[...] = [0.2, -0.5, 1.0]
    bn.running_var.data[...] = [0.04, 1.5, 9.0]
    model.eval()
    folded = Q.fold_batchnorm(model)
    x = Tensor(rng.standard_normal((4, 2, 4, 4)).astype(np.float32))
    with no_grad():
        np.testing.assert_allclose(folded(x).data, model(x).data, rtol=1e-5, atol=1e-5)
    assert folded.layers[-1] is not model.layers[-1], "layers are copies"
    assert model.layers[1] is bn and len(model.layers) == 6


def test_calibration_uses_every_batch_and_restores_the_layers():
    mlp = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1))
    batches = [(Tensor(np.full((2, 3), v, np.float32)), None) for v in (-1.0, 0.5, 3.0)]   # (x, y) pairs
    q = Q.quantize_model(mlp, batches, method="minmax")
    s, z = Q.qparams_from_range(-1.0, 3.0, symmetric=False)
    np.testing.assert_array_equal(q.layers[0].input_scale.data, s)
    np.testing.assert_array_equal(q.layers[0].input_zero_point.data, z)
    assert "forward" not in vars(mlp.layers[0]), "calibration must not leave wrappers on the float model"
    for method in ("percentile", "mse"):
        qm = Q.quantize_model(mlp, [b[0] for b in batches], method=method)
        assert float(qm.layers[0].input_scale.data) <= float(s) + 1e-9, method


def _save_quantized_cnn(tmp_path, compress=False):
    rng = np.random.default_rng(1)
    cnn = Sequential(Conv2d(1, 3, 3, padding=1, bias=False, seed=0), BatchNorm2d(3), ReLU(), Flatten(),
                     Linear(3 * 6 * 6, 2, seed=1)).eval()
    q = Q.quantize_model(cnn, [Tensor(rng.standard_normal((8, 1, 6, 6)).astype(np.float32))])
    path = P.save_pretrained(q, tmp_path / "q.npz", CARD, {"type": "image", "mean": [0.5], "std": [0.2]},
                             compress=compress)
    return q, path


def test_quantized_checkpoint_spec_and_round_trip(tmp_path):
    q, path = _save_quantized_cnn(tmp_path, compress=True)
    doc = json.loads(open(path[:-4] + ".json").read())
    layers = doc["architecture"]["layers"]
    assert layers[0] == {"type": "QuantizedConv2d", "in_channels": 1, "out_channels": 3, "kernel_size": [3, 3],
                         "stride": 1, "padding": 1, "bias": True, "bits": 8, "per_channel": True,
                         "weight_only": False}
    assert layers[-1]["type"] == "QuantizedLinear" and layers[-1]["in_features"] == 108
    with zipfile.ZipFile(path) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(q.state_dict())
        assert {k: str(z[k].dtype) for k in z.files if k.startswith("layers.0.")} == {
            "layers.0.weight": "int8", "layers.0.weight_scale": "float32", "layers.0.bias": "float32",
            "layers.0.input_scale": "float32", "layers.0.input_zero_point": "int32"}
    back = P.load_pretrained(path)
    x = Tensor(np.random.default_rng(2).standard_normal((3, 1, 6, 6)).astype(np.float32))
    np.testing.assert_array_equal(back(x).data, q(x).data)


def test_hostile_quantized_checkpoints_are_refused(tmp_path):
    q, path = _save_quantized_cnn(tmp_path)
    meta = path[:-4] + ".json"
    state = dict(np.load(path))
    state["layers.0.weight"] = state["layers.0.weight"].astype(np.float32) * 1000   # float values into int8
    np.savez(path, **state)
    with pytest.raises(P.PretrainedError, match="int8"):
        P.load_pretrained(path)
    doc = json.loads(open(meta).read())
    for field, value in (("bits", 12), ("per_channel", "yes"), ("weight_only", 1)):
        bad = json.loads(json.dumps(doc))
        bad["architecture"]["layers"][0][field] = value
        with open(meta, "w") as f:
            json.dump(bad, f)
        with pytest.raises(P.PretrainedError):
            P.load_pretrained(path)


def test_deflate_bomb_is_refused(tmp_path, monkeypatch):
    q, path = _save_quantized_cnn(tmp_path, compress=True)
    monkeypatch.setattr(P, "_MAX_STATE", 1000)
    with pytest.raises(P.PretrainedError, match="expands"):
        P.load_pretrained(path)


def test_quantized_gpt_spec_is_checked(tmp_path):
    from tinytorch.models.transformer import GPT
    gpt = GPT(11, 8, 1, 2, 8, seed=0)
    q = Q.quantize_model(gpt, None, weight_only=True)
    path = P.save_pretrained(q, tmp_path / "g.npz", CARD, {"type": "text", "tokenizer": {
        "type": "CharTokenizer", "chars": list("abcdefghij"), "byte_fallback": False}})
    meta = path[:-4] + ".json"
    doc = json.loads(open(meta).read())
    assert doc["architecture"]["quantized"] == {"bits": 8, "per_channel": True, "weight_only": True}
    ids = np.zeros((1, 5), np.int64)
    with no_grad():
        np.testing.assert_array_equal(P.load_pretrained(path)(ids).data, q(ids).data)
    doc["architecture"]["quantized"] = {"bits": 8}
    with open(meta, "w") as f:
        json.dump(doc, f)
    with pytest.raises(P.PretrainedError, match="quantized"):
        P.load_pretrained(path)


@pytest.mark.parametrize("name", ["mnist_mlp", "cifar10_cnn"])
def test_saved_int8_model_is_four_times_smaller(tmp_path, name):
    """Sizes do not depend on the calibration data: random inputs suffice here."""
    model = P.load_pretrained(name)
    shape = (16, 28, 28) if name == "mnist_mlp" else (16, 3, 32, 32)
    x = model.preprocess(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    q = Q.quantize_model(model, [x])
    assert all(v.dtype in (np.int8, np.int32, np.float32) for v in q.state_dict().values())
    assert sum(v.size for k, v in q.state_dict().items() if v.dtype == np.int8) == \
        sum(p.size for n, p in model.named_parameters() if n.endswith("weight") and p.ndim > 1)
    ref = P.checkpoint_path(name).stat().st_size
    stored = os.path.getsize(P.save_pretrained(q, tmp_path / "s.npz", model.card, model.preprocess.spec))
    packed = os.path.getsize(P.save_pretrained(q, tmp_path / "z.npz", model.card, model.preprocess.spec,
                                               compress=True))
    assert ref / stored >= 3.75, (ref, stored)       # npz headers: 5 small arrays per quantized layer
    assert ref / packed >= 3.9, (ref, packed)


def test_mnist_int8_accuracy_on_the_first_test_images(data_dir):
    from tinytorch.data.datasets import load_mnist
    (xtr, _), (x, y) = load_mnist(root=data_dir)
    model = P.load_pretrained("mnist_mlp")
    q = Q.quantize_model(model, [model.preprocess(xtr[i:i + 128]) for i in range(0, 256, 128)])
    q.preprocess = model.preprocess
    n = 1000
    assert P.image_accuracy(q, x[:n], y[:n]) >= P.image_accuracy(model, x[:n], y[:n]) - 0.01


def test_cifar_int8_accuracy_on_the_first_test_images(cifar_root):
    from tinytorch.data.datasets import load_cifar10
    (xtr, _), (x, y) = load_cifar10(root=cifar_root)
    xtr, x = np.asarray(xtr).reshape(-1, 3, 32, 32), np.asarray(x).reshape(-1, 3, 32, 32)
    model = P.load_pretrained("cifar10_cnn")
    q = Q.quantize_model(model, [model.preprocess(xtr[i:i + 64]) for i in range(0, 256, 64)])
    q.preprocess = model.preprocess
    n = 300
    assert P.image_accuracy(q, x[:n], y[:n]) >= P.image_accuracy(model, x[:n], y[:n]) - 0.01


def test_shakespeare_weight_only_loss(data_dir):
    gpt = P.load_pretrained("shakespeare_gpt")
    ids = np.asarray(gpt.preprocess((data_dir / "text" / "tinyshakespeare.txt").read_text(encoding="utf-8"))[0])
    val = ids[int(0.9 * len(ids)):]
    q = Q.quantize_model(gpt, None, weight_only=True)
    assert P.window_loss(q, val, 40) - P.window_loss(gpt, val, 40) <= 0.02
