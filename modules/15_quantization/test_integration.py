"""Integration: module 15's quantization on the exported package: the trained milestone models
quantized, saved as INT8 through module 14's save_pretrained and loaded back by load_pretrained."""
import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.data.datasets import load_tinydigits
from tinytorch.models.pretrained import image_accuracy, load_pretrained, save_pretrained
from tinytorch.optimization.quantization import QuantizedConv2d, QuantizedLinear, fold_batchnorm, quantize_model


def test_mnist_mlp_int8_round_trip_keeps_accuracy(tmp_path):
    (train_x, _), (test_x, test_y) = load_tinydigits()
    mlp = load_pretrained("mnist_mlp")
    q = quantize_model(mlp, [mlp.preprocess(train_x[:256])])
    q.preprocess = mlp.preprocess
    path = save_pretrained(q, tmp_path / "mlp_int8.npz", mlp.card, mlp.preprocess.spec, compress=True)
    back = load_pretrained(path)
    assert all(isinstance(back.layers[i], QuantizedLinear) for i in (0, 2, 4))
    with np.load(path, allow_pickle=False) as z:
        assert z["layers.0.weight"].dtype == np.int8
    x, y = test_x[:300], test_y[:300]
    assert image_accuracy(back, x, y) >= image_accuracy(mlp, x, y) - 0.01


def test_cifar_cnn_folds_and_quantizes():
    cnn = load_pretrained("cifar10_cnn")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    x = cnn.preprocess(images)
    folded = fold_batchnorm(cnn)
    with no_grad():
        np.testing.assert_allclose(folded(x).data, cnn(x).data, rtol=1e-3, atol=1e-3)
    q = quantize_model(cnn, [x])
    assert sum(isinstance(m, QuantizedConv2d) for m in q.layers) == 5
    assert all(v.dtype == np.int8 for k, v in q.state_dict().items() if k.endswith(".weight"))
    assert isinstance(q(x), Tensor) and q(x).shape == (8, 10)


def test_gpt_weight_only_round_trip(tmp_path):
    gpt = load_pretrained("shakespeare_gpt")
    q = quantize_model(gpt, None, weight_only=True)
    ids = gpt.preprocess("ROMEO:\nWhat")
    with no_grad():
        a, b = gpt(ids).data, q(ids).data
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()
    path = save_pretrained(q, tmp_path / "gpt_int8.npz", gpt.card, gpt.preprocess.spec)
    back = load_pretrained(path)
    assert isinstance(back.lm_head, QuantizedLinear) and back.lm_head.weight.data.dtype == np.int8
    with no_grad():
        np.testing.assert_array_equal(back(ids).data, b)
