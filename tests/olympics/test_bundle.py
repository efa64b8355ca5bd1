"""The submission bundle: packing every supported layer, the three weight encodings, and every
kind of bad input refused with a clear error. No server here."""
from __future__ import annotations

import numpy as np
import pytest

from olympics.helpers import bad_bundles, cli, linear_model
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT
from tito.olympics import bundle as B
from tito.olympics import evaluate as E

CHARS = [chr(c) for c in range(32, 127)] + ["\n"]


def every_layer_cnn() -> Sequential:
    """A small CNN using every layer type the bundle allows, with non-trivial batch-norm stats."""
    m = Sequential(Conv2d(1, 4, 3, padding=1, seed=0), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                   Conv2d(4, 6, (3, 2), stride=2, bias=False, seed=1), Tanh(), AvgPool2d(2), Flatten(),
                   Linear(6, 16, seed=2), GELU(), Dropout(0.3), Linear(16, 10, seed=3),
                   Sigmoid(), Softmax())
    bn = m.layers[1]
    bn.running_mean.data[...] = np.arange(4, dtype=np.float32) * 0.1
    bn.running_var.data[...] = 1.0 + np.arange(4, dtype=np.float32)
    bn.weight.data[...] = 0.5
    return m


def outputs(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def test_every_layer_round_trips_exactly(tmp_path):
    m = every_layer_cnn()
    x = np.random.default_rng(0).random((3, 1, 14, 14)).astype(np.float32)
    b = B.pack(m, tmp_path / "m.ttb", "vision", "ada", {"accuracy": 0.5}, input_shape=(1, 14, 14))
    assert b.architecture.output_shape == (10,)
    # the shapes worked out by arithmetic are those of the real model
    assert b.architecture.tensors == {k: v.shape for k, v in m.state_dict().items()}
    rebuilt = E.build_model(B.load(tmp_path / "m.ttb"))
    np.testing.assert_array_equal(outputs(rebuilt, x), outputs(m, x))
    assert B.load(tmp_path / "m.ttb").local == {"accuracy": 0.5}


def test_gpt_round_trips_exactly(tmp_path):
    g = GPT(len(CHARS), 16, 2, 2, 8, seed=3)
    B.pack(g, tmp_path / "g.ttb", "language", "bob", chars=CHARS)
    b = B.load(tmp_path / "g.ttb")
    assert b.architecture.tensors == {k: v.shape for k, v in g.state_dict().items()}
    idx = np.array([[5, 6, 7, 8]])
    np.testing.assert_array_equal(outputs(E.build_model(b), idx), outputs(g, idx))


def test_int8_and_sparse_encodings(tmp_path, ridge):
    W, bias = ridge
    W = W.copy()
    W[np.abs(W) < np.quantile(np.abs(W), 0.8)] = 0.0          # 80 % pruned
    m = linear_model(W, bias)
    sizes = {}
    for enc in B.ENCODINGS:
        b = B.pack(m, tmp_path / f"{enc}.ttb", "compression", "c", input_shape=(1, 28, 28), encoding=enc)
        sizes[enc] = b.size
        w = B.load(tmp_path / f"{enc}.ttb").state_dict()["layers.1.weight"]
        if enc.endswith("int8"):  # symmetric per-tensor: error at most half a step
            assert np.abs(w - W).max() <= np.abs(W).max() / 127 / 2 + 1e-7
        else:
            np.testing.assert_array_equal(w, W)
    assert sizes["sparse+int8"] < sizes["int8"] < sizes["dense"], sizes
    assert sizes["sparse"] < sizes["dense"], sizes
    # per-channel int8 along the output axis decodes too
    entry, arrs = B.encode_tensor("w", W, "int8", axis=1)
    assert arrs["w@scale"].shape == (10,)
    assert np.abs(B.decode_tensor("w", entry, arrs) - W).max() <= np.abs(W).max(axis=0).max() / 254 + 1e-7


def test_pack_takes_weights_quantized_by_the_learner(tmp_path, ridge):
    W, bias = ridge
    scale = np.float32(np.abs(W).max() / 127)
    q = np.round(W / scale).astype(np.int8)                   # "my own quantizer"
    mine = {"layers.1.weight": ({"encoding": "int8", "shape": [784, 10], "axis": None},
                                {"layers.1.weight@q": q, "layers.1.weight@scale": np.asarray(scale)})}
    b = B.pack(linear_model(W, bias), tmp_path / "q.ttb", "compression", "ada", input_shape=(1, 28, 28),
               encoded=mine)
    np.testing.assert_array_equal(b.state_dict()["layers.1.weight"], q.astype(np.float32) * scale)
    bad = {"layers.1.weight": (mine["layers.1.weight"][0], {"layers.1.weight@q": q})}    # no scale
    with pytest.raises(B.BundleError, match="needs an array 'layers.1.weight@scale'"):
        B.pack(linear_model(W, bias), tmp_path / "bad.ttb", "compression", "ada", input_shape=(1, 28, 28),
               encoded=bad)
    assert not (tmp_path / "bad.ttb").exists()                # nothing written that would be refused


def test_describe_refuses_an_unknown_layer():
    class Mine(Module):
        def forward(self, x):
            return x
    with pytest.raises(B.BundleError, match="Mine is not a layer the Olympics evaluator knows"):
        B.describe_model(Sequential(Flatten(), Mine()))


def test_architecture_errors_say_what_is_wrong():
    def seq(*layers, shape=(1, 28, 28)):
        return B.check_architecture({"type": "Sequential", "layers": list(layers)}, shape)
    with pytest.raises(B.BundleError, match="layer 1 \\(Linear\\): expects inputs of 10 features, gets shape \\[784\\]"):
        seq({"type": "Flatten"}, {"type": "Linear", "in_features": 10, "out_features": 2})
    with pytest.raises(B.BundleError, match="missing hyperparameter 'out_features'"):
        seq({"type": "Flatten"}, {"type": "Linear", "in_features": 784})
    with pytest.raises(B.BundleError, match="unknown hyperparameter"):
        seq({"type": "ReLU", "inplace": True})
    with pytest.raises(B.BundleError, match="kernel 15x15 larger than its 10x10 input"):
        seq({"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 15, "padding": 0},
            shape=(1, 10, 10))
    with pytest.raises(B.BundleError, match="divisible"):
        B.check_architecture({"type": "GPT", "vocab_size": 10, "block_size": 8, "n_layer": 1, "n_head": 3,
                              "n_embd": 8})


@pytest.fixture(scope="module")
def good(tmp_path_factory, ridge):
    path = tmp_path_factory.mktemp("good") / "good.ttb"
    B.pack(linear_model(*ridge), path, "vision", "ada", input_shape=(1, 28, 28))
    return path.read_bytes()


def test_bad_bundles_are_refused_with_a_clear_error(good):
    B.load_bytes(good)                                         # the base they are made from is fine
    for name, (make, fragment) in bad_bundles(good).items():
        with pytest.raises(B.BundleError) as e:
            B.load_bytes(make())
        assert fragment in str(e.value), f"{name}: {e.value}"


def test_an_oversized_file_is_refused_before_reading(tmp_path, good):
    path = tmp_path / "big.ttb"
    path.write_bytes(good + bytes(B.MAX_BUNDLE_BYTES))
    with pytest.raises(B.BundleError, match="more than the limit"):
        B.load(path)


def test_validate_and_pack_commands(tmp_path, good, ridge):
    (tmp_path / "ok.ttb").write_bytes(good)
    r = cli("validate", tmp_path / "ok.ttb")
    assert "valid" in r.stdout and "7,850 numbers in its tensors" in r.stdout
    (tmp_path / "bad.ttb").write_bytes(bad_bundles(good)["unknown layer type"][0]())
    r = cli("validate", tmp_path / "bad.ttb", check=False)
    assert r.returncode == 1 and "unknown layer type 'Lambda'" in r.stderr
    # pack from the learner's own file and saved weights
    np.savez(tmp_path / "w.npz", **linear_model(*ridge).state_dict())
    (tmp_path / "model.py").write_text(
        "from tinytorch.core.layers import Sequential, Linear\nfrom tinytorch.core.spatial import Flatten\n"
        "def make():\n    return Sequential(Flatten(), Linear(784, 10))\n")
    r = cli("pack", "--model", f"{tmp_path / 'model.py'}:make", "--weights", tmp_path / "w.npz",
            "--track", "compression", "--pseudonym", "ada", "--input-shape", "1,28,28", "--encoding", "int8",
            "--local", "accuracy=0.85", "-o", tmp_path / "packed.ttb")
    assert "int8" in r.stdout
    b = B.load(tmp_path / "packed.ttb")
    assert b.track == "compression" and b.local == {"accuracy": 0.85} and b.size < len(good) / 2


def test_make_eval_data_writes_disjoint_public_and_private_halves(tmp_path):
    r = cli("make-eval-data", tmp_path / "ev", "--vision", "tinydigits", "--limit", "60")
    assert "30 public + 30 private" in r.stdout
    with np.load(tmp_path / "ev" / "vision.npz", allow_pickle=False) as z:
        assert z["x_public"].shape == (30, 1, 28, 28) and z["x_public"].dtype == np.uint8
        pub = {a.tobytes() for a in z["x_public"]}
        assert not pub & {a.tobytes() for a in z["x_private"]}
    with np.load(tmp_path / "ev" / "language.npz", allow_pickle=False) as z:
        assert len(z["q_public"]) == 30 and not set(z["q_public"]) & set(z["q_private"])


def test_learner_commands_work_without_the_service_packages(tmp_path, good):
    """pack/validate/submit need NumPy only; serve says which extra is missing."""
    import subprocess
    import sys

    (tmp_path / "ok.ttb").write_bytes(good)
    hide = "import sys; [sys.modules.__setitem__(m, None) for m in ('sqlalchemy', 'fastapi', 'uvicorn', 'alembic')]; "

    def tito(*args):
        code = hide + f"sys.argv = ['tito', *{list(map(str, args))!r}]; from tito.cli import main; main()"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    r = tito("olympics", "validate", tmp_path / "ok.ttb")
    assert r.returncode == 0 and "valid" in r.stdout, r.stderr
    r = tito("olympics", "serve", "--no-worker")
    assert r.returncode == 2 and "needs the olympics extra" in r.stderr and "pip install" in r.stderr


def test_make_eval_data_from_a_text_takes_its_last_tenth(tmp_path):
    text = "".join(chr(97 + i % 26) for i in range(1000))
    (tmp_path / "t.txt").write_text(text)
    r = cli("make-eval-data", tmp_path / "ev", "--vision", "none", "--language", "shakespeare",
            "--shakespeare", tmp_path / "t.txt")
    assert "50 public + 50 private characters" in r.stdout
    with np.load(tmp_path / "ev" / "language.npz", allow_pickle=False) as z:
        assert str(z["text_public"]) + str(z["text_private"]) == text[900:]
