"""Faults: the worker killed in the middle of an evaluation resumes it after a restart (and
leaves no sandbox behind); the server killed while submissions arrive keeps every one it
acknowledged."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from olympics.helpers import cli_cmd, linear_model
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tito.machine import load_average
from tito.olympics import bundle as B


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def slow_eval_dir(tmp_path, digits):
    """2,000 images: an evaluation of a small CNN lasts about a second, long enough to kill."""
    _, (x, y) = digits
    d = tmp_path / "slow-eval"
    d.mkdir()
    np.savez(d / "vision.npz", x_public=x[:1000, None], y_public=y[:1000], x_private=x[:1000, None],
             y_private=y[:1000])
    return d


@pytest.fixture
def cnn_bundle(tmp_path) -> bytes:
    cnn = Sequential(Conv2d(1, 16, 5, seed=0), ReLU(), MaxPool2d(2), Flatten(), Linear(16 * 12 * 12, 10, seed=1))
    B.pack(cnn, tmp_path / "cnn.ttb", "vision", "ada", input_shape=(1, 28, 28))
    return (tmp_path / "cnn.ttb").read_bytes()


def wait_running(engine, ids, worker_pid):
    """The id being evaluated and the worker's sandbox processes, once an evaluation runs."""
    from tito.olympics import db

    end = time.monotonic() + 60
    while time.monotonic() < end:
        running = [s for s in ids if db.get_submission(engine, s).status == "running"]
        sandbox = children(worker_pid)
        if running and sandbox:
            return running[0], sandbox
        time.sleep(0.01)
    raise AssertionError("no evaluation started within 60 s")


def start_worker(url, eval_dir, log):
    return subprocess.Popen(cli_cmd("worker", "--db", url, "--eval-data", eval_dir), stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def test_a_killed_worker_resumes_and_a_killed_server_keeps_everything(tmp_path, make_server, slow_eval_dir,
                                                                      ridge, cnn_bundle):
    from tito.olympics import db

    srv = make_server("--no-worker")
    engine = db.connect(srv.url)
    token = db.add_user(engine, "ada", daily_limit=100)
    srv.start()
    ids = [srv.submit(cnn_bundle, token).json()["id"] for _ in range(3)]

    log = open(tmp_path / "worker.log", "ab")
    worker = start_worker(srv.url, slow_eval_dir, log)
    try:
        # wait until the worker is in the middle of an evaluation, its sandbox running
        interrupted_id, sandbox = wait_running(engine, ids, worker.pid)
        running = [interrupted_id]
        killed_pid = worker.pid
        assert list(Path(tempfile.gettempdir()).glob(f"olympics-eval-{killed_pid}-*"))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        t_kill = time.monotonic()
        while any(alive(p) for p in sandbox) and time.monotonic() < t_kill + 10:
            time.sleep(0.05)
        assert not any(alive(p) for p in sandbox), "the sandboxed evaluation outlived its worker"
        interrupted = db.get_submission(engine, running[0])
        assert (interrupted.status, interrupted.evaluations) == ("running", 0)

        t0 = time.monotonic()
        worker = start_worker(srv.url, slow_eval_dir, log)
        end = time.monotonic() + 60                       # it holds the lock once it says so
        while (tmp_path / "worker.log").read_text().count("back in the queue") < 2 and time.monotonic() < end:
            time.sleep(0.05)
        second = subprocess.run(cli_cmd("worker", "--db", srv.url, "--eval-data", slow_eval_dir),
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert second.returncode == 2 and "another worker is already evaluating" in second.stderr
        assert srv.wait_idle(timeout=120) == {"done": 3}
        t_resume = time.monotonic() - t0
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    assert worker.returncode == 0                                            # a clean stop on SIGTERM
    rows = {s: db.get_submission(engine, s) for s in ids}
    assert rows[running[0]].attempts == 2 and all(r.evaluations == 1 for r in rows.values())
    assert all(r.attempts == 1 for s, r in rows.items() if s != running[0])
    assert "1 interrupted evaluation(s) back in the queue" in (tmp_path / "worker.log").read_text()
    assert not list(Path(tempfile.gettempdir()).glob(f"olympics-eval-{killed_pid}-*"))   # its files too

    # the server killed (SIGKILL) while submissions arrive: every acknowledged one survives
    B.pack(linear_model(*ridge), tmp_path / "lin.ttb", "vision", "ada", input_shape=(1, 28, 28))
    data = (tmp_path / "lin.ttb").read_bytes()
    acked, lock = [srv.submit(data, token).json()["id"] for _ in range(5)], threading.Lock()

    def send():
        try:
            r = srv.submit(data, token)
        except Exception:                       # the connection died with the server
            return
        if r.status_code == 201:
            with lock:
                acked.append(r.json()["id"])
    threads = [threading.Thread(target=send) for _ in range(25)]
    for t in threads:
        t.start()
    end = time.monotonic() + 20
    while len(acked) < 8 and time.monotonic() < end:       # some of the burst are in, others in flight
        time.sleep(0.005)
    srv.stop(signal.SIGKILL)
    for t in threads:
        t.join()
    srv.start()                                                              # same database file
    for sid in ids + acked:
        r = srv.get(f"/api/submissions/{sid}", token=token)
        assert r.status_code == 200, (sid, r.text)
    stored = {r.id: r for r in db.all_submissions(engine)}
    assert set(ids + acked) <= set(stored)
    assert len({stored[s].bundle_sha256 for s in acked}) == 1 and len(acked) >= 8
    assert all(stored[s].status == "done" for s in ids)
    print(f"\nfaults: worker killed mid-evaluation, all 3 done {t_resume:.1f} s after its restart; "
          f"server killed mid-burst: {len(acked)} of 30 acknowledged, all {len(acked)} kept "
          f"({len(stored) - len(ids)} stored); load average {load_average():.1f}")


def test_serve_starts_a_dead_worker_again(tmp_path, make_server, slow_eval_dir, cnn_bundle):
    from tito.olympics import db

    srv = make_server(eval_dir=slow_eval_dir)
    engine = db.connect(srv.url)
    token = db.add_user(engine, "ada")
    srv.start()
    ids = [srv.submit(cnn_bundle, token).json()["id"] for _ in range(2)]
    (worker_pid,) = children(srv.proc.pid)
    interrupted, sandbox = wait_running(engine, ids, worker_pid)
    os.kill(worker_pid, signal.SIGKILL)
    assert srv.wait_idle(timeout=120) == {"done": 2}
    assert db.get_submission(engine, interrupted).attempts == 2
    assert all(db.get_submission(engine, s).evaluations == 1 for s in ids)
    assert not any(alive(p) for p in sandbox)
    assert "the worker exited (code -9); starting it again" in srv.log.read_text()
