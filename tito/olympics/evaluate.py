"""Score a bundle on the server's evaluation set: rebuild the model from the reference layers,
load its decoded weights, run the track's measurement.

``python -m tito.olympics.evaluate BUNDLE EVAL_DIR`` prints one JSON line (the result) and is
what the worker runs inside its sandbox (``tito.sandbox.run_evaluation``). The bundle is data: it chooses
layer types from a whitelist and their numbers, never code.

Evaluation data (``EVAL_DIR``, held by the server, never shown to students):

    vision.npz     x_public, y_public, x_private, y_private: images (N, C, H, W), uint8 0..255
                   or float32 0..1, and int labels. Used by the vision, speed and compression
                   tracks.
    language.npz   q_public, a_public, q_private, a_private: TinyTalks questions and answers
                   (string arrays), ranked by exact match; or text_public, text_private: two
                   texts (Shakespeare's validation part), ranked by validation loss (lower is
                   better). Used by the language track.
    config.json    optional: {"accuracy_floor": 0.5, "latency_images": 50, "warmup": 5,
                   "max_answer": 24, "loss_windows": 64}
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import bundle as bundle_mod

DEFAULTS = {"accuracy_floor": 0.5, "latency_images": 50, "warmup": 5, "max_answer": 24, "loss_windows": 64}
# What each track ranks: the metric and whether higher is better.
TRACK_SCORES = {
    "vision": ("accuracy", True),
    "language": ("exact_match", True),
    "speed": ("latency_p90_ms", False),
    "compression": ("bundle_bytes", False),
}


def load_config(eval_dir: Path) -> dict:
    cfg = dict(DEFAULTS)
    path = Path(eval_dir, "config.json")
    if path.is_file():
        cfg.update(json.loads(path.read_text(encoding="utf-8")))
    return cfg


def build_model(b: bundle_mod.Bundle):
    """The bundle's model, made of the reference package's layers, weights loaded, eval mode.
    The architecture was checked against ``architecture.LAYERS`` when the bundle was loaded; the
    layers are built by the one model builder, ``tinytorch.models.pretrained.build_model``."""
    from tinytorch.models.pretrained import build_model as build

    model = build(b.architecture.spec)
    model.load_state_dict(b.state_dict())
    model.eval()
    return model


def _images(x: np.ndarray, inp: dict) -> np.ndarray:
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.shape[1:] != tuple(inp["shape"]):
        raise ValueError(f"this track's images have shape {list(x.shape[1:])}, the bundle's input.shape "
                         f"is {inp['shape']}")
    if "mean" in inp:
        x = x - np.asarray(inp["mean"], np.float32).reshape((-1,) + (1,) * (x.ndim - 2))
    if "std" in inp:
        x = x / np.asarray(inp["std"], np.float32).reshape((-1,) + (1,) * (x.ndim - 2))
    return x


def classify(model, x: np.ndarray, batch: int = 100) -> np.ndarray:
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    out = []
    with no_grad():
        for i in range(0, len(x), batch):
            logits = model(Tensor(x[i:i + batch])).data
            if logits.ndim != 2 or not np.isfinite(logits).all():
                raise ValueError(f"the model's output has shape {list(logits.shape)} "
                                 f"{'' if np.isfinite(logits).all() else 'and non-finite values'}; "
                                 "expected (batch, classes) logits")
            out.append(logits.argmax(axis=1))
    return np.concatenate(out)


def latency_ms(model, x: np.ndarray, n: int, warmup: int) -> list[float]:
    """Single-stream latency: one image at a time, after ``warmup`` untimed runs."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    times = []
    with no_grad():
        for i in range(warmup + n):
            one = Tensor(x[i % len(x)][None])
            t0 = time.perf_counter()
            model(one)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000.0)
    return times


def answer(model, chars: list, question: str, max_new: int) -> str | None:
    """Greedy answer of a GPT to ``question`` (prompt ``"\\nQ: ...\\nA: "``, up to a newline);
    None when the tokenizer cannot spell the prompt."""
    from tinytorch.core.autograd import no_grad

    stoi = {c: i for i, c in enumerate(chars)}
    prompt = f"\nQ: {question}\nA: "
    if any(c not in stoi for c in prompt):
        return None
    idx = np.array([[stoi[c] for c in prompt]], dtype=np.int64)
    out = []
    with no_grad():
        for _ in range(max_new):
            logits = model(idx[:, -model.block_size:]).data[0, -1]
            nxt = int(np.argmax(logits))
            if chars[nxt] == "\n":
                break
            out.append(chars[nxt])
            idx = np.concatenate([idx, [[nxt]]], axis=1)
    return "".join(out)


def val_loss(model, chars: list, text: str, windows: int) -> tuple[float, int]:
    """Mean next-character cross-entropy (nats) of a GPT on ``text``, over ``windows`` windows
    of its block size spread evenly over the text; returns (loss, characters predicted)."""
    from tinytorch.core.autograd import no_grad

    stoi = {c: i for i, c in enumerate(chars)}
    missing = sorted(set(text) - set(stoi))
    if missing:
        raise ValueError(f"the tokenizer cannot spell {len(missing)} character(s) of the text, "
                         f"e.g. {missing[:5]!r}")
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    T = min(model.block_size, len(ids) - 1)
    starts = np.linspace(0, len(ids) - T - 1, num=max(1, min(windows, len(ids) - T))).astype(np.int64)
    x = np.stack([ids[s:s + T] for s in starts])                        # (W, T)
    y = np.stack([ids[s + 1:s + T + 1] for s in starts])                # (W, T)
    total = 0.0
    with no_grad():
        for i in range(0, len(x), 8):
            logits = model(x[i:i + 8]).data.astype(np.float64)          # (b, T, V)
            top = logits.max(axis=-1, keepdims=True)
            lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
            total += float((lse - np.take_along_axis(logits, y[i:i + 8, :, None], axis=-1)[..., 0]).sum())
    return total / y.size, int(y.size)


def evaluate(bundle_path, eval_dir) -> dict:
    """Measure the bundle on both splits; returns the result as a dict (JSON-serialisable)."""
    from tinytorch.data.datasets import check_tinytalks_answer

    eval_dir = Path(eval_dir)
    cfg = load_config(eval_dir)
    b = bundle_mod.load(bundle_path)
    model = build_model(b)
    result = {"track": b.track, "bundle_bytes": b.size, "parameters": b.architecture.parameters,
              "public": {}, "private": {}}
    if b.track == "language":
        with np.load(eval_dir / "language.npz", allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        chars = b.meta["tokenizer"]["chars"]
        for split in ("public", "private"):
            if "q_public" not in data:                    # a text: validation loss
                loss, n = val_loss(model, chars, str(data[f"text_{split}"]), int(cfg["loss_windows"]))
                result[split] = {"val_loss": loss, "characters": n}
                result["metric"], result["higher_is_better"] = "val_loss", False
                continue
            qs, ans = data[f"q_{split}"], data[f"a_{split}"]
            got = [answer(model, chars, str(q), int(cfg["max_answer"])) for q in qs]
            right = sum(g is not None and check_tinytalks_answer(g, str(a)) for g, a in zip(got, ans))
            result[split] = {"exact_match": right / len(qs), "n": int(len(qs)),
                             "unspellable": sum(g is None for g in got)}
    else:
        with np.load(eval_dir / "vision.npz", allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        inp = b.meta["input"]
        for split in ("public", "private"):
            x, y = _images(data[f"x_{split}"], inp), data[f"y_{split}"]
            acc = float((classify(model, x) == y).mean())
            result[split] = {"accuracy": acc, "n": int(len(y))}
            if b.track in ("speed", "compression"):
                result[split]["eligible"] = acc >= cfg["accuracy_floor"]
        result["accuracy_floor"] = cfg["accuracy_floor"]
        if b.track == "speed":
            x = _images(data["x_public"], inp)
            times = latency_ms(model, x, int(cfg["latency_images"]), int(cfg["warmup"]))
            result["latency_p50_ms"] = float(np.percentile(times, 50))
            result["latency_p90_ms"] = float(np.percentile(times, 90))
            result["latency_images"] = len(times)
            result["load_average"] = os.getloadavg()[0]    # the machine's, to judge the timing by
    metric, higher = TRACK_SCORES[b.track]
    result.setdefault("metric", metric)
    result.setdefault("higher_is_better", higher)
    metric = result["metric"]
    for split in ("public", "private"):
        r = result[split]
        value = result[metric] if metric in result else r[metric]
        r["score"] = value if r.get("eligible", True) else None
    return result


def score_order(track: str, score: float, higher_is_better: bool | None = None) -> float:
    """A key that sorts the best score first."""
    higher = TRACK_SCORES[track][1] if higher_is_better is None else higher_is_better
    return -score if higher else score


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tito.olympics.evaluate BUNDLE EVAL_DIR", file=sys.stderr)
        return 2
    try:
        result = evaluate(argv[0], argv[1])
    except bundle_mod.BundleError as e:
        print(json.dumps({"error": f"invalid bundle: {e}"}))
        return 1
    except MemoryError as e:
        print(json.dumps({"error": f"out of memory (the evaluation's memory limit): {e}"}))
        return 1
    except Exception as e:  # the model failed to run on the data: the learner's problem, reported
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(result, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
