"""Hostile and broken input to the running service: each refused with a clear error, nothing
stored, the service still up and still evaluating."""
from __future__ import annotations

from olympics.helpers import bad_bundles, cli, linear_model
from tito.olympics import bundle as B


def test_bad_input_is_refused_nothing_is_stored_and_the_service_stays_up(tmp_path, make_server, eval_dir, ridge):
    from tito.olympics import db

    srv = make_server("--max-upload-mb", "1", eval_dir=eval_dir)
    engine = db.connect(srv.url)
    token = db.add_user(engine, "ada")
    srv.start()
    B.pack(linear_model(*ridge), tmp_path / "good.ttb", "vision", "ada", input_shape=(1, 28, 28))
    good = (tmp_path / "good.ttb").read_bytes()

    refusals = {}
    for name, (make, fragment) in bad_bundles(good).items():
        r = srv.submit(make(), token)
        refusals[name] = (r.status_code, r.json()["detail"])
        assert r.status_code == 422 and fragment in r.json()["detail"], (name, r.status_code, r.text)
    r = srv.submit(good, None)
    assert r.status_code == 401 and "missing token" in r.json()["detail"]
    r = srv.submit(good, "not-a-token")
    assert r.status_code == 401 and "unknown token" in r.json()["detail"]
    r = srv.submit(good, "x", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    r = srv.submit(good + bytes(2 * 1024 * 1024), token)                # 2 MB, the limit is 1 MB
    assert r.status_code == 413 and "larger than the limit" in r.json()["detail"]
    # the limit holds when the client sends no Content-Length either (chunked upload)
    r = srv.submit(iter([bytes(512 * 1024)] * 4), token)
    assert r.status_code == 413, r.text
    # the command line checks the bundle before sending it
    (tmp_path / "bad.ttb").write_bytes(bad_bundles(good)["NaN array"][0]())
    out = cli("submit", tmp_path / "bad.ttb", "--server", srv.base, "--token", token, check=False)
    assert out.returncode == 1 and "NaN" in out.stderr

    assert srv.get("/healthz").json() == {"ok": True, "submissions": {}}        # nothing stored
    assert db.all_submissions(engine) == [] and [u.name for u in db.list_users(engine)] == ["ada"]
    # still up, and still evaluating
    r = srv.submit(good, token)
    assert r.status_code == 201
    assert srv.wait_idle() == {"done": 1}
