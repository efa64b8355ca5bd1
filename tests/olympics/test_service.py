"""The service end to end: an instructor's flow with the CLI, the page in a real headless
Chromium, the four tracks, the gates, the daily limit, the reveal of the private split."""
from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest

from olympics.helpers import N_EVAL, cli, expected_accuracy, linear_model, noisy
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Flatten
from tinytorch.models.transformer import GPT
from tito.olympics import bundle as B

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_rows(url: str, profile) -> dict:
    """The leaderboard page as Chromium renders it with JavaScript off:
    track -> [(pseudonym, score text), ...]."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) is not installed")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=exe, args=CHROMIUM_FLAGS,
                                                   headless=True, java_script_enabled=False)
        try:
            page = ctx.new_page()
            page.goto(url)
            assert page.title() == "TinyTorch AI Olympics"
            out = {}
            for track in ("vision", "language", "speed", "compression"):
                rows = page.locator(f"#track-{track} tr.entry")
                out[track] = [(rows.nth(i).locator("td.pseudonym").inner_text(),
                               rows.nth(i).locator("td.score").inner_text()) for i in range(rows.count())]
            return out
        finally:
            ctx.close()


def test_instructor_flow_cli_submissions_and_the_page_in_chromium(tmp_path, make_server, eval_dir, ridge, digits):
    srv = make_server(eval_dir=eval_dir)
    tokens = {name: cli("admin", "add-user", name, "--db", srv.url).stdout.strip() for name in ("ada", "bob")}
    prof = cli("admin", "add-user", "prof", "--admin", "--db", srv.url).stdout.strip()
    assert "ada\tstudent" in cli("admin", "list-users", "--db", srv.url).stdout
    srv.start()
    _, (x, y) = digits
    models = {"ada": ridge, "bob": noisy(ridge, 1.0, seed=1)}
    for name, (W, b) in models.items():
        B.pack(linear_model(W, b), tmp_path / f"{name}.ttb", "vision", f"{name}-net",
               {"accuracy": 0.99}, input_shape=(1, 28, 28))
        r = cli("submit", tmp_path / f"{name}.ttb", "--server", srv.base, "--token", tokens[name], "--wait",
                "--timeout", "60")
        assert "evaluated: score" in r.stdout
    public = {n: expected_accuracy(W, b, x[:N_EVAL], y[:N_EVAL]) for n, (W, b) in models.items()}
    private = {n: expected_accuracy(W, b, x[N_EVAL:2 * N_EVAL], y[N_EVAL:2 * N_EVAL]) for n, (W, b) in models.items()}
    assert public["ada"] >= 0.75 and public["ada"] > public["bob"], public

    board = srv.get("/api/leaderboard/vision").json()
    assert board["split"] == "public"
    assert [(e["pseudonym"], e["score"]) for e in board["entries"]] == [
        ("ada-net", public["ada"]), ("bob-net", public["bob"])]
    assert board["entries"][0]["reported_locally"] == {"accuracy": 0.99}      # shown, not ranked
    assert "user" not in board["entries"][0]                                  # pseudonyms only

    rows = chromium_rows(srv.base + "/", tmp_path / "chromium-profile")
    assert rows["vision"] == [("ada-net", f"{100 * public['ada']:.1f} %"), ("bob-net", f"{100 * public['bob']:.1f} %")]
    assert rows["speed"] == rows["language"] == rows["compression"] == []

    # instructors: CSV export (not for students), OpenAPI docs
    assert srv.get("/api/export.csv", token=tokens["ada"]).status_code == 403
    table = list(csv.DictReader(io.StringIO(srv.get("/api/export.csv", token=prof).text)))
    assert sorted((r["user"], r["status"]) for r in table) == [("ada", "done"), ("bob", "done")]
    spec = srv.get("/openapi.json").json()
    assert "/api/leaderboard/{track}" in spec["paths"] and "/api/submissions" in spec["paths"]
    assert srv.get("/docs").status_code == 200

    # end of the competition: the private split ranks
    cli("admin", "reveal", "--db", srv.url)
    board = srv.get("/api/leaderboard/vision").json()
    assert board["split"] == "private"
    assert sorted((e["pseudonym"], e["score"]) for e in board["entries"]) == sorted(
        [("ada-net", private["ada"]), ("bob-net", private["bob"])])


def test_tracks_gates_failures_and_the_daily_limit(tmp_path, make_server, eval_dir, ridge, digits):
    from tito.olympics import db

    srv = make_server(eval_dir=eval_dir)
    engine = db.connect(srv.url)
    ada = db.add_user(engine, "ada", daily_limit=3)
    bob = db.add_user(engine, "bob")
    srv.start()
    _, (x, y) = digits
    bad = noisy(ridge, 6.0, seed=2)
    assert expected_accuracy(*bad, x[:N_EVAL], y[:N_EVAL]) < 0.5           # below the floor

    def bundle(name, model, track, **kw):
        kw.setdefault("input_shape", (1, 28, 28))
        B.pack(model, tmp_path / name, track, name.split(".")[0], **kw)
        return (tmp_path / name).read_bytes()
    sent = {
        "ada-speed.ttb": (ada, bundle("ada-speed.ttb", linear_model(*ridge), "speed")),
        "bob-speed.ttb": (bob, bundle("bob-speed.ttb", linear_model(*bad), "speed")),
        "ada-small.ttb": (ada, bundle("ada-small.ttb", linear_model(*ridge), "compression", encoding="int8")),
        "bob-big.ttb": (bob, bundle("bob-big.ttb", linear_model(*ridge), "compression")),
        "bob-gpt.ttb": (bob, bundle("bob-gpt.ttb", GPT(96, 64, 1, 2, 16, seed=0), "language",
                                    input_shape=None, chars=[chr(c) for c in range(32, 127)] + ["\n"])),
        "ada-wrong.ttb": (ada, bundle("ada-wrong.ttb", Sequential(Flatten(), Linear(768, 10)), "vision",
                                      input_shape=(3, 16, 16))),
    }
    ids = {}
    for name, (token, data) in sent.items():
        r = srv.submit(data, token)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    r = srv.submit(sent["ada-speed.ttb"][1], bob)                         # bob as "ada-speed"
    assert r.status_code == 409 and "belongs to another participant" in r.json()["detail"]
    r = srv.submit(sent["ada-speed.ttb"][1], ada)                         # her 4th today
    assert r.status_code == 429 and "daily limit reached: 3 of 3" in r.json()["detail"]
    assert srv.wait_idle() == {"done": 5, "failed": 1}

    speed = srv.get("/api/leaderboard/speed").json()["entries"]
    assert [e["pseudonym"] for e in speed] == ["ada-speed"]               # bob's is under the floor
    assert speed[0]["score"] > 0
    res = srv.get(f"/api/submissions/{ids['bob-speed.ttb']}", token=bob).json()
    assert res["status"] == "done" and res["score_public"] is None
    assert res["result"]["public"]["eligible"] is False and res["result"]["latency_images"] == 20
    assert res["result"]["load_average"] >= 0
    comp = srv.get("/api/leaderboard/compression").json()["entries"]
    assert [(e["pseudonym"], e["score"]) for e in comp] == [
        ("ada-small", len(sent["ada-small.ttb"][1])), ("bob-big", len(sent["bob-big.ttb"][1]))]
    lang = srv.get("/api/leaderboard/language").json()["entries"]
    assert [e["pseudonym"] for e in lang] == ["bob-gpt"] and lang[0]["accuracy"] is not None
    res = srv.get(f"/api/submissions/{ids['ada-wrong.ttb']}", token=ada).json()
    assert res["status"] == "failed" and "the bundle's input.shape is [3, 16, 16]" in res["error"]
    # a student sees only their own submissions
    assert srv.get(f"/api/submissions/{ids['ada-wrong.ttb']}", token=bob).status_code == 404
    assert {r.sandbox for r in db.all_submissions(engine)} <= {"bwrap+rlimits", "rlimits"}


def test_language_track_on_a_text_ranks_by_validation_loss(tmp_path, make_server):
    from tinytorch.core.autograd import no_grad
    from tito.olympics import db

    text = "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer"
    T = 16
    pub, priv = text[:T + 1], text[T + 1:2 * T + 2]          # one window of the block size each
    ev = tmp_path / "text-eval"
    ev.mkdir()
    np.savez(ev / "language.npz", text_public=np.array(pub), text_private=np.array(priv))
    chars = sorted(set(text))
    srv = make_server(eval_dir=ev)
    engine = db.connect(srv.url)
    tokens = {n: db.add_user(engine, n) for n in ("ada", "bob")}
    srv.start()

    def loss(model, s):                                       # computed here, from the logits
        ids = np.array([[chars.index(c) for c in s]])
        with no_grad():
            logits = model(ids[:, :-1]).data[0].astype(np.float64)
        logp = logits - logits.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        return float(-logp[np.arange(T), ids[0, 1:]].mean())
    expected = {}
    for seed, name in enumerate(tokens):
        g = GPT(len(chars), T, 1, 2, 16, seed=seed)
        B.pack(g, tmp_path / f"{name}.ttb", "language", name, chars=chars)
        assert srv.submit((tmp_path / f"{name}.ttb").read_bytes(), tokens[name]).status_code == 201
        expected[name] = loss(g, pub)
    assert srv.wait_idle() == {"done": 2}
    board = srv.get("/api/leaderboard/language").json()
    assert board["metric"] == "val_loss" and board["higher_is_better"] is False
    got = [(e["pseudonym"], e["score"]) for e in board["entries"]]
    assert [n for n, _ in got] == sorted(expected, key=expected.get)            # lowest loss first
    for name, score in got:
        assert score == pytest.approx(expected[name], rel=1e-6)
    page = srv.get("/").text
    assert "Language: Shakespeare validation loss" in page and f"{expected[got[0][0]]:.3f} nats/char" in page
