"""The architecture whitelist of Olympics bundles, checked by arithmetic alone.

A model spec names layer types from ``LAYERS`` (inside a ``Sequential``) or a ``GPT``, with
hyperparameters in bounded ranges. ``check_architecture`` works out every tensor's shape,
the parameter count and the multiply-adds per example without building anything, so an
oversized or inconsistent model is refused before a byte of it is allocated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_PARAMETERS = 24 * 1024 * 1024          # decoded float32 tensors: 96 MiB
MAX_LAYERS = 64
MAX_WORK = 2_000_000_000                   # multiply-adds per example (vision) or per token


class BundleError(ValueError):
    """A bundle that is refused; the message says why."""


# ---- the architecture whitelist ------------------------------------------------------------
# type -> {hyperparameter: (kind, default, low, high)}; kind "int", "bool", "float", "pair"
_I = "int"
LAYERS = {
    "Linear": {"in_features": (_I, None, 1, 65536), "out_features": (_I, None, 1, 65536),
               "bias": ("bool", True, None, None)},
    "Conv2d": {"in_channels": (_I, None, 1, 4096), "out_channels": (_I, None, 1, 4096),
               "kernel_size": ("pair", None, 1, 15), "stride": (_I, 1, 1, 8),
               "padding": (_I, 0, 0, 8), "bias": ("bool", True, None, None)},
    "MaxPool2d": {"kernel_size": ("pair", 2, 1, 8), "stride": (_I, None, 1, 8)},
    "AvgPool2d": {"kernel_size": ("pair", 2, 1, 8), "stride": (_I, None, 1, 8)},
    "BatchNorm2d": {"num_features": (_I, None, 1, 4096), "eps": ("float", 1e-5, 1e-12, 1.0)},
    "Flatten": {},
    "Dropout": {"p": ("float", 0.5, 0.0, 1.0)},
    "ReLU": {}, "Sigmoid": {}, "Tanh": {}, "GELU": {},
    "Softmax": {"dim": (_I, -1, -1, -1)},
}
# Module 15's INT8 layers: the float layer's hyperparameters plus the quantization's. Their
# weight is the bundle's ``int8`` encoding of NAME.weight (NAME.weight@q the layer's int8
# weight, NAME.weight@scale its weight_scale: symmetric, so no @zero), per output channel when
# per_channel (axis 1 of a Linear's (in, out) weight, axis 0 of a Conv2d's); unless weight_only,
# NAME.input_scale (> 0) and NAME.input_zero_point (an integer of the bits' range) are dense
# scalars: the input's calibrated quantization.
QUANT_PARAMS = {"bits": (_I, 8, 2, 8), "per_channel": ("bool", True, None, None),
                "weight_only": ("bool", False, None, None)}
QUANTIZED = {"QuantizedLinear": ("Linear", 1), "QuantizedConv2d": ("Conv2d", 0)}   # float layer, channel axis
for _q, (_float, _) in QUANTIZED.items():
    LAYERS[_q] = dict(LAYERS[_float], **QUANT_PARAMS)
GPT_PARAMS = {"vocab_size": (_I, None, 2, 4096), "block_size": (_I, None, 1, 1024),
              "n_layer": (_I, None, 1, 24), "n_head": (_I, None, 1, 32), "n_embd": (_I, None, 1, 2048)}
MODELS = ("Sequential", "GPT")


def _check_params(where: str, given: dict, schema: dict) -> dict:
    if not isinstance(given, dict):
        raise BundleError(f"{where}: must be a JSON object")
    unknown = sorted(set(given) - set(schema) - {"type"})
    if unknown:
        raise BundleError(f"{where}: unknown hyperparameter(s) {unknown}; allowed: {sorted(schema)}")
    out = {}
    for name, (kind, default, low, high) in schema.items():
        value = given.get(name, default)
        if value is None:
            if not (name == "stride" and default is None):   # a pool's stride defaults to its kernel size
                raise BundleError(f"{where}: missing hyperparameter {name!r}")
            out[name] = None
            continue
        if kind == "bool":
            if not isinstance(value, bool):
                raise BundleError(f"{where}: {name} must be true or false, got {value!r}")
        elif kind == "pair":
            pair = value if isinstance(value, list) else [value, value]
            if (len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)
                    or any(not low <= v <= high for v in pair)):
                raise BundleError(f"{where}: {name} must be an integer or [h, w] in {low}..{high}, got {value!r}")
            value = [int(pair[0]), int(pair[1])]
        else:
            ok = (isinstance(value, int) if kind == _I else isinstance(value, (int, float)))
            if isinstance(value, bool) or not ok or not (low <= value <= high) or value != value:
                raise BundleError(f"{where}: {name} must be {'an integer' if kind == _I else 'a number'} "
                                  f"in {low}..{high}, got {value!r}")
        out[name] = value
    return out


@dataclass
class Architecture:
    """A checked model spec: its tensors (name -> shape) and its cost."""
    spec: dict
    tensors: dict = field(default_factory=dict)
    work: int = 0                 # multiply-adds per example (Sequential) or per token (GPT)
    output_shape: tuple = ()
    # module 15's layers: weight tensor name -> {"axis", "bits", "scale"} (the layer's weight_scale
    # buffer); input scalar name -> ("scale" | "zero_point", bits)
    int8_weights: dict = field(default_factory=dict)
    input_qparams: dict = field(default_factory=dict)

    @property
    def parameters(self) -> int:
        return int(sum(math.prod(s) for s in self.tensors.values()))


def check_architecture(model: dict, input_shape=None) -> Architecture:
    """Check a model spec by arithmetic; returns the tensors it needs and their shapes.

    ``input_shape`` (per example, e.g. ``[3, 32, 32]``) is required for a Sequential."""
    if not isinstance(model, dict) or model.get("type") not in MODELS:
        got = model.get("type") if isinstance(model, dict) else model
        raise BundleError(f"model: type must be one of {list(MODELS)}, got {got!r}")
    if model["type"] == "GPT":
        quantized = model.get("quantized")
        p = _check_params("model (GPT)", {k: v for k, v in model.items() if k != "quantized"}, GPT_PARAMS)
        V, T, L, H, C = (p[k] for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        if C % H:
            raise BundleError(f"model (GPT): n_embd {C} must be divisible by n_head {H}")
        t = {"tok_emb.weight": (V, C), "pos_emb.weight": (T, C)}
        for i in range(L):
            b = f"blocks.{i}."
            t.update({b + "ln1.weight": (C,), b + "ln1.bias": (C,)})
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                t.update({b + f"attn.{proj}.weight": (C, C), b + f"attn.{proj}.bias": (C,)})
            t.update({b + "ln2.weight": (C,), b + "ln2.bias": (C,),
                      b + "mlp.fc.weight": (C, 4 * C), b + "mlp.fc.bias": (4 * C,),
                      b + "mlp.proj.weight": (4 * C, C), b + "mlp.proj.bias": (C,)})
        t.update({"ln_f.weight": (C,), "ln_f.bias": (C,), "lm_head.weight": (C, V)})
        arch = Architecture(dict(p, type="GPT"), t, work=L * (12 * C * C + 2 * T * C) + C * V,
                            output_shape=(T, V))
        if quantized is not None:          # module 15: every Linear of the GPT holds int8 weights
            q = _check_params("model (GPT): quantized", quantized, QUANT_PARAMS)
            arch.spec["quantized"] = q
            linears = [f"blocks.{i}.{n}" for i in range(L)
                       for n in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "mlp.fc", "mlp.proj")]
            for lin in linears + ["lm_head"]:
                _quantized_tensors(lin + ".", "QuantizedLinear", q, arch)
    else:
        layers = model.get("layers")
        extra = sorted(set(model) - {"type", "layers"})
        if extra:
            raise BundleError(f"model (Sequential): unknown field(s) {extra}; allowed: ['layers']")
        if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
            raise BundleError(f"model (Sequential): layers must be a list of 1..{MAX_LAYERS} layers")
        if input_shape is None:
            raise BundleError("a Sequential model needs input.shape, e.g. [3, 32, 32]")
        shape = tuple(input_shape)
        arch = Architecture({"type": "Sequential", "layers": []})
        for i, layer in enumerate(layers):
            kind = layer.get("type") if isinstance(layer, dict) else None
            if not isinstance(kind, str) or kind not in LAYERS:
                raise BundleError(f"layer {i}: unknown layer type {kind!r}; allowed: {sorted(LAYERS)}")
            p = _check_params(f"layer {i} ({kind})", layer, LAYERS[kind])
            shape, work = _layer_shape(i, QUANTIZED.get(kind, (kind,))[0], p, shape, arch.tensors)
            if kind in QUANTIZED:
                _quantized_tensors(f"layers.{i}.", kind, p, arch)
            arch.work += work
            arch.spec["layers"].append(dict(p, type=kind))
        arch.output_shape = shape
    if arch.parameters > MAX_PARAMETERS:
        raise BundleError(f"model: {arch.parameters:,} parameters, more than the limit {MAX_PARAMETERS:,}")
    if arch.work > MAX_WORK:
        raise BundleError(f"model: {arch.work:,} multiply-adds per example, more than the limit {MAX_WORK:,}")
    return arch


def _quantized_tensors(name: str, kind: str, p: dict, arch: Architecture) -> None:
    """Record what module 15's layer ``name`` (e.g. "layers.3.") stores beyond its float layer's
    tensors."""
    axis = QUANTIZED[kind][1] if p["per_channel"] else None
    arch.int8_weights[name + "weight"] = {"axis": axis, "bits": p["bits"], "scale": name + "weight_scale"}
    if not p["weight_only"]:
        for t, role in (("input_scale", "scale"), ("input_zero_point", "zero_point")):
            arch.tensors[name + t] = ()
            arch.input_qparams[name + t] = (role, p["bits"])


def _layer_shape(i: int, kind: str, p: dict, shape: tuple, tensors: dict) -> tuple[tuple, int]:
    """Output shape and multiply-adds of layer ``i``; adds its tensors to ``tensors``."""
    where = f"layer {i} ({kind})"
    name = f"layers.{i}."
    if kind == "Linear":
        if shape[-1:] != (p["in_features"],):
            raise BundleError(f"{where}: expects inputs of {p['in_features']} features, gets shape {list(shape)}")
        tensors[name + "weight"] = (p["in_features"], p["out_features"])
        if p["bias"]:
            tensors[name + "bias"] = (p["out_features"],)
        return shape[:-1] + (p["out_features"],), math.prod(shape) * p["out_features"]
    if kind in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d"):
        if len(shape) != 3:
            raise BundleError(f"{where}: expects (C, H, W) inputs, gets shape {list(shape)}")
        C, H, W = shape
        if kind == "BatchNorm2d":
            if C != p["num_features"]:
                raise BundleError(f"{where}: expects {p['num_features']} channels, gets {C}")
            for t in ("weight", "bias", "running_mean", "running_var"):
                tensors[name + t] = (C,)
            return shape, 2 * C * H * W
        (KH, KW) = p["kernel_size"]
        if kind == "Conv2d":
            if C != p["in_channels"]:
                raise BundleError(f"{where}: expects {p['in_channels']} input channels, gets {C}")
            S, P = p["stride"], p["padding"]
            HO, WO = (H + 2 * P - KH) // S + 1, (W + 2 * P - KW) // S + 1
            if HO < 1 or WO < 1:
                raise BundleError(f"{where}: kernel {KH}x{KW} larger than its {H}x{W} input")
            tensors[name + "weight"] = (p["out_channels"], C, KH, KW)
            if p["bias"]:
                tensors[name + "bias"] = (p["out_channels"],)
            return (p["out_channels"], HO, WO), p["out_channels"] * HO * WO * C * KH * KW
        S = p["stride"] or KH
        HO, WO = (H - KH) // S + 1, (W - KW) // S + 1
        if HO < 1 or WO < 1:
            raise BundleError(f"{where}: window {KH}x{KW} larger than its {H}x{W} input")
        return (C, HO, WO), C * HO * WO * KH * KW
    if kind == "Flatten":
        return (math.prod(shape),), 0
    return shape, math.prod(shape)                     # activations, Dropout, Softmax
