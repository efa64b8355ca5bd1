"""The bundled datasets and checkpoints ship in the wheel: build it, install it into a fresh
virtual environment, and load TinyDigits, TinyTalks and every pretrained model from the
installed package (offline)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

CHECK = r"""
import json, tinytorch
from tinytorch.data.datasets import load_tinydigits, load_tinytalks
(x, y), (xt, yt) = load_tinydigits()
(q, a), (qv, av), (qt, at) = load_tinytalks()
from tinytorch.models.pretrained import PRETRAINED, load_pretrained
cards = {n: load_pretrained(n).card["value"] for n in PRETRAINED}
print(json.dumps({"file": tinytorch.__file__, "digits": [x.shape, xt.shape, str(x.dtype)],
                  "talks": [len(q), len(qv), len(qt)], "cards": cards}))
"""


def test_wheel_ships_and_loads_the_bundled_data(installed_wheel, tmp_path):
    py, site, wheel = installed_wheel
    assert wheel.stat().st_size < 50e6
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYTORCH_DATA")}
    r = subprocess.run([str(py), "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(site.resolve()), info["file"]
    assert info["digits"] == [[4000, 28, 28], [1000, 28, 28], "uint8"]
    assert sum(info["talks"]) > 2800 and min(info["talks"]) > 250
    assert sorted(info["cards"]) == ["cifar10_cnn", "mnist_mlp", "shakespeare_gpt", "tinytalks_gpt"], info["cards"]
