# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 20: Capstone: AI Olympics
#
# You have built a framework, trained a CNN that recognises CIFAR-10 images and a GPT that
# answers questions, and then learned to measure (14), shrink (15, 16), cache (17), speed up
# (18) and benchmark (19) them. The capstone puts it together the way a production team ships
# a model: start from the trained models, find out where their time and bytes go, make
# variants with your own tier-3 code, compare the variants with numbers that survive a noisy
# machine, pick the one that wins each track, and hand it over in a format that someone else
# can run *without trusting you*. That format is the Olympics bundle: a model as data (an
# architecture from a whitelist, arrays read without pickle), which a leaderboard server your
# instructor runs re-measures on images you never see. You write the packer; `tito olympics
# validate` is the judge.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                        you build now                      this unlocks
#   ------------                        -------------                      ------------
#   14 Profiler, load_pretrained   -->  encode_tensor: dense, int8,   -->  milestone 6: the
#   15 quantize_model (INT8)       -->    sparse arrays                     MLPerf-style report
#   16 magnitude_prune, sparsity   -->  pack_submission: a model as  -->  a leaderboard entry:
#   17 KV cache: fast generation   -->    a bundle (JSON + .npz)           tito olympics submit
#   18 fast kernels under 09's     -->  load_submission: round trip
#      layers                           measure + choose_submission:
#   19 compare, single_stream      -->    the winner of each track
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp olympics.submission
#| export
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor

# The bundle format, as tito/olympics/bundle.py (the validator) defines it.
FORMAT = "tinytorch-olympics"
VERSION = 1
TRACKS = ("vision", "language", "speed", "compression")
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
ARRAY_DTYPES = ("float32", "float16", "int8", "uint8")

# %% [markdown]
# ## 1. Your tier-3 code, or a clear message
#
# The capstone uses what you built in modules 14-19. If one of them is not complete in your
# package yet, the cell that needs it should say so, not fail with a puzzling
# `No module named 'tinytorch.optimization'`. `tier3` (provided) imports names from a module of
# your package and turns a missing module into an `ImportError` that names the lesson to
# complete; the cells below catch it, print it, and go on without that variant.

# %% nbgrader={"grade": false, "grade_id": "tier3", "locked": true, "schema_version": 3, "solution": false}
#| export
def tier3(module: str, *names, lesson: str):
    """``names`` from ``module`` of this tinytorch package (one value, a tuple, or the module
    itself when no names are given).

    Raises ImportError naming ``lesson`` (e.g. "15 quantization") when the module, or a name in
    it, is not there yet."""
    import importlib
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if not (e.name and (module == e.name or module.startswith(e.name + "."))):
            raise                                      # a bug inside the module: show it as it is
        raise ImportError(f"{module} is built in module {lesson}, which is not in this tinytorch package "
                          f"yet: complete module {lesson.split()[0]} first "
                          f"(`tito module complete {lesson.split()[0]}`)", name=module) from None
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise ImportError(f"{module} (module {lesson}) defines no {missing}: restore them and complete "
                          f"module {lesson.split()[0]} again", name=module)
    values = tuple(getattr(mod, n) for n in names)
    return mod if not names else values[0] if len(values) == 1 else values


# %% [markdown]
# ## 2. Start from the trained models, and profile them
#
# Module 14's `load_pretrained` gives the models milestones 4 and 5 trained, with their
# cards (what they scored, on which data, with which command). Module 14's `Profiler` shows
# where one forward pass of the CNN spends its time: this is where an optimization can pay
# (Amdahl: speeding up a part that takes p of the time by s gives 1 / ((1 - p) + p / s)).

# %%
from tinytorch.models.pretrained import load_pretrained
from tinytorch.profiling.profiler import Profiler

cnn = load_pretrained("cifar10_cnn")
gpt = load_pretrained("tinytalks_gpt")
print(f"CNN: {sum(p.size for p in cnn.parameters()):,} parameters, card: {cnn.card['metric']} "
      f"{cnn.card['value']} on {cnn.card['split']}")
print(f"GPT: {sum(p.size for p in gpt.parameters()):,} parameters, card: {gpt.card['metric']} "
      f"{gpt.card['value']:.3f} on {gpt.card['split']}")

# CIFAR-10 test images when this machine has them ($TINYTORCH_DATA), else random images: the
# time of a forward pass does not depend on the pixels, but accuracy needs the real ones.
try:
    from tinytorch.data.datasets import DatasetError, load_cifar10
    (_, _), (x_test, y_test) = load_cifar10()
    x_test, y_test = x_test[:500], y_test[:500]
    print(f"CIFAR-10 found: {len(y_test)} test images for the accuracy column")
except (ImportError, DatasetError) as e:
    x_test = np.random.default_rng(0).integers(0, 256, (500, 3, 32, 32), dtype=np.uint8)
    y_test = None
    print(f"no CIFAR-10 here ({type(e).__name__}): timings on random images, accuracy not measured")

prof = Profiler(cnn)
with no_grad():
    prof.run(lambda: cnn(cnn.preprocess(x_test[:8])), warmup=1, repeats=3)
print(prof.report(top=6))

# %% [markdown]
# ## 3. Variants, made with your own tier-3 code
#
# Each variant is a model with the same forward interface (uint8 images in through
# `preprocess`, logits out):
#
# ```
#   FP32         the milestone-4 model as trained                       the reference
#   INT8         module 15: quantize_model (BatchNorm folded first)     ~4x fewer weight bytes
#   pruned 50%   module 16: magnitude_prune on a copy                   half the weights are 0
#   (every variant runs module 18's kernels: module 09's layers call them once 18 is complete)
# ```
#
# A variant whose module is not in your package yet is skipped, with the message `tier3` gives.

# %%
import copy

variants = {"FP32": cnn}
try:
    quantize_model = tier3("tinytorch.optimization.quantization", "quantize_model", lesson="15 quantization")
    calib = [cnn.preprocess(x_test[i:i + 50]) for i in range(0, 200, 50)]      # 4 x (50, 3, 32, 32)
    int8 = quantize_model(cnn, calib)              # folds BatchNorm into the convolutions first
    int8.preprocess = cnn.preprocess
    variants["INT8"] = int8
except ImportError as e:
    print(f"INT8 skipped: {e}")
try:
    magnitude_prune = tier3("tinytorch.optimization.compression", "magnitude_prune", lesson="16 compression")
    pruned = copy.deepcopy(cnn)
    magnitude_prune(pruned, 0.5, scope="global")
    variants["pruned 50%"] = pruned
except ImportError as e:
    print(f"pruned skipped: {e}")
try:
    tier3("tinytorch.optimization.acceleration", lesson="18 acceleration")
    print("module 18 is in this package: module 09's layers run its kernels in every variant")
except ImportError as e:
    print(f"module 18: {e}")
print("variants:", list(variants))

# %% [markdown]
# ## 4. Measuring a variant: accuracy, latency, bytes
#
# Three numbers decide the tracks:
#
# ```
#   accuracy      share of test images right (module 14's image_accuracy)     vision, and the gate
#   latency p90   module 19's single_stream: one image per query, after       speed
#                 warm-up; 90% of the queries were faster than this
#   bytes         the size of the packed bundle on disk (section 6)           compression
# ```
#
# p90, not the mean: one query in ten is slower than p90, and users notice the slow ones.
# `measure` (you write it) returns the first two for one variant.

# %% nbgrader={"grade": false, "grade_id": "measure", "locked": false, "schema_version": 3, "solution": true}
#| export
def measure(model, images, labels=None, queries: int = 64) -> dict:
    """{"accuracy": float or None, "p50_ms", "p90_ms", "queries"} of ``model`` on uint8 ``images``.

    Accuracy (module 14's image_accuracy) only when ``labels`` are given. Latency: module 19's
    single_stream over one image per query (``model.preprocess`` included), cycling through the
    images, at least ``queries`` queries.
    HINT: a counter in a dict lets the query function step through the images;
          result = single_stream(one_query, min_queries=queries); result.p50 is in seconds.
    """
    from tinytorch.benchmarking.benchmark import single_stream
    from tinytorch.models.pretrained import image_accuracy
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"measure expects uint8 images (N, C, H, W) with N >= 1, got {images.dtype} "
                         f"{images.shape}")
    ### BEGIN SOLUTION
    acc = None if labels is None else float(image_accuracy(model, images, labels))
    state = {"i": 0}

    def one_query():
        i = state["i"] % len(images)
        state["i"] += 1
        with no_grad():
            return model(model.preprocess(images[i:i + 1]))         # (1, classes)
    r = single_stream(one_query, min_queries=queries, warmup=2)
    return {"accuracy": acc, "p50_ms": r.p50 * 1e3, "p90_ms": r.p90 * 1e3, "queries": len(r.latencies)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-measure", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _tiny_cnn(seed=0):
    """A small Sequential CNN for 3x8x8 images, with the image preprocess of a checkpoint."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
    from tinytorch.models.pretrained import make_preprocess
    np.random.seed(seed)
    m = Sequential(Conv2d(3, 4, 3, padding=1, bias=False), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                   Flatten(), Linear(64, 5))
    m.eval()
    m.preprocess = make_preprocess({"type": "image", "mean": [0.5] * 3, "std": [0.25] * 3})
    return m


def test_unit_measure():
    """measure() counts the right answers and times one image per query."""
    m = _tiny_cnn()
    x = np.random.default_rng(0).integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    with no_grad():
        pred = m(m.preprocess(x)).data.argmax(axis=1)
    labels = pred.copy()
    labels[:5] = (labels[:5] + 1) % 5                               # 5 of 20 wrong: 75%
    r = measure(m, x, labels, queries=10)
    assert abs(r["accuracy"] - 0.75) < 1e-9, r
    assert r["queries"] >= 10 and 0 < r["p50_ms"] <= r["p90_ms"], r
    assert measure(m, x, None, queries=10)["accuracy"] is None
    calls = []
    m2 = _tiny_cnn()
    m2.preprocess = lambda imgs, f=m2.preprocess: calls.append(len(imgs)) or f(imgs)
    measure(m2, x, None, queries=10)
    assert calls and set(calls) == {1}, f"one image per query, got batches of {sorted(set(calls))}"
    ### BEGIN HIDDEN TESTS
    try:
        measure(m, x.astype(np.float32))
    except ValueError:
        pass
    else:
        raise AssertionError("float images must be refused")
    ### END HIDDEN TESTS


test_unit_measure()

# %% [markdown]
# Every variant, on the same images. The absolute times depend on this machine and what else
# runs on it; the ratios between variants measured side by side are what carries over.

# %%
results = {}
for name, model in variants.items():
    results[name] = measure(model, x_test, y_test, queries=32)
    r = results[name]
    acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
    print(f"{name:<11} accuracy {acc:>6}  p50 {r['p50_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms")

# %% [markdown]
# ## 5. Is a variant really faster? Module 19's compare
#
# Two single-stream runs one after the other can differ by 20% on a busy laptop. `compare`
# runs the two interleaved (A B, B A, ...) and reports the ratio with its 95% interval and a
# rank test. Here: the KV cache of module 17 against milestone 5's plain `generate`, on the
# trained GPT, and every CNN variant against FP32.

# %%
from tinytorch.benchmarking.benchmark import compare
from tinytorch.models.transformer import generate

prompt = gpt.preprocess("\nQ: What color is the sky?\nA: ")                    # (1, P)
n_new = 24
same = np.array_equal(generate(gpt, prompt, n_new, temperature=0),
                      gpt.generate(prompt, n_new, temperature=0, use_cache=True))
kv = compare(lambda: generate(gpt, prompt, n_new, temperature=0),
             lambda: gpt.generate(prompt, n_new, temperature=0, use_cache=True),
             names=("generate", "KV cache"), rounds=11, inner=1, loops=1, timer="thread")
print(f"GPT, {n_new} new tokens: {kv!r}; same tokens: {same}")
one = {name: (lambda m=m: m(m.preprocess(x_test[:1]))) for name, m in variants.items()}
with no_grad():
    for name in list(variants)[1:]:
        print(f"CNN, one image: {compare(one['FP32'], one[name], names=('FP32', name), rounds=11)!r}")

# %% [markdown]
# ## 6. The bundle: a model as data
#
# A leaderboard must run thirty students' models without running thirty students' code. So
# a submission is data only, one zip file with two members:
#
# ```
#   ada.ttb (zip)
#   |-- bundle.json    {"format": "tinytorch-olympics", "version": 1, "track": "vision",
#   |                   "pseudonym": "ada", "model": {"type": "Sequential", "layers": [...]},
#   |                   "input": {"shape": [3, 32, 32], "mean": [...], "std": [...]},
#   |                   "tensors": {"layers.0.weight": {"encoding": "dense", "shape": [32, 3, 3, 3]}, ...},
#   |                   "local": {"accuracy": 0.74, "latency_p90_ms": 3.1}}
#   `-- weights.npz    the arrays, loaded with allow_pickle=False
# ```
#
# The server rebuilds the model from *its own* layers, by the whitelist of layer types in the
# architecture, and loads the arrays into it. Each state-dict tensor has one encoding:
#
# ```
#   dense    NAME            float32, the tensor's shape
#   int8     NAME@q          int8, the tensor's shape           value = (q - zero) * scale
#            NAME@scale      float32, () or (shape[axis],)      per tensor or per channel
#            NAME@zero       int8, like scale (optional: absent means 0)
#   sparse   NAME@mask       uint8: np.packbits(flat != 0), one bit per element
#            NAME@values     the non-zero values in C order
# ```
#
# Worked numbers, one 3x3 conv of 64 -> 64 channels (36,864 weights): dense 147,456 bytes;
# int8 36,864 + 64 x 4 (per-channel scales) = 37,120 bytes, 3.97x smaller; sparse at 50%:
# 4,608 bytes of mask + 18,432 x 4 of values = 78,336 bytes, 1.88x smaller (a mask costs 1/32
# of the dense size, so sparse storage pays once more than about 3% of the weights are zero).
#
# `encode_tensor` (you write it) makes the entry and the arrays of one tensor. The int8 numbers
# come from module 15's `quantize_tensor`: `(q, scale, zero_point)` are given, not recomputed
# here (one quantizer in the course).

# %% nbgrader={"grade": false, "grade_id": "encode", "locked": false, "schema_version": 3, "solution": true}
#| export
def encode_tensor(name: str, value, encoding: str = "dense", axis=None) -> tuple:
    """``(entry, arrays)`` of one tensor in the bundle format.

    dense: value is a float array -> {name: float32 array}.
    sparse: value is a float array -> {name@mask: np.packbits(flat != 0), name@values: float32
            non-zeros in C order}.
    int8: value is ``(q, scale, zero_point)`` as module 15's quantize_tensor returns them (q int8,
          scale float32 scalar or 1-D along ``axis``) -> {name@q, name@scale float32, and
          name@zero int8 when any zero point is not 0}.
    entry = {"encoding": ..., "shape": [...]} (+ "axis" for int8).
    HINT: np.packbits(flat != 0); zero points must fit in int8 (-128..127).
    """
    if encoding not in ("dense", "sparse", "int8"):
        raise ValueError(f"unknown encoding {encoding!r}: expected 'dense', 'sparse' or 'int8'")
    ### BEGIN SOLUTION
    if encoding != "int8":
        a = np.asarray(value, dtype=np.float32)
        entry = dict(encoding=encoding, shape=list(a.shape))
        if encoding == "sparse":
            flat = a.reshape(-1)                                      # (n,)
            nonzero = flat != 0
            return entry, {name + "@mask": np.packbits(nonzero), name + "@values": flat[nonzero]}
        arrays = {name: a}
        return entry, arrays
    q, scale, zero = value
    q = np.asarray(q)
    if q.dtype != np.int8:
        raise ValueError(f"{name}: int8 encoding needs q of dtype int8, got {q.dtype}")
    scale = np.asarray(scale, dtype=np.float32)
    zero = np.asarray(zero)
    want = () if axis is None else (q.shape[axis],)
    if scale.shape != want or not (scale > 0).all():
        raise ValueError(f"{name}: scale must be positive of shape {want}, got shape {scale.shape}")
    if zero.shape != want and zero.size != 1:
        raise ValueError(f"{name}: zero point must have shape {want}, got {zero.shape}")
    if (zero < -128).any() or (zero > 127).any():
        raise ValueError(f"{name}: zero points must fit in int8 (-128..127)")
    arrays = {name + "@q": q, name + "@scale": scale}
    if np.any(zero != 0):
        arrays[name + "@zero"] = np.broadcast_to(zero, want).astype(np.int8)
    return {"encoding": "int8", "shape": list(q.shape), "axis": axis}, arrays
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-encode", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def _decode(name, entry, arrays):
    """What the server does with an entry: the float32 tensor (the format's definition)."""
    shape = tuple(entry["shape"])
    if entry["encoding"] == "dense":
        return arrays[name].astype(np.float32)
    if entry["encoding"] == "int8":
        scale = arrays[name + "@scale"]
        zero = arrays.get(name + "@zero", np.zeros_like(scale, dtype=np.int8)).astype(np.float32)
        if entry["axis"] is not None:
            b = [1] * len(shape)
            b[entry["axis"]] = shape[entry["axis"]]
            scale, zero = scale.reshape(b), zero.reshape(b)
        return (arrays[name + "@q"].astype(np.float32) - zero) * scale
    n = math.prod(shape)
    out = np.zeros(n, dtype=np.float32)
    out[np.unpackbits(arrays[name + "@mask"])[:n].astype(bool)] = arrays[name + "@values"]
    return out.reshape(shape)


def test_unit_encode_tensor():
    """Dense, sparse and int8 entries decode to the tensor; sizes and dtypes as the format says."""
    w = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    entry, arrs = encode_tensor("fc.weight", w)
    assert entry == {"encoding": "dense", "shape": [6, 5]} and set(arrs) == {"fc.weight"}
    assert arrs["fc.weight"].dtype == np.float32
    w[np.abs(w) < 0.6] = 0.0                                          # about half zeros, both signs kept
    entry, arrs = encode_tensor("fc.weight", w, "sparse")
    assert set(arrs) == {"fc.weight@mask", "fc.weight@values"}, set(arrs)
    assert arrs["fc.weight@mask"].dtype == np.uint8 and arrs["fc.weight@mask"].shape == (4,)
    assert arrs["fc.weight@values"].shape == ((w != 0).sum(),)
    np.testing.assert_array_equal(_decode("fc.weight", entry, arrs), w)
    q = np.array([[-127, 0, 5], [3, 127, -2]], dtype=np.int8)
    scale = np.array([0.5, 0.25], dtype=np.float32)
    entry, arrs = encode_tensor("c.weight", (q, scale, np.zeros(2, np.int32)), "int8", axis=0)
    assert entry == {"encoding": "int8", "shape": [2, 3], "axis": 0}, entry
    assert set(arrs) == {"c.weight@q", "c.weight@scale"}, "a zero point of 0 is left out"
    np.testing.assert_allclose(_decode("c.weight", entry, arrs), q * scale[:, None])
    entry, arrs = encode_tensor("c.weight", (q, np.float32(0.1), np.int32(3)), "int8")
    assert arrs["c.weight@zero"].dtype == np.int8 and arrs["c.weight@zero"].shape == ()
    np.testing.assert_allclose(_decode("c.weight", entry, arrs), (q.astype(np.float32) - 3) * 0.1, rtol=1e-6)
    for bad in ((q.astype(np.int32), scale, 0), (q, -scale, 0), (q, scale, np.array([300, 0]))):
        try:
            encode_tensor("c.weight", bad, "int8", axis=0)
        except ValueError:
            continue
        raise AssertionError(f"int8 input {bad!r} must be refused")
    ### BEGIN HIDDEN TESTS
    entry, arrs = encode_tensor("z", np.zeros((3, 3), np.float32), "sparse")
    assert arrs["z@values"].shape == (0,) and _decode("z", entry, arrs).shape == (3, 3)
    ### END HIDDEN TESTS


test_unit_encode_tensor()

# %% [markdown]
# ### The architecture, as data
#
# Module 14's `describe_model` already writes a Sequential or a GPT as JSON for checkpoints.
# The bundle uses the same description, less what only training needs (BatchNorm's
# `momentum`: the server never trains). Every tensor's encoding then follows a simple rule:
#
# ```
#   int8 arrays of a module-15 layer             int8 (the layer's q, scale, zero point)
#   a float matrix with >= sparse_at zeros       sparse (lossless: the values are kept exactly);
#     (default 10%: the mask costs 1/32 of the dense bytes, so sparse pays past ~3% zeros)
#   everything else (biases, norms, dense)       dense float32
# ```

# %% nbgrader={"grade": false, "grade_id": "describe", "locked": true, "schema_version": 3, "solution": false}
#| export
TRAINING_ONLY = {"BatchNorm2d": ("momentum",)}     # hyperparameters a bundle does not carry


def describe_architecture(model) -> dict:
    """The bundle's ``model`` entry: module 14's describe_model without training-only fields."""
    from tinytorch.models.pretrained import describe_model
    spec = describe_model(model)
    for layer in spec.get("layers", []):
        for key in TRAINING_ONLY.get(layer["type"], ()):
            layer.pop(key, None)
    return spec


def tokenizer_chars(tokenizer) -> list:
    """One character per token id of a CharTokenizer without byte fallback: ids 0-3 are the
    special tokens, written as the control characters chr(0)..chr(3) (text never holds them)."""
    from tinytorch.text.tokenization import N_SPECIAL
    if getattr(tokenizer, "byte_fallback", False):
        raise ValueError("a bundle's tokenizer is one character per id: byte fallback cannot be described")
    chars = [chr(i) for i in range(N_SPECIAL)] + list(tokenizer.chars)
    if len(set(chars)) != len(chars):
        raise ValueError("the tokenizer's characters collide with the special ids' placeholders")
    return chars


def write_bundle(path, doc: dict, arrays: dict) -> int:
    """Write bundle.json and weights.npz (compressed, stored as is in the zip) to ``path``
    atomically (a temporary name, then os.replace); returns the bundle's bytes. A bundle over
    MAX_BUNDLE_BYTES is refused before anything is written."""
    weights = io.BytesIO()
    np.savez_compressed(weights, **arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle.json", json.dumps(doc, indent=1, sort_keys=True, allow_nan=False))
        zf.writestr(zipfile.ZipInfo("weights.npz", (1980, 1, 1, 0, 0, 0)), weights.getvalue(),
                    compress_type=zipfile.ZIP_STORED)            # already compressed
    data = buf.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        raise ValueError(f"the bundle would be {len(data):,} bytes, more than the limit {MAX_BUNDLE_BYTES:,}")
    path = Path(os.fspath(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


def read_bundle(path) -> tuple:
    """(bundle.json as a dict, the arrays of weights.npz) of the bundle at ``path``, read with
    allow_pickle=False; a zip with other members is refused (ValueError)."""
    with zipfile.ZipFile(os.fspath(path)) as zf:
        if sorted(zf.namelist()) != ["bundle.json", "weights.npz"]:
            raise ValueError(f"{path}: a bundle holds exactly bundle.json and weights.npz, found {zf.namelist()}")
        doc = json.loads(zf.read("bundle.json").decode("utf-8"))
        with np.load(io.BytesIO(zf.read("weights.npz")), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return doc, arrays


def quantized_tensors(model) -> dict:
    """state-dict name -> (entry, arrays) for the int8 weights of module 15's quantized layers,
    wherever they sit (a Sequential's layers, a GPT's blocks): ``NAME.weight`` as the int8
    encoding with the layer's ``NAME.weight_scale`` as its scale, per output channel when the
    scale is a vector (axis 1 of a Linear's (in, out) weight, axis 0 of a conv's (O, C, kh, kw));
    ``NAME.weight_scale`` -> None (it travels inside NAME.weight@scale). Empty without them."""
    state = model.state_dict()
    out = {}
    for key, scale in state.items():
        if not key.endswith(".weight_scale"):
            continue
        name = key[: -len("_scale")]                                  # NAME.weight
        q = state[name]
        axis = None if np.ndim(scale) == 0 else (1 if q.ndim == 2 else 0)
        out[name] = encode_tensor(name, (q, scale, 0), "int8", axis=axis)
        out[key] = None
    return out


# %% [markdown]
# ### Packing
#
# `pack_submission` (you write it) describes the model and encodes every tensor; the provided
# `write_bundle` writes the file. Three rules make it a good citizen: refuse what the server
# would refuse before writing anything (a bad track or pseudonym, a bundle over the size
# limit), write the file atomically (a temporary name, then `os.replace`: a crash never leaves
# half a bundle under the real name), and store `weights.npz` as it is inside the zip (it is
# compressed already).

# %% nbgrader={"grade": false, "grade_id": "pack", "locked": false, "schema_version": 3, "solution": true}
#| export
def pack_submission(model, path, track: str, pseudonym: str, *, local: dict | None = None,
                    input_shape=None, mean=None, std=None, chars=None, sparse_at: float = 0.1) -> dict:
    """Write ``model`` as an Olympics bundle at ``path``; returns {"path", "bytes", "encodings"}.

    A Sequential needs ``input_shape`` per example (e.g. (3, 32, 32)) and optionally the
    per-channel ``mean``/``std`` of images in 0..1; a GPT needs ``chars`` (tokenizer_chars).
    ``local``: your own measurements (finite numbers), shown as yours and never ranked.
    Float matrices (ndim >= 2) with at least ``sparse_at`` zeros are stored sparse.
    HINT: doc = {"format", "version", "track", "pseudonym", "model", "tensors", "local"} (+
          "input" or "tokenizer"); one (entry, arrays) per state-dict tensor; then
          write_bundle(path, doc, arrays) (provided) writes the zip and returns its size.
    """
    import re
    if track not in TRACKS:
        raise ValueError(f"track must be one of {list(TRACKS)}, got {track!r}")
    if not isinstance(pseudonym, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", pseudonym):
        raise ValueError(f"pseudonym {pseudonym!r}: 1-32 letters, digits, '_', '.', '-', starting "
                         f"with a letter or digit")
    local = dict(local or {})
    for k, v in local.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", k) or isinstance(v, bool) or \
                not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"local: {k!r}: {v!r}; keys like 'accuracy', values finite numbers")
    ### BEGIN SOLUTION
    spec = describe_architecture(model)
    doc = dict(format=FORMAT, version=VERSION, track=track, pseudonym=pseudonym, model=spec,
               tensors={}, local={k: float(v) for k, v in local.items()})
    if spec["type"] == "GPT":
        if not chars:
            raise ValueError("a GPT needs chars, one character per token id (tokenizer_chars)")
        doc["tokenizer"] = dict(type="chars", chars=[str(c) for c in chars])
    elif input_shape is None:
        raise ValueError("a Sequential model needs input_shape, e.g. (3, 32, 32)")
    else:
        image = {"shape": list(map(int, input_shape))}
        for key, v in (("mean", mean), ("std", std)):
            if v is not None:
                image[key] = [float(x) for x in v]
        doc["input"] = image
    special = quantized_tensors(model)
    state = model.state_dict()
    tensors, arrays = doc["tensors"], {}
    for name in state:
        value = state[name]
        if name in special:
            if special[name] is None:                                 # stored inside another tensor
                continue
            entry, arrs = special[name]
        elif value.ndim >= 2 and np.mean(value == 0) >= sparse_at:
            entry, arrs = encode_tensor(name, value, "sparse")
        else:
            entry, arrs = encode_tensor(name, value, "dense")
        tensors[name] = entry
        arrays |= arrs
    size = write_bundle(path, doc, arrays)
    encodings = {}
    for entry in tensors.values():
        encodings[entry["encoding"]] = encodings.get(entry["encoding"], 0) + 1
    return {"path": str(path), "bytes": size, "encodings": encodings}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-pack", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def _read_bundle(path):
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        doc = json.loads(zf.read("bundle.json"))
        with np.load(io.BytesIO(zf.read("weights.npz")), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return names, doc, arrays


def test_unit_pack_submission():
    """The bundle holds exactly bundle.json and weights.npz, every tensor, the input, the
    metadata; sparse where the zeros are; bad input refused before anything is written."""
    import tempfile
    m = _tiny_cnn()
    m.layers[-1].weight.data[:40] = 0.0                              # 40 of its 64 rows: 62.5% zeros
    with tempfile.TemporaryDirectory() as d:
        p = Path(d, "ada.ttb")
        out = pack_submission(m, p, "vision", "ada", local={"accuracy": 0.5}, input_shape=(3, 8, 8),
                              mean=[0.5] * 3, std=[0.25] * 3)
        assert out["bytes"] == p.stat().st_size and out["path"] == str(p), out
        names, doc, arrays = _read_bundle(p)
        assert names == ["bundle.json", "weights.npz"], names
        assert (doc["format"], doc["version"], doc["track"], doc["pseudonym"]) == (FORMAT, VERSION, "vision", "ada")
        assert doc["input"] == {"shape": [3, 8, 8], "mean": [0.5] * 3, "std": [0.25] * 3}, doc["input"]
        assert doc["local"] == {"accuracy": 0.5}
        assert [layer["type"] for layer in doc["model"]["layers"]][:2] == ["Conv2d", "BatchNorm2d"]
        assert "momentum" not in doc["model"]["layers"][1], "training-only fields stay out"
        state = m.state_dict()
        assert set(doc["tensors"]) == set(state), sorted(set(doc["tensors"]) ^ set(state))
        assert doc["tensors"]["layers.5.weight"]["encoding"] == "sparse"
        assert doc["tensors"]["layers.0.weight"] == {"encoding": "dense", "shape": [4, 3, 3, 3]}
        for name, entry in doc["tensors"].items():
            np.testing.assert_array_equal(_decode(name, entry, arrays), state[name], err_msg=name)
        assert out["encodings"] == {"dense": len(state) - 1, "sparse": 1}, out
        for kwargs in ({"track": "fastest"}, {"pseudonym": "../etc"}, {"pseudonym": "a b"},
                       {"local": {"accuracy": float("nan")}}, {"input_shape": None}):
            args = dict(track="vision", pseudonym="bob", input_shape=(3, 8, 8))
            args.update(kwargs)
            q = Path(d, "bad.ttb")
            try:
                pack_submission(m, q, **args)
            except ValueError:
                assert not q.exists(), f"{kwargs}: refused, but a file was written"
                continue
            raise AssertionError(f"{kwargs} must be refused")
    ### BEGIN HIDDEN TESTS
    from tinytorch.models.transformer import GPT
    with tempfile.TemporaryDirectory() as d:
        g = GPT(6, 8, 1, 2, 8, seed=0)
        pack_submission(g, Path(d, "g.ttb"), "language", "gpt1", chars=list("\x00\x01\x02\x03ab"))
        _, doc, _ = _read_bundle(Path(d, "g.ttb"))
        assert doc["tokenizer"] == {"type": "chars", "chars": list("\x00\x01\x02\x03ab")}
        assert "input" not in doc
    ### END HIDDEN TESTS


test_unit_pack_submission()

# %% [markdown]
# ### Reading it back
#
# Before you upload, check that the bundle gives *your* model back. `load_submission` (you
# write it) does what the server does, with module 14's `build_model` (the one model builder of
# the course): read the JSON, load the arrays with `allow_pickle=False`, decode each tensor,
# build the architecture, load the state dict. (The server also checks every limit first:
# `tito olympics validate BUNDLE` runs exactly its checks.)

# %% nbgrader={"grade": false, "grade_id": "load", "locked": false, "schema_version": 3, "solution": true}
#| export
def decode_tensor(name: str, entry: dict, arrays: dict) -> np.ndarray:
    """One tensor of a bundle as float32, from its entry and the arrays (the format's rules)."""
    shape = tuple(entry["shape"])
    if entry["encoding"] == "dense":
        return arrays[name].astype(np.float32)
    if entry["encoding"] == "int8":
        scale = arrays[name + "@scale"].astype(np.float32)
        zero = arrays.get(name + "@zero", np.zeros(scale.shape, np.int8)).astype(np.float32)
        if entry.get("axis") is not None:
            b = [1] * len(shape)
            b[entry["axis"]] = shape[entry["axis"]]
            scale, zero = scale.reshape(b), zero.reshape(b)
        return ((arrays[name + "@q"].astype(np.float32) - zero) * scale).astype(np.float32)
    if entry["encoding"] == "sparse":
        n = math.prod(shape)
        out = np.zeros(n, dtype=np.float32)
        out[np.unpackbits(arrays[name + "@mask"])[:n].astype(bool)] = arrays[name + "@values"]
        return out.reshape(shape)
    raise ValueError(f"{name}: unknown encoding {entry['encoding']!r}")


def load_submission(path):
    """(model, doc): the bundle at ``path`` rebuilt with module 14's build_model, eval mode.

    HINT: doc, arrays = read_bundle(path); check the format; build_model(doc["model"]);
          load_state_dict({name: decode_tensor(name, entry, arrays) for the tensors}).
    """
    from tinytorch.models.pretrained import build_model
    ### BEGIN SOLUTION
    doc, arrays = read_bundle(path)
    if (doc.get("format"), doc.get("version")) != (FORMAT, VERSION):
        raise ValueError(f"{path}: not a {FORMAT} bundle of version {VERSION}")
    model = build_model(doc["model"])
    model.load_state_dict({name: decode_tensor(name, entry, arrays) for name, entry in doc["tensors"].items()})
    model.eval()
    return model, doc
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-load", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_load_submission():
    """A packed model comes back with the same outputs; a file that is not a bundle is refused."""
    import tempfile
    m = _tiny_cnn(seed=1)
    m.layers[1].running_mean.data[:] = [0.1, -0.2, 0.3, 0.0]         # buffers travel too
    x = np.random.default_rng(1).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        pack_submission(m, Path(d, "a.ttb"), "speed", "ada", input_shape=(3, 8, 8))
        back, doc = load_submission(Path(d, "a.ttb"))
        assert type(back).__name__ == "Sequential" and doc["track"] == "speed"
        with no_grad():
            np.testing.assert_allclose(back(m.preprocess(x)).data, m(m.preprocess(x)).data, rtol=1e-6, atol=1e-6)
        Path(d, "b.ttb").write_bytes(Path(d, "a.ttb").read_bytes())
        with zipfile.ZipFile(Path(d, "b.ttb"), "a") as zf:                # a good bundle + a script
            zf.writestr("run_me.py", "print('hi')")
        try:
            load_submission(Path(d, "b.ttb"))
        except ValueError:
            pass
        else:
            raise AssertionError("a zip with other members must be refused")
    ### BEGIN HIDDEN TESTS
    e = {"encoding": "int8", "shape": [2], "axis": None}
    np.testing.assert_allclose(decode_tensor("t", e, {"t@q": np.array([2, -4], np.int8),
                                                      "t@scale": np.array(0.5, np.float32)}), [1.0, -2.0])
    ### END HIDDEN TESTS


test_unit_load_submission()

# %% [markdown]
# ## 7. Choosing what to submit
#
# Each track ranks one number, and two of them are gated on accuracy (a model that answers
# at random is very fast and very small):
#
# ```
#   vision       highest accuracy
#   speed        lowest p90 latency     among variants with accuracy >= floor
#   compression  fewest bundle bytes    among variants with accuracy >= floor
# ```
#
# Worked example, floor 0.70: FP32 (74.0%, 3.1 ms, 650 kB), INT8 (73.6%, 3.4 ms, 170 kB),
# pruned 90% (41%, 2.9 ms, 90 kB): vision FP32, speed FP32 (the pruned model is faster but
# fails the gate), compression INT8. Variants without an accuracy cannot pass a gate.

# %% nbgrader={"grade": false, "grade_id": "choose", "locked": false, "schema_version": 3, "solution": true}
#| export
def choose_submission(rows: dict, track: str, accuracy_floor: float = 0.5):
    """The name of the best variant for ``track``, or None when none qualifies.

    ``rows``: name -> {"accuracy": float or None, "p90_ms": float, "bytes": int}.
    vision: highest accuracy; speed: lowest p90_ms; compression: fewest bytes; speed and
    compression only among variants with accuracy >= accuracy_floor. Ties: the first name.
    """
    if track not in ("vision", "speed", "compression"):
        raise ValueError(f"choose_submission ranks the vision, speed and compression tracks, not {track!r}")
    ### BEGIN SOLUTION
    scored = [(n, r) for n, r in rows.items() if r.get("accuracy") is not None]
    if track == "vision":
        return max(scored, key=lambda nr: nr[1]["accuracy"], default=(None,))[0]
    key = "p90_ms" if track == "speed" else "bytes"
    eligible = [(n, r) for n, r in scored if r["accuracy"] >= accuracy_floor]
    return min(eligible, key=lambda nr: nr[1][key], default=(None,))[0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-choose", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_choose_submission():
    """The worked example: each track's winner, the gate, and no winner without accuracy."""
    rows = {"FP32": {"accuracy": 0.740, "p90_ms": 3.1, "bytes": 650_000},
            "INT8": {"accuracy": 0.736, "p90_ms": 3.4, "bytes": 170_000},
            "pruned 90%": {"accuracy": 0.41, "p90_ms": 2.9, "bytes": 90_000}}
    assert choose_submission(rows, "vision", 0.7) == "FP32"
    assert choose_submission(rows, "speed", 0.7) == "FP32", "the pruned model fails the gate"
    assert choose_submission(rows, "compression", 0.7) == "INT8"
    assert choose_submission(rows, "speed", 0.4) == "pruned 90%"
    assert choose_submission(rows, "compression", 0.9) is None
    assert choose_submission({"a": {"accuracy": None, "p90_ms": 1.0, "bytes": 1}}, "speed") is None
    ### BEGIN HIDDEN TESTS
    assert choose_submission({"a": {"accuracy": 0.5, "p90_ms": 2.0, "bytes": 5},
                              "b": {"accuracy": 0.5, "p90_ms": 2.0, "bytes": 5}}, "speed", 0.5) == "a"
    ### END HIDDEN TESTS


test_unit_choose_submission()

# %% [markdown]
# ## 8. Your submission
#
# Pack every variant, measure the bundles' bytes, choose per track, and check the chosen
# bundles with the judge's own validator when tito is installed (it is, in a course
# workspace). Then `tito olympics submit BUNDLE --server URL --token T` uploads one.

# %%
import tempfile

out_dir = Path(tempfile.mkdtemp(prefix="olympics-"))
from tinytorch.models.pretrained import checkpoint_path  # noqa: E402

card_doc = json.loads(checkpoint_path("cifar10_cnn").with_suffix(".json").read_text(encoding="utf-8"))
norm = card_doc["preprocess"]
for name, model in variants.items():
    r = results[name]
    local = {k: v for k, v in (("accuracy", r["accuracy"]), ("latency_p90_ms", r["p90_ms"])) if v is not None}
    packed = pack_submission(model, out_dir / f"{name.split()[0].lower()}.ttb", "vision", "my-cnn", local=local,
                             input_shape=(3, 32, 32), mean=norm["mean"], std=norm["std"])
    r["bytes"], r["path"] = packed["bytes"], packed["path"]
    print(f"{name:<11} {packed['bytes']:>9,} bytes  {packed['encodings']}")
picks = {t: choose_submission(results, t, accuracy_floor=0.5) for t in ("vision", "speed", "compression")}
print("chosen:", picks)
if y_test is None:
    print("(no CIFAR-10 labels on this machine, so no accuracy, and no variant can pass a track's gate: "
          "run this notebook where $TINYTORCH_DATA holds CIFAR-10 to choose)")
try:
    from tito.olympics.bundle import BundleError
    from tito.olympics.bundle import load as validate
    for name, r in results.items():
        try:
            print(f"tito olympics validate {Path(r['path']).name}: OK, {validate(r['path']).size:,} bytes")
        except BundleError as e:
            print(f"tito olympics validate {Path(r['path']).name}: REFUSED: {e}")
except ImportError:
    print("tito is not installed here: run `tito olympics validate BUNDLE` where it is")

# %% [markdown]
# The language track takes the GPT: the same packer, with the tokenizer's characters. (The
# KV cache changes how fast it generates, not what it is, so it does not appear in the bundle;
# the server generates with its own code.)

# %%
g_packed = pack_submission(gpt, out_dir / "gpt.ttb", "language", "my-gpt",
                           local={"exact_match": float(gpt.card["value"])},
                           chars=tokenizer_chars(gpt.preprocess.tokenizer))
print(f"GPT bundle: {g_packed['bytes']:,} bytes, {g_packed['encodings']}")
back, _ = load_submission(g_packed["path"])
with no_grad():
    np.testing.assert_allclose(back(prompt).data, gpt(prompt).data, atol=1e-5)
print("the GPT bundle gives back the same logits")
try:
    quantize_model = tier3("tinytorch.optimization.quantization", "quantize_model", lesson="15 quantization")
    gpt8 = quantize_model(gpt, None, weight_only=True)     # a GPT: int8 weights, float activations
    q_packed = pack_submission(gpt8, out_dir / "gpt-int8.ttb", "language", "my-gpt-int8",
                               chars=tokenizer_chars(gpt.preprocess.tokenizer))
    with no_grad():
        drift = float(np.abs(gpt8(prompt).data - gpt(prompt).data).max())
    tok = gpt.preprocess.tokenizer
    answer = lambda m: tok.decode(m.generate(prompt, 12, temperature=0, use_cache=True)[0, prompt.shape[1]:],  # noqa: E731
                                  skip_special_tokens=True).split("\n")[0]
    print(f"INT8 GPT bundle: {q_packed['bytes']:,} bytes ({g_packed['bytes'] / q_packed['bytes']:.2f}x smaller), "
          f"largest logit change {drift:.3f}; answers: FP32 {answer(gpt)!r}, INT8 {answer(gpt8)!r}")
except ImportError as e:
    print(f"INT8 GPT skipped: {e}")

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 4, "schema_version": 3, "solution": false}
def test_module():
    """The capstone flow on a small model: measure, pack sparse, read back the same model, choose."""
    import copy
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        m = _tiny_cnn(seed=2)
        p = copy.deepcopy(m)
        p.layers[0].weight.data[np.abs(p.layers[0].weight.data) < 0.2] = 0.0
        x = np.random.default_rng(2).integers(0, 256, (12, 3, 8, 8), dtype=np.uint8)
        with no_grad():
            y = m(m.preprocess(x)).data.argmax(axis=1)
        rows = {}
        for name, model in (("dense", m), ("pruned", p)):
            rows[name] = measure(model, x, y, queries=8)
            rows[name]["bytes"] = pack_submission(model, Path(d, f"{name}.ttb"), "compression", name,
                                                  input_shape=(3, 8, 8), sparse_at=0.3)["bytes"]
            back, _ = load_submission(Path(d, f"{name}.ttb"))
            with no_grad():
                np.testing.assert_allclose(back(model.preprocess(x)).data, model(model.preprocess(x)).data,
                                           rtol=1e-6, atol=1e-6, err_msg=name)
        assert rows["dense"]["accuracy"] == 1.0, rows
        zeros = float(np.mean(p.layers[0].weight.data == 0))
        if zeros >= 0.3:
            _, doc = load_submission(Path(d, "pruned.ttb"))
            assert doc["tensors"]["layers.0.weight"]["encoding"] == "sparse"
        assert choose_submission(rows, "vision") == "dense"
    ### BEGIN HIDDEN TESTS
    assert tier3("tinytorch.core.tensor", "Tensor", lesson="01 tensor") is Tensor
    try:
        tier3("tinytorch.not_a_module_yet", "x", lesson="99 nothing")
    except ImportError as e:
        assert "complete module 99" in str(e)
    else:
        raise AssertionError("a missing module must raise ImportError")
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## Reflect
#
# 1. The INT8 bundle is about 4x smaller than the FP32 one, but the INT8 model was not 4x
#    faster here (compare its p90 with FP32's above). Where does an INT8 forward pass in NumPy
#    spend its time, and what would a real INT8 kernel (integer multiply-adds, int32
#    accumulators) change? Which of the three numbers (accuracy, latency, bytes) does
#    quantization improve on this machine, and which on a phone's NPU?
# 2. Sparse storage at 50% zeros: work out the bundle bytes of the 2048 x 10 classifier and of
#    a 3 x 3 x 64 x 64 convolution, dense and sparse (mask + float32 values). At what share of
#    zeros does sparse storage with int8 values beat dense int8?
# 3. Your p90 latency measured locally is shown on the leaderboard as yours, but only the
#    server's ranks. Name three reasons the two differ even for the same bundle, and one way a
#    student could (unintentionally or not) make the local number look better than it is.
# 4. The bundle is data: the server never imports your code. What could a malicious bundle
#    still try (think of sizes, shapes, the zip format, numbers), and which check in
#    `tito/olympics/bundle.py` stops each? Why does the server rebuild the model from its own
#    layers instead of accepting a pickled model?
# 5. The KV cache made generation several times faster at batch 1 and more at larger batches
#    (milestone 6 measures both). Why does the speed-up grow with the batch size on this
#    machine? (Think of the fixed cost per Python call against the work per call.)
