"""The evaluation sandbox: what it stops, checked by running things inside it."""
from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from olympics.helpers import linear_model
from tito import sandbox as S
from tito.olympics import bundle as B

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


@pytest.mark.skipif(not S.bwrap_works(), reason="bubblewrap is not installed or cannot run here "
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


def test_a_restarted_worker_kills_what_a_killed_one_left(tmp_path):
    import os
    import signal
    import tempfile
    import time
    from pathlib import Path

    from tito.olympics.worker import PGID_FILE, PREFIX, remove_stale_dirs

    dead = subprocess.Popen(["true"])
    dead.wait()                                                   # a worker pid that is gone
    py = sys.executable
    # one process group, as a sandbox's: a leftover evaluator and a bystander of the same group
    script = tmp_path / "group.sh"
    script.write_text(f"'{py}' -c 'import time; time.sleep(120)' tito.olympics.evaluate &\n"
                      f"'{py}' -c 'import time; time.sleep(120)' bystander &\nwait\n")
    group = subprocess.Popen(["bash", str(script)], start_new_session=True)
    try:
        time.sleep(1.0)
        members = group_members(group.pid)
        assert len(members) == 2, members
        d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{dead.pid}-"))
        (d / PGID_FILE).write_text(str(group.pid))
        assert remove_stale_dirs() >= 1 and not d.exists()
        time.sleep(0.5)
        alive = group_members(group.pid)
        assert [b"bystander" in c for c in alive.values()] == [True], alive     # only the evaluator went
    finally:
        os.killpg(group.pid, signal.SIGKILL)
        group.wait()


def group_members(pgid: int) -> dict:
    """pid -> cmdline of the live python processes in process group ``pgid``."""
    from pathlib import Path

    out = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                cmd = (proc / "cmdline").read_bytes()
                if b"sleep(120)" in cmd:
                    out[int(proc.name)] = cmd
        except (OSError, IndexError, ValueError):
            pass
    return out
