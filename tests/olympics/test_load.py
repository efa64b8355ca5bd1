"""Load: 50 submissions sent at once by 10 users. None is lost, each is evaluated exactly
once, and the leaderboard ranks each user's best, as NumPy alone computes it."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from olympics.helpers import N_EVAL, expected_accuracy, linear_model, noisy
from tito.machine import load_average
from tito.olympics import bundle as B


def test_50_concurrent_submissions_from_10_users(tmp_path, make_server, eval_dir, ridge, digits):
    from tito.olympics import db

    srv = make_server(eval_dir=eval_dir)
    engine = db.connect(srv.url)
    tokens = [db.add_user(engine, f"user{u}") for u in range(10)]
    srv.start()
    _, (x, y) = digits
    jobs = []
    for u in range(10):
        for k in range(5):
            W, b = noisy(ridge, 0.3 + 0.1 * ((3 * u + k) % 8), seed=10 * u + k)
            path = tmp_path / f"u{u}-{k}.ttb"
            B.pack(linear_model(W, b), path, "vision", f"u{u}", input_shape=(1, 28, 28))
            jobs.append((u, path.read_bytes(), expected_accuracy(W, b, x[:N_EVAL], y[:N_EVAL])))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda job: srv.submit(job[1], tokens[job[0]]), jobs))
    t_submit = time.perf_counter() - t0
    assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses if r.status_code != 201]
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 50
    assert srv.wait_idle(timeout=300) == {"done": 50}
    t_all = time.perf_counter() - t0

    rows = {r.id: r for r in db.all_submissions(engine)}
    assert sorted(rows) == sorted(ids)                                        # none lost, none extra
    for sid, (u, data, acc) in zip(ids, jobs):
        r = rows[sid]
        assert (r.attempts, r.evaluations, r.user, r.bundle_bytes) == (1, 1, f"user{u}", len(data))
        assert r.score_public == acc, (sid, r.score_public, acc)
    best = {f"u{u}": max(acc for uu, _, acc in jobs if uu == u) for u in range(10)}
    board = srv.get("/api/leaderboard/vision").json()["entries"]
    assert {e["pseudonym"]: e["score"] for e in board} == best
    assert [e["score"] for e in board] == sorted(best.values(), reverse=True)
    assert [e["rank"] for e in board] == list(range(1, 11)) and {e["submissions"] for e in board} == {5}
    print(f"\nload: 50 submissions accepted in {t_submit:.2f} s, all evaluated after {t_all:.1f} s "
          f"({(t_all - t_submit) / 50:.2f} s per evaluation); load average {load_average():.1f}")
