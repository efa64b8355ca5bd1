"""The service on PostgreSQL: migrations, submissions, ranking and a restart, on a real
server that this test starts (Debian's postgresql; skipped, saying so, without it)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

import pytest

from olympics.helpers import N_EVAL, expected_accuracy, free_port, linear_model, noisy
from tito.olympics import bundle as B


@pytest.fixture
def postgres_url(service):
    pytest.importorskip("psycopg", reason="the PostgreSQL test needs psycopg (test extra)")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server installed (.ci/run installs Debian's postgresql)")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' system user to run the server as")
    bindir = os.path.dirname(found[-1])
    root = tempfile.mkdtemp(prefix="olympics-pg-")
    os.chown(root, user.pw_uid, user.pw_gid)
    port = free_port()

    def as_postgres(*cmd):
        r = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL) if os.geteuid() == 0 else \
            subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
    data = os.path.join(root, "data")
    as_postgres(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    as_postgres(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_the_service_on_postgresql(postgres_url, tmp_path, make_server, eval_dir, ridge, digits):
    from tito.olympics import db

    srv = make_server(eval_dir=eval_dir)
    srv.url = postgres_url
    engine = db.connect(postgres_url)
    tokens = {n: db.add_user(engine, n) for n in ("ada", "bob")}
    srv.start()
    _, (x, y) = digits
    models = {"ada": noisy(ridge, 0.8, seed=5), "bob": ridge}
    for name, (W, b) in models.items():
        B.pack(linear_model(W, b), tmp_path / f"{name}.ttb", "vision", name, input_shape=(1, 28, 28))
        assert srv.submit((tmp_path / f"{name}.ttb").read_bytes(), tokens[name]).status_code == 201
    assert srv.wait_idle() == {"done": 2}
    expected = sorted(((expected_accuracy(W, b, x[:N_EVAL], y[:N_EVAL]), n) for n, (W, b) in models.items()),
                      reverse=True)
    board = [(e["score"], e["pseudonym"]) for e in srv.get("/api/leaderboard/vision").json()["entries"]]
    assert board == expected
    srv.stop(signal.SIGKILL)
    srv.start()
    assert [(e["score"], e["pseudonym"]) for e in srv.get("/api/leaderboard/vision").json()["entries"]] == board
    engine.dispose()
