"""The evaluation sandbox: what it stops, checked by running things inside it."""
from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from olympics.helpers import linear_model
from tito.olympics import bundle as B
from tito.olympics import sandbox as S

PROBE = """
import os, socket, sys
secret, port = sys.argv[1], int(sys.argv[2])
print("uid", os.getuid())
print("secret visible", os.path.exists(secret))
try:
    socket.create_connection(("127.0.0.1", port), timeout=2)
    print("network open")
except OSError:
    print("network closed")
for target in ("/usr/olympics-probe", sys.prefix + "/olympics-probe"):
    try:
        open(target, "w")
        print("wrote", target)
    except OSError:
        print("read-only", target)
"""


@pytest.mark.skipif(not S.bwrap_available(), reason="bubblewrap is not installed or cannot run here "
                                                      "(.ci/run installs it: apt-get install bubblewrap)")
def test_bwrap_hides_files_network_and_makes_everything_read_only(tmp_path):
    secret = tmp_path / "olympics.db"
    secret.write_text("the server's database")
    with socket.socket() as listener:                        # a server on this machine's loopback
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        cmd = S._bwrap_prefix([]) + [sys.executable, "-I", "-c", PROBE, str(secret), str(port)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    assert "uid 65534" in out
    assert "secret visible False" in out
    assert "network closed" in out
    assert "wrote" not in out and out.count("read-only") == 2, out


def test_time_and_memory_limits_stop_an_evaluation(tmp_path, digits):
    _, (x, y) = digits
    np.savez(tmp_path / "vision.npz", x_public=x[:300, None], y_public=y[:300], x_private=x[:300, None],
             y_private=y[:300])
    W = np.zeros((784, 10), np.float32)
    B.pack(linear_model(W, np.zeros(10, np.float32)), tmp_path / "m.ttb", "vision", "ada", input_shape=(1, 28, 28))
    ok = S.run_evaluation(tmp_path / "m.ttb", tmp_path)
    assert ok.error == "" and ok.result["public"]["n"] == 300
    slow = S.run_evaluation(tmp_path / "m.ttb", tmp_path, timeout=0.05)
    assert slow.result is None and "time limit" in slow.error
    small = S.run_evaluation(tmp_path / "m.ttb", tmp_path, memory_mb=40)
    assert small.result is None and small.error, small
