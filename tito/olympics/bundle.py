"""The Olympics submission bundle: a model described as data, never as code.

A bundle is one zip file with exactly two members::

    bundle.json   the architecture (a whitelist of layer types and their hyperparameters),
                  how every tensor is encoded, and metadata (track, pseudonym, the
                  learner's own local measurements)
    weights.npz   the arrays, read with ``allow_pickle=False``

Tensor encodings (``"tensors"`` in bundle.json, one entry per state-dict name)::

    dense   array NAME             float32 or float16, the tensor's shape
    int8    array NAME@q           int8, the tensor's shape
            array NAME@scale       float32, shape () or (shape[axis],)  value = (q - zero) * scale
            array NAME@zero        optional, int8, same shape as NAME@scale
    sparse  array NAME@mask        uint8, the non-zero pattern, one bit per element in C order
                                   (``np.packbits`` of the flat tensor != 0)
            array NAME@values      the non-zero values in C order: float32/float16, or int8
                                   with a scalar float32 NAME@scale

Module 15's ``QuantizedLinear`` / ``QuantizedConv2d`` (see architecture.py) keep their weight
as int8: NAME.weight must be ``int8`` (symmetric, no @zero, values in the layer's bits' range,
the layer's channel axis), its @scale is the layer's weight_scale; NAME.input_scale and
NAME.input_zero_point (unless weight_only) are dense scalars.

Validation reads nothing it has not bounded first: the bundle size, each member's
uncompressed size (read with a cap, so a zip whose headers lie is stopped too), the number,
size, dtype and shape of every array, finite values, names without path separators, and an
architecture whose shapes, parameter count and work per example are checked by arithmetic
before any model is built. Every problem raises ``BundleError`` with a message that says what
is wrong and what is allowed.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .architecture import GPT_PARAMS, LAYERS, Architecture, BundleError, check_architecture

FORMAT = "tinytorch-olympics"
VERSION = 1
TRACKS = ("vision", "language", "speed", "compression")
MEMBERS = ("bundle.json", "weights.npz")

# Hard limits. A CIFAR-10 CNN or a small GPT fits well inside them.
MAX_BUNDLE_BYTES = 16 * 1024 * 1024        # the file as uploaded
MAX_JSON_BYTES = 256 * 1024                # bundle.json, uncompressed
MAX_WEIGHTS_BYTES = 96 * 1024 * 1024       # weights.npz, uncompressed
MAX_ARRAYS = 1024
MAX_ARRAY_ELEMENTS = 16 * 1024 * 1024
MAX_NDIM = 4
MAX_LOCAL = 16                             # learner-reported numbers
ARRAY_DTYPES = ("float32", "float16", "int8", "uint8")

NAME_RE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\Z")
ARRAY_RE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(@(q|scale|zero|mask|values))?\Z")
PSEUDONYM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
LOCAL_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")


# ---- reading and checking a bundle ---------------------------------------------------------
# What a damaged zip raises, in the standard library's zipfile and zlib.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, ValueError, OSError, EOFError,
              NotImplementedError, RuntimeError)


@dataclass
class Bundle:
    """A validated bundle: its metadata and its encoded arrays (not yet decoded)."""
    meta: dict
    arrays: dict
    size: int
    architecture: Architecture

    @property
    def track(self) -> str:
        return self.meta["track"]

    @property
    def pseudonym(self) -> str:
        return self.meta["pseudonym"]

    @property
    def local(self) -> dict:
        return dict(self.meta.get("local", {}))

    def state_dict(self) -> dict:
        """Every tensor decoded to float32, by state-dict name; the weight of a module-15 layer
        stays int8, with its scale under the layer's own name (``NAME.weight_scale``)."""
        state = {}
        for name, entry in self.meta["tensors"].items():
            q = self.architecture.int8_weights.get(name)
            if q is None:
                state[name] = decode_tensor(name, entry, self.arrays)
            else:
                state[name] = self.arrays[name + "@q"]
                state[q["scale"]] = self.arrays[name + "@scale"]
        return state


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
    if info.file_size > cap:
        raise BundleError(f"{what} is {info.file_size:,} bytes uncompressed, more than the limit {cap:,}")
    try:
        with zf.open(info) as f:
            data = f.read(cap + 1)
    except ZIP_ERRORS as e:
        raise BundleError(f"{what}: cannot be read ({e})") from None
    if len(data) > cap:  # a header that lies about the size: a zip bomb
        raise BundleError(f"{what} expands past the limit of {cap:,} bytes (a zip bomb?)")
    return data


def _members(zf: zipfile.ZipFile, what: str, allowed=None, max_count=None) -> dict:
    infos = zf.infolist()
    if max_count is not None and len(infos) > max_count:
        raise BundleError(f"{what} holds {len(infos)} files, more than the limit {max_count}")
    out = {}
    for info in infos:
        n = info.filename
        if "/" in n or "\\" in n or ".." in n or n.startswith(".") or "\x00" in n:
            raise BundleError(f"{what}: file name {n!r} contains a path separator or '..'")
        if n in out:
            raise BundleError(f"{what}: file name {n!r} appears twice")
        if allowed is not None and n not in allowed:
            raise BundleError(f"{what}: unexpected file {n!r}; a bundle holds exactly {list(allowed)}")
        out[n] = info
    return out


def _strict_json(data: bytes) -> dict:
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise BundleError(f"bundle.json: a key appears twice in one object: {sorted(keys)}")
        return dict(pairs)

    def no_constants(name):
        raise BundleError(f"bundle.json: {name} is not allowed (numbers must be finite)")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BundleError(f"bundle.json is not valid UTF-8 JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BundleError("bundle.json must hold a JSON object")
    return doc


def read_arrays(data: bytes) -> dict:
    """The arrays of a ``weights.npz`` (bytes), checked: names, count, sizes, dtypes, finite."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS:
        raise BundleError("weights.npz is not an .npz (zip) file") from None
    arrays, total = {}, 0
    with zf:
        for name, info in _members(zf, "weights.npz", max_count=MAX_ARRAYS).items():
            key = name[:-4] if name.endswith(".npy") else None
            if key is None or not ARRAY_RE.match(key):
                raise BundleError(f"weights.npz: array name {name!r} is not allowed; names are like "
                                  f"'layers.0.weight.npy' (letters, digits, '_', '.', and an @q/@scale/"
                                  f"@zero/@mask/@values suffix)")
            raw = _read_member(zf, info, MAX_WEIGHTS_BYTES - total, f"weights.npz: {name}")
            total += len(raw)
            arrays[key] = _read_npy(key, raw)
    return arrays


def _read_npy(key: str, raw: bytes) -> np.ndarray:
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(f))
    except (ValueError, OSError, SyntaxError, TypeError) as e:
        raise BundleError(f"weights.npz: {key} is not a NumPy array file ({e})") from None
    if dtype.hasobject or dtype.name not in ARRAY_DTYPES:
        why = "holds Python objects (a pickle): refused" if dtype.hasobject else f"has dtype {dtype}"
        raise BundleError(f"weights.npz: {key} {why}; allowed dtypes: {list(ARRAY_DTYPES)}")
    if len(shape) > MAX_NDIM:
        raise BundleError(f"weights.npz: {key} has {len(shape)} dimensions, at most {MAX_NDIM} allowed")
    n = math.prod(shape)
    if n > MAX_ARRAY_ELEMENTS:
        raise BundleError(f"weights.npz: {key} has {n:,} elements, more than the limit {MAX_ARRAY_ELEMENTS:,}")
    f.seek(0)
    try:
        arr = np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BundleError(f"weights.npz: {key} cannot be read ({e})") from None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise BundleError(f"weights.npz: {key} contains NaN or infinite values")
    return arr


def _check_meta(doc: dict) -> Architecture:
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise BundleError(f"bundle.json: format must be {FORMAT!r} version {VERSION}, got "
                          f"{doc.get('format')!r} version {doc.get('version')!r}")
    allowed = {"format", "version", "track", "pseudonym", "model", "input", "tokenizer", "tensors", "local"}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise BundleError(f"bundle.json: unknown field(s) {extra}; allowed: {sorted(allowed)}")
    if doc.get("track") not in TRACKS:
        raise BundleError(f"track must be one of {list(TRACKS)}, got {doc.get('track')!r}")
    pseudonym = doc.get("pseudonym")
    if not isinstance(pseudonym, str) or not PSEUDONYM_RE.match(pseudonym):
        raise BundleError(f"pseudonym {pseudonym!r} is not allowed: 1-32 characters, letters, digits, "
                          f"'_', '.', '-', starting with a letter or digit")
    local = doc.get("local", {})
    if not isinstance(local, dict) or len(local) > MAX_LOCAL:
        raise BundleError(f"local: must be an object of at most {MAX_LOCAL} numbers")
    for k, v in local.items():
        if not LOCAL_KEY_RE.match(k) or isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not math.isfinite(v):
            raise BundleError(f"local: {k!r}: {v!r} is not allowed; keys like 'accuracy' or "
                              f"'latency_ms', values finite numbers")
    inp = doc.get("input")
    input_shape = None
    if doc["model"].get("type") == "Sequential" if isinstance(doc.get("model"), dict) else False:
        if not isinstance(inp, dict) or not isinstance(inp.get("shape"), list):
            raise BundleError("input: a Sequential model needs input.shape, e.g. {\"shape\": [3, 32, 32]}")
        input_shape = inp["shape"]
        if (not 1 <= len(input_shape) <= 3 or
                any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 4096 for d in input_shape)):
            raise BundleError(f"input.shape must be 1-3 integers in 1..4096, got {input_shape!r}")
        bad = sorted(set(inp) - {"shape", "mean", "std"})
        if bad:
            raise BundleError(f"input: unknown field(s) {bad}; allowed: ['mean', 'shape', 'std']")
        for key in ("mean", "std"):
            v = inp.get(key)
            if v is not None and (not isinstance(v, list) or len(v) != input_shape[0] or any(
                    isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in v)
                    or (key == "std" and any(x <= 0 for x in v))):
                raise BundleError(f"input.{key}: one finite number per channel ({input_shape[0]}), got {v!r}")
    arch = check_architecture(doc.get("model"), input_shape)
    if arch.spec["type"] == "GPT":
        tok = doc.get("tokenizer")
        chars = tok.get("chars") if isinstance(tok, dict) else None
        if (not isinstance(tok, dict) or tok.get("type") != "chars" or set(tok) != {"type", "chars"}
                or not isinstance(chars, list) or any(not isinstance(c, str) or len(c) != 1 for c in chars)
                or len(set(chars)) != len(chars)):
            raise BundleError("tokenizer: a GPT needs {\"type\": \"chars\", \"chars\": [one distinct "
                              "character per token id]}")
        if len(chars) != arch.spec["vocab_size"]:
            raise BundleError(f"tokenizer: {len(chars)} characters but vocab_size {arch.spec['vocab_size']}")
        if "input" in doc:
            raise BundleError("input: only a Sequential model has an input shape")
    elif "tokenizer" in doc:
        raise BundleError("tokenizer: only a GPT model has a tokenizer")
    want = {"vision": "Sequential", "speed": "Sequential", "compression": "Sequential", "language": "GPT"}
    if arch.spec["type"] != want[doc["track"]]:
        raise BundleError(f"track {doc['track']!r} takes a {want[doc['track']]} model, got a {arch.spec['type']}")
    return arch


def _check_tensors(doc: dict, arch: Architecture, arrays: dict) -> None:
    tensors = doc.get("tensors")
    if not isinstance(tensors, dict):
        raise BundleError("tensors: must map every state-dict name to its encoding")
    missing, unexpected = sorted(set(arch.tensors) - set(tensors)), sorted(set(tensors) - set(arch.tensors))
    if missing or unexpected:
        raise BundleError(f"tensors: the model needs {missing} (missing) and not {unexpected} (unexpected)")
    used = set()
    for name, entry in tensors.items():
        shape = arch.tensors[name]
        if not isinstance(entry, dict) or entry.get("shape") != list(shape):
            raise BundleError(f"tensors: {name} must declare shape {list(shape)}, got {entry!r}")
        used.update(_needed_arrays(name, entry, shape, arrays))
    extra = sorted(set(arrays) - used)
    if extra:
        raise BundleError(f"weights.npz: arrays {extra} are not used by any tensor")
    _check_quantized(tensors, arch, arrays)


def _check_quantized(tensors: dict, arch: Architecture, arrays: dict) -> None:
    """The tensors of module 15's layers: an int8 weight as the layer stores it (symmetric, the
    layer's axis, values in the bits' range) and sane input quantization scalars."""
    for name, q in arch.int8_weights.items():
        entry = tensors[name]
        if entry.get("encoding") != "int8" or entry.get("axis") != q["axis"]:
            raise BundleError(f"tensors: {name} of a quantized layer must be encoding int8 with axis "
                              f"{q['axis']} ({'per channel' if q['axis'] is not None else 'per tensor'}), "
                              f"got {entry.get('encoding')!r} axis {entry.get('axis')!r}")
        if name + "@zero" in arrays:
            raise BundleError(f"weights.npz: {name}@zero: a quantized layer's weights are symmetric "
                              f"(zero point 0); leave @zero out")
        lo, hi = -(2 ** (q["bits"] - 1)), 2 ** (q["bits"] - 1) - 1
        w = arrays[name + "@q"]
        if w.size and (int(w.min()) < lo or int(w.max()) > hi):
            raise BundleError(f"weights.npz: {name}@q holds values outside {lo}..{hi} ({q['bits']} bits)")
    for name, (role, bits) in arch.input_qparams.items():
        entry = tensors[name]
        if entry.get("encoding") != "dense":
            raise BundleError(f"tensors: {name} must be a dense scalar, got {entry.get('encoding')!r}")
        v = float(arrays[name])
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if role == "scale" and not v > 0:
            raise BundleError(f"weights.npz: {name} must be a positive scale, got {v}")
        if role == "zero_point" and (v != round(v) or not lo <= v <= hi):
            raise BundleError(f"weights.npz: {name} must be an integer in {lo}..{hi}, got {v}")


def _needed_arrays(name: str, entry: dict, shape: tuple, arrays: dict) -> list:
    enc = entry.get("encoding")

    def need(key, dtypes, shape_ok, what):
        a = arrays.get(key)
        if a is None:
            raise BundleError(f"weights.npz: {name} ({enc}) needs an array {key!r}")
        if a.dtype.name not in dtypes or not shape_ok(a.shape):
            raise BundleError(f"weights.npz: {key} must be {what}, got {a.dtype} {list(a.shape)}")
        return a
    if enc == "dense":
        if set(entry) != {"encoding", "shape"}:
            raise BundleError(f"tensors: {name}: dense takes only encoding and shape")
        need(name, ("float32", "float16"), lambda s: s == shape, f"float32/float16 of shape {list(shape)}")
        return [name]
    if enc == "int8":
        axis = entry.get("axis")
        if set(entry) - {"encoding", "shape", "axis"} or not (
                axis is None or (isinstance(axis, int) and not isinstance(axis, bool) and 0 <= axis < len(shape))):
            raise BundleError(f"tensors: {name}: int8 takes encoding, shape and axis (null or 0..{len(shape) - 1})")
        sshape = () if axis is None else (shape[axis],)
        need(name + "@q", ("int8",), lambda s: s == shape, f"int8 of shape {list(shape)}")
        scale = need(name + "@scale", ("float32",), lambda s: s == sshape, f"float32 of shape {list(sshape)}")
        if not (scale > 0).all():
            raise BundleError(f"weights.npz: {name}@scale must be positive")
        keys = [name + "@q", name + "@scale"]
        if name + "@zero" in arrays:
            need(name + "@zero", ("int8",), lambda s: s == sshape, f"int8 of shape {list(sshape)}")
            keys.append(name + "@zero")
        return keys
    if enc == "sparse":
        if set(entry) != {"encoding", "shape"}:
            raise BundleError(f"tensors: {name}: sparse takes only encoding and shape")
        n = math.prod(shape)
        mask = need(name + "@mask", ("uint8",), lambda s: s == ((n + 7) // 8,), f"uint8 of shape [{(n + 7) // 8}]")
        bits = np.unpackbits(mask)
        if bits[n:].any():
            raise BundleError(f"weights.npz: {name}@mask has bits set past the tensor's {n} elements")
        nnz = int(bits.sum())
        values = need(name + "@values", ("float32", "float16", "int8"), lambda s: s == (nnz,),
                      f"float32/float16/int8 of shape [{nnz}] (one value per bit set in the mask)")
        keys = [name + "@mask", name + "@values"]
        if values.dtype == np.int8:
            scale = need(name + "@scale", ("float32",), lambda s: s == (), "a float32 scalar")
            if not scale > 0:
                raise BundleError(f"weights.npz: {name}@scale must be positive")
            keys.append(name + "@scale")
        return keys
    raise BundleError(f"tensors: {name}: unknown encoding {enc!r}; allowed: ['dense', 'int8', 'sparse']")


def decode_tensor(name: str, entry: dict, arrays: dict) -> np.ndarray:
    """One tensor of a validated bundle as float32."""
    enc, shape = entry["encoding"], tuple(entry["shape"])
    if enc == "dense":
        return arrays[name].astype(np.float32)
    if enc == "int8":
        q = arrays[name + "@q"].astype(np.float32)
        scale = arrays[name + "@scale"]
        zero = arrays.get(name + "@zero", np.zeros_like(scale, dtype=np.int8)).astype(np.float32)
        if entry.get("axis") is not None:
            bshape = [1] * len(shape)
            bshape[entry["axis"]] = shape[entry["axis"]]
            scale, zero = scale.reshape(bshape), zero.reshape(bshape)
        return ((q - zero) * scale).astype(np.float32)
    n = math.prod(shape)
    keep = np.unpackbits(arrays[name + "@mask"])[:n].astype(bool)
    values = arrays[name + "@values"].astype(np.float32)
    if name + "@scale" in arrays:
        values = values * arrays[name + "@scale"]
    out = np.zeros(n, dtype=np.float32)
    out[keep] = values
    return out.reshape(shape)


def load_bytes(data: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Validate a bundle given as bytes; returns it or raises ``BundleError``."""
    if len(data) > max_bytes:
        raise BundleError(f"the bundle is {len(data):,} bytes, more than the limit {max_bytes:,}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS:
        raise BundleError("not a bundle: expected a zip file holding bundle.json and weights.npz "
                          "(made by `tito olympics pack`)") from None
    with zf:
        infos = _members(zf, "the bundle", allowed=MEMBERS, max_count=len(MEMBERS))
        if set(infos) != set(MEMBERS):
            raise BundleError(f"the bundle must hold exactly {list(MEMBERS)}, found {sorted(infos)}")
        doc = _strict_json(_read_member(zf, infos["bundle.json"], MAX_JSON_BYTES, "bundle.json"))
        arch = _check_meta(doc)
        arrays = read_arrays(_read_member(zf, infos["weights.npz"], MAX_WEIGHTS_BYTES, "weights.npz"))
    _check_tensors(doc, arch, arrays)
    return Bundle(doc, arrays, len(data), arch)


def load(path, max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Validate the bundle file at ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BundleError(f"{path.name} is {size:,} bytes, more than the limit {max_bytes:,}")
        data = path.read_bytes()
    except OSError as e:
        raise BundleError(f"cannot read {path}: {e.strerror or e}") from None
    return load_bytes(data, max_bytes)


# ---- packing a model -----------------------------------------------------------------------
def describe_model(model) -> dict:
    """The architecture spec of a TinyTorch model (a Sequential of known layers, or a GPT).

    Works on the reference package and on a learner's: it reads class names and the
    hyperparameter attributes the layers keep."""
    kind = type(model).__name__
    if kind == "GPT":
        return {"type": "GPT", **{k: int(getattr(model, k)) for k in GPT_PARAMS}}
    if kind != "Sequential":
        raise BundleError(f"a bundle holds a Sequential of known layers or a GPT, not a {kind}")
    layers = []
    for i, layer in enumerate(model.layers):
        lk = type(layer).__name__
        if lk not in LAYERS:
            raise BundleError(f"layer {i}: {lk} is not a layer the Olympics evaluator knows; "
                              f"allowed: {sorted(LAYERS)}")
        entry = {"type": lk}
        for p in LAYERS[lk]:
            if p == "bias":
                entry["bias"] = getattr(layer, "bias", None) is not None
            elif hasattr(layer, p):
                v = getattr(layer, p)
                entry[p] = list(v) if isinstance(v, tuple) else v
        layers.append(entry)
    return {"type": "Sequential", "layers": layers}


def encode_tensor(name: str, array: np.ndarray, encoding: str = "dense", axis=None) -> tuple[dict, dict]:
    """``(entry, arrays)`` for one tensor: dense float32, symmetric int8 (per-tensor, or per
    slice along ``axis``), sparse (a bit mask and the non-zero values, float32) or
    sparse+int8 (the non-zero values as int8 with one scale)."""
    a = np.asarray(array, dtype=np.float32)
    entry = {"encoding": encoding, "shape": list(a.shape)}
    if encoding == "dense":
        return entry, {name: a}
    if encoding == "int8":
        if axis is None:
            amax = np.abs(a).max(initial=0.0)
        else:
            amax = np.abs(a).max(axis=tuple(d for d in range(a.ndim) if d != axis), initial=0.0)
        scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
        bscale = scale if axis is None else scale.reshape([-1 if d == axis else 1 for d in range(a.ndim)])
        q = np.clip(np.round(a / bscale), -127, 127).astype(np.int8)
        entry["axis"] = axis
        return entry, {name + "@q": q, name + "@scale": np.asarray(scale, dtype=np.float32)}
    if encoding in ("sparse", "sparse+int8"):
        flat = a.reshape(-1)
        keep = flat != 0
        values = flat[keep]
        arrs = {name + "@mask": np.packbits(keep)}
        entry["encoding"] = "sparse"
        if encoding == "sparse+int8":
            scale = np.float32(max(float(np.abs(values).max(initial=0.0)), 1e-12) / 127.0)
            arrs[name + "@values"] = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
            arrs[name + "@scale"] = np.asarray(scale, dtype=np.float32)
        else:
            arrs[name + "@values"] = values
        return entry, arrs
    raise BundleError(f"unknown encoding {encoding!r}; allowed: {list(ENCODINGS)}")


ENCODINGS = ("dense", "int8", "sparse", "sparse+int8")


def pack(model, path, track: str, pseudonym: str, local: dict | None = None, input_shape=None,
         mean=None, std=None, chars=None, encoding="dense", encoded: dict | None = None) -> Bundle:
    """Write ``model`` as a bundle at ``path`` and validate what was written.

    ``encoded`` gives tensors already encoded, as ``encode_tensor`` returns them
    (name -> ``(entry, arrays)``), e.g. int8 weights and scales made by your own quantizer.
    ``encoding`` is one name for every other tensor (one of ``ENCODINGS``) or a dict
    name -> encoding (missing names are dense). A Sequential needs ``input_shape`` (per
    example, e.g. ``(3, 32, 32)``); a GPT needs ``chars``, the character of every token id."""
    spec = describe_model(model)
    doc = {"format": FORMAT, "version": VERSION, "track": track, "pseudonym": pseudonym,
           "model": spec, "tensors": {}, "local": dict(local or {})}
    if spec["type"] == "Sequential":
        if input_shape is None:
            raise BundleError("pack: a Sequential model needs input_shape, e.g. (3, 32, 32)")
        doc["input"] = {"shape": [int(d) for d in input_shape]}
        if mean is not None:
            doc["input"]["mean"] = [float(m) for m in mean]
        if std is not None:
            doc["input"]["std"] = [float(s) for s in std]
    else:
        if chars is None:
            raise BundleError("pack: a GPT needs chars, the character of every token id")
        doc["tokenizer"] = {"type": "chars", "chars": list(chars)}
    arrays = {}
    for name, value in model.state_dict().items():
        if encoded and name in encoded:
            entry, arrs = encoded[name]
            doc["tensors"][name] = dict(entry)
            arrays.update(arrs)
            continue
        enc = encoding.get(name, "dense") if isinstance(encoding, dict) else encoding
        if enc != "dense" and np.ndim(value) < 2:
            enc = "dense"                       # biases and norms stay float: tiny, and sensitive
        entry, arrs = encode_tensor(name, value, enc)
        doc["tensors"][name] = entry
        arrays.update(arrs)
    weights = io.BytesIO()
    np.savez_compressed(weights, **arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle.json", json.dumps(doc, indent=1, sort_keys=True))
        zf.writestr(zipfile.ZipInfo("weights.npz", (1980, 1, 1, 0, 0, 0)), weights.getvalue(),
                    compress_type=zipfile.ZIP_STORED)   # already compressed
    data = out.getvalue()
    bundle = load_bytes(data)                           # refuse to write what we would refuse to read
    Path(path).write_bytes(data)
    return bundle


def summary(bundle: Bundle) -> str:
    """A few lines for `tito olympics validate`."""
    arch = bundle.architecture
    encs = {}
    for entry in bundle.meta["tensors"].values():
        encs[entry["encoding"]] = encs.get(entry["encoding"], 0) + 1
    lines = [f"track {bundle.track}, pseudonym {bundle.pseudonym}, {bundle.size:,} bytes",
             f"model {arch.spec['type']}: {arch.parameters:,} numbers in its tensors (parameters and buffers), "
             f"{arch.work:,} multiply-adds "
             f"per {'token' if arch.spec['type'] == 'GPT' else 'example'}, output {list(arch.output_shape)}",
             "tensors: " + ", ".join(f"{n} {e}" for e, n in sorted(encs.items()))]
    if bundle.local:
        lines.append("reported by you (shown as such, never ranked): "
                     + ", ".join(f"{k}={v}" for k, v in sorted(bundle.local.items())))
    return "\n".join(lines)
