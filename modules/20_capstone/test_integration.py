"""Integration: module 20's packer on the exported package writes bundles that the Olympics
validator (tito/olympics/bundle.py, the judge, which never imports tinytorch) accepts, and the
evaluator rebuilds the same model from them."""
import json

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.models.pretrained import checkpoint_path, load_pretrained
from tinytorch.olympics import submission as S

bundle = pytest.importorskip("tito.olympics.bundle")


def test_format_constants_agree_with_the_validator():
    assert (S.FORMAT, S.VERSION, S.TRACKS) == (bundle.FORMAT, bundle.VERSION, bundle.TRACKS)
    assert S.MAX_BUNDLE_BYTES == bundle.MAX_BUNDLE_BYTES and set(S.ARRAY_DTYPES) == set(bundle.ARRAY_DTYPES)


def test_pretrained_cnn_bundle_is_accepted_and_evaluates_the_same(tmp_path):
    from tito.olympics.evaluate import build_model
    cnn = load_pretrained("cifar10_cnn")
    cnn.layers[-1].weight.data[np.abs(cnn.layers[-1].weight.data) < 0.05] = 0.0   # some zeros: sparse
    pre = json.loads(checkpoint_path("cifar10_cnn").with_suffix(".json").read_text())["preprocess"]
    out = S.pack_submission(cnn, tmp_path / "c.ttb", "compression", "ada", local={"accuracy": 0.74},
                            input_shape=(3, 32, 32), mean=pre["mean"], std=pre["std"], sparse_at=0.3)
    b = bundle.load(tmp_path / "c.ttb")
    assert b.size == out["bytes"] and b.track == "compression" and b.local == {"accuracy": 0.74}
    assert b.meta["tensors"][f"layers.{len(cnn.layers) - 1}.weight"]["encoding"] == "sparse"
    server_model = build_model(b)
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    with no_grad():
        np.testing.assert_allclose(server_model(cnn.preprocess(x)).data, cnn(cnn.preprocess(x)).data,
                                   rtol=1e-5, atol=1e-5)
        back, _ = S.load_submission(tmp_path / "c.ttb")
        np.testing.assert_allclose(back(cnn.preprocess(x)).data, cnn(cnn.preprocess(x)).data, rtol=1e-6, atol=1e-6)


def test_pretrained_gpt_bundle_is_accepted(tmp_path):
    gpt = load_pretrained("tinytalks_gpt")
    S.pack_submission(gpt, tmp_path / "g.ttb", "language", "bob", chars=S.tokenizer_chars(gpt.preprocess.tokenizer))
    b = bundle.load(tmp_path / "g.ttb")
    assert b.architecture.spec["vocab_size"] == len(b.meta["tokenizer"]["chars"]) == gpt.tok_emb.weight.shape[0]
    stoi = {c: i for i, c in enumerate(b.meta["tokenizer"]["chars"])}
    assert [stoi[c] for c in "\nQ: "] == list(gpt.preprocess("\nQ: ")[0]), "the server spells prompts the same"


def test_int8_entries_from_encode_tensor_are_accepted(tmp_path):
    q = np.random.default_rng(0).integers(-127, 128, (10, 64)).astype(np.int8)       # Linear weight (in, out)
    entry, arrays = S.encode_tensor("w", (q, np.full(64, 0.01, np.float32), np.zeros(64, np.int32)), "int8", axis=1)
    back = bundle.decode_tensor("w", entry, arrays)
    np.testing.assert_allclose(back, S.decode_tensor("w", entry, arrays))
    np.testing.assert_allclose(back, q * np.float32(0.01), rtol=1e-6)


def test_refused_input_writes_nothing(tmp_path):
    gpt = load_pretrained("tinytalks_gpt")
    with pytest.raises(ValueError, match="chars"):
        S.pack_submission(gpt, tmp_path / "x.ttb", "language", "bob")
    with pytest.raises(ValueError, match="track"):
        S.pack_submission(gpt, tmp_path / "x.ttb", "poetry", "bob", chars=list("ab"))
    assert not list(tmp_path.iterdir())
