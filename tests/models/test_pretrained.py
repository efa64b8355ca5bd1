"""The pretrained reference checkpoints (tinytorch.models.pretrained).

Each card's number is re-measured here on the shipped weights: on a subset always (the card
records the subset's number too), and on the whole split where that is cheap (MNIST, the
Shakespeare validation windows) or when TINYTORCH_FULL_CARDS=1 (CIFAR-10's 10,000 test
images, TinyTalks' 293 questions). The evaluations are written here, independently of the
package's helpers, except TinyTalks, whose answers come from the milestone's own decoding.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.models import pretrained as P

FULL = os.environ.get("TINYTORCH_FULL_CARDS") == "1"
FILES = P.Path(P.__file__).parent / "files"


def _argmax_accuracy(model, x, y, batch=500):
    hits = 0
    with no_grad():
        for i in range(0, len(y), batch):
            hits += int((model(model.preprocess(x[i:i + batch])).data.argmax(1) == y[i:i + batch]).sum())
    return hits / len(y)


def _card_matches(got, card_value, n):
    # the same weights and preprocessing: equal up to one example that sits on a near-tie
    # and flips with the BLAS of another machine
    assert abs(got - card_value) <= 1.0 / n + 1e-12, (got, card_value, n)


@pytest.mark.parametrize("name", P.PRETRAINED)
def test_every_checkpoint_ships_loads_and_has_a_card(name):
    npz, meta = FILES / f"{name}.npz", FILES / f"{name}.json"
    assert npz.is_file() and meta.is_file(), f"{name}: missing {npz.name} or {meta.name}"
    assert npz.stat().st_size < 4_000_000, f"{name}.npz is {npz.stat().st_size:,} bytes: keep checkpoints small"
    with np.load(npz, allow_pickle=False) as z:       # no pickle anywhere
        assert all(z[k].dtype != object for k in z.files)
    model = P.load_pretrained(name)
    assert model.training is False and all(not getattr(m, "training", False) for m in _modules(model))
    card = model.card
    for field in P.CARD_FIELDS:
        assert card.get(field) not in (None, ""), f"{name}: card lacks {field}"
    assert card["name"] == name and card["command"].startswith("python milestones/")
    assert "--save" in card["command"], card["command"]
    assert isinstance(card["value"], float) and isinstance(card["subset"]["value"], float)
    assert callable(model.preprocess)
    doc = json.loads(meta.read_text())
    assert doc["parameters"] == sum(p.size for p in model.parameters())


def _modules(model):
    out = [model]
    for v in vars(model).values():
        for m in (v if isinstance(v, (list, tuple)) else [v]):
            if hasattr(m, "parameters") and hasattr(m, "training"):
                out += _modules(m)
    return out


def test_mnist_card(data_dir):
    from tinytorch.data.datasets import load_mnist
    model = P.load_pretrained("mnist_mlp")
    (_, _), (x, y) = load_mnist(root=data_dir)
    n = model.card["subset"]["n"]
    _card_matches(_argmax_accuracy(model, x[:n], y[:n]), model.card["subset"]["value"], n)
    _card_matches(_argmax_accuracy(model, x, y), model.card["value"], len(y))
    assert len(y) == 10_000 and model.card["value"] >= 0.97


def test_cifar10_card(cifar_root):
    from tinytorch.data.datasets import load_cifar10
    model = P.load_pretrained("cifar10_cnn")
    (_, _), (x, y) = load_cifar10(root=cifar_root)
    x = np.asarray(x).reshape(-1, 3, 32, 32)
    n = model.card["subset"]["n"]
    _card_matches(_argmax_accuracy(model, x[:n], y[:n]), model.card["subset"]["value"], n)
    if FULL:
        _card_matches(_argmax_accuracy(model, x, y), model.card["value"], len(y))


def _window_loss(model, ids, n_windows):
    T = model.block_size
    losses = []
    with no_grad():
        for w in range(0, n_windows, 64):
            ix = (np.arange(w, min(w + 64, n_windows)) * T)[:, None] + np.arange(T)   # (b, T)
            z = model(ids[ix]).data.astype(np.float64)                               # (b, T, V)
            z = z - z.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            losses.append(-np.take_along_axis(logp, ids[ix + 1][..., None], -1)[..., 0])
    return float(np.concatenate(losses).mean())


def test_shakespeare_card(data_dir):
    model = P.load_pretrained("shakespeare_gpt")
    text = (data_dir / "text" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    ids = np.asarray(model.preprocess(text)[0])
    val = ids[int(0.9 * len(ids)):]                     # the milestone's 90/10 split
    n = model.card["subset"]["n"]
    assert abs(_window_loss(model, val, n) - model.card["subset"]["value"]) < 1e-4
    full = (len(val) - 1) // model.block_size
    assert abs(_window_loss(model, val, full) - model.card["value"]) < 1e-4
    assert model.card["value"] < 2.2, "a trained model: nanoGPT's configuration reaches about 1.9"


def test_tinytalks_card(manifest):
    from tinytorch.data.datasets import check_tinytalks_answer, load_tinytalks
    model = P.load_pretrained("tinytalks_gpt")
    from tito.milestones import load_milestone
    milestone = load_milestone(5, manifest)
    q, a, _ = load_tinytalks(with_levels=True)[2]
    n = len(q) if FULL else model.card["subset"]["n"]
    answers = milestone.answer_questions(model, model.preprocess.tokenizer, [str(s) for s in q[:n]])
    got = float(np.mean([bool(check_tinytalks_answer(g, str(e))) for g, e in zip(answers, a[:n])]))
    _card_matches(got, model.card["value"] if FULL else model.card["subset"]["value"], n)


def test_preprocess_takes_raw_input_and_refuses_floats():
    model = P.load_pretrained("mnist_mlp")
    x = model.preprocess(np.zeros((2, 28, 28), np.uint8))
    assert x.shape == (2, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x.data, -0.1307 / 0.3081, rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        model.preprocess(np.zeros((2, 28, 28), np.float32))
    gpt = P.load_pretrained("shakespeare_gpt")
    ids = gpt.preprocess("To be")
    assert ids.dtype == np.int64 and ids.shape == (1, 5)
    assert gpt.preprocess.tokenizer.decode(ids[0]) == "To be"


def test_save_and_load_round_trip(tmp_path):
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.tensor import Tensor
    model = Sequential(Linear(4, 3, seed=0), ReLU(), Linear(3, 2, seed=1))
    spec = {"type": "image", "mean": [0.5], "std": [0.25], "flatten": True}
    card = {"dataset": "toy", "split": "none", "metric": "accuracy", "value": 0.5,
            "command": "python -c pass", "date": P.today()}
    path = P.save_pretrained(model, tmp_path / "toy", card, spec)
    assert path.endswith("toy.npz") and (tmp_path / "toy.json").is_file()
    back = P.load_pretrained(path)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    np.testing.assert_array_equal(back(x).data, model(x).data)
    assert back.card == card and back.training is False
    with pytest.raises(P.PretrainedError, match="lacks"):
        P.save_pretrained(model, tmp_path / "bad", {"dataset": "toy"}, spec)


def _tamper(tmp_path, name="mnist_mlp"):
    for ext in (".npz", ".json"):
        (tmp_path / f"x{ext}").write_bytes((FILES / f"{name}{ext}").read_bytes())
    return tmp_path / "x.npz", tmp_path / "x.json"


def test_hostile_checkpoints_are_refused(tmp_path):
    npz, meta = _tamper(tmp_path)
    doc = json.loads(meta.read_text())
    doc["architecture"]["layers"][0] = {"type": "os.system", "command": "echo hi"}
    meta.write_text(json.dumps(doc))
    with pytest.raises(P.PretrainedError, match="unknown type"):
        P.load_pretrained(npz)
    doc["architecture"]["layers"][0] = {"type": "Linear", "in_features": 784, "out_features": 256,
                                        "bias": True, "__class__": "x"}
    meta.write_text(json.dumps(doc))
    with pytest.raises(P.PretrainedError, match="unknown hyperparameters"):
        P.load_pretrained(npz)
    meta.write_text("{not json")
    with pytest.raises(P.PretrainedError, match="not valid JSON"):
        P.load_pretrained(npz)
    npz, meta = _tamper(tmp_path)
    with zipfile.ZipFile(npz, "a") as zf:                   # a pickled object array inside the .npz
        with zf.open("evil.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(P.PretrainedError):
        P.load_pretrained(npz)
    npz, meta = _tamper(tmp_path)
    doc = json.loads(meta.read_text())
    doc["architecture"]["layers"][0]["out_features"] = 255   # weights that do not fit
    meta.write_text(json.dumps(doc))
    with pytest.raises(P.PretrainedError, match="does not fit"):
        P.load_pretrained(npz)
    with pytest.raises(P.PretrainedError, match="unknown checkpoint"):
        P.load_pretrained("resnet50")
    (tmp_path / "lonely.npz").write_bytes((FILES / "mnist_mlp.npz").read_bytes())
    with pytest.raises(P.PretrainedError, match="missing"):
        P.load_pretrained(tmp_path / "lonely.npz")
