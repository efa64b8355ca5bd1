"""Random damage to a valid bundle: whatever the change, the validator answers with a
``BundleError`` (a message for the learner) or accepts it; it never fails otherwise."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from olympics.helpers import bundle_bytes, parts
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tito.olympics import bundle as B

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    m = Sequential(Conv2d(1, 2, 3, seed=0), BatchNorm2d(2), ReLU(), MaxPool2d(2), Flatten(), Linear(2 * 3 * 3, 4, seed=1))
    path = tmp_path_factory.mktemp("fuzz") / "m.ttb"
    B.pack(m, path, "vision", "ada", {"accuracy": 0.5}, input_shape=(1, 8, 8),
           encoding={"layers.0.weight": "int8", "layers.5.weight": "sparse+int8"})
    return parts(path.read_bytes())


def paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def replaced(doc, path, value):
    doc = json.loads(json.dumps(doc))
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def check(data: bytes) -> None:
    try:
        B.load_bytes(data)
    except B.BundleError as e:
        assert str(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_change_to_bundle_json_is_accepted_or_refused_clearly(good, data):
    doc, arrays = good
    all_paths = list(paths(doc))
    path = data.draw(st.sampled_from(all_paths))
    check(bundle_bytes(replaced(doc, path, data.draw(json_values)), arrays))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_change_to_the_arrays_is_accepted_or_refused_clearly(good, data):
    doc, arrays = good
    name = data.draw(st.sampled_from(sorted(arrays)))
    dtype = data.draw(st.sampled_from(["float32", "float16", "int8", "uint8", "int32", "float64", "bool"]))
    shape = data.draw(st.lists(st.integers(0, 5), max_size=3))
    a = dict(arrays)
    a[name] = np.ones(shape, dtype=dtype)
    check(bundle_bytes(doc, a))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_bytes_are_refused_clearly(good, data):
    raw = bytearray(bundle_bytes(*good))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    check(bytes(raw))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:                  # a good bundle.json, a truncated npz
        zf.writestr("bundle.json", json.dumps(good[0]))
        zf.writestr("weights.npz", bytes(raw[: data.draw(st.integers(0, len(raw)))]))
    check(inner.getvalue())
