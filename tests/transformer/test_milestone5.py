"""Milestone 5's building blocks (milestones/05_transformer/transformer.py), on tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest

from tito.milestones import load_milestone


@pytest.fixture(scope="module")
def ms(manifest):
    return load_milestone("transformer", manifest)


def test_lr_schedule_matches_nanogpt(ms):
    assert ms.lr_at(0, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-3 / 101)
    assert ms.lr_at(100, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-3)
    assert ms.lr_at(1050, 1e-3, 1e-4, 100, 2000) == pytest.approx(5.5e-4)
    assert ms.lr_at(2000, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-4)


def test_module_10s_char_tokenizer_round_trip_and_unknown(ms):
    from tinytorch.text.tokenization import CharTokenizer
    v = ms.char_tokenizer("hello\n")
    assert isinstance(v, CharTokenizer) and len(v) == 4 + 5   # 4 special tokens, then h e l o \n
    ids = ms.encode(v, "hello\n")
    assert ids.dtype == np.int64 and v.decode(ids) == "hello\n"
    assert v.decode(ms.encode(v, "hex")) == "he<unk>"


def test_lm_loss_skips_ignored_targets(ms):
    from tinytorch import Tensor
    from tinytorch.nn import CrossEntropyLoss
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((2, 3, 5)).astype(np.float32))   # (B, T, V)
    y = np.array([[1, 2, 3], [4, 0, 1]])
    full = ms.lm_loss(logits, Tensor(y)).item()
    assert full == pytest.approx(CrossEntropyLoss()(logits.reshape(6, 5), y.reshape(6)).item())
    masked = np.where([[True, False, True], [False, False, True]], y, ms.IGNORE)
    keep = logits.data.reshape(6, 5)[[0, 2, 5]]
    assert ms.lm_loss(logits, Tensor(masked)).item() == pytest.approx(
        CrossEntropyLoss()(Tensor(keep), y.reshape(6)[[0, 2, 5]]).item())


def test_tinytalks_pairs_and_batched_greedy_answers(ms):
    train, val, test = ms.load_pairs()
    assert len(train) > 2000 and len(test) > 250
    assert not {q for q, _, _ in train} & {q for q, _, _ in test}, "a test question is in train"
    vocab = ms.char_tokenizer([chr(c) for c in range(32, 127)] + ["\n"])
    from tinytorch.models.transformer import GPT
    model = GPT(len(vocab), 96, 1, 1, 8, seed=0)
    qs = [q for q, _, _ in test[:6]]
    answers = ms.answer_questions(model, vocab, qs, max_new=4)
    assert len(answers) == 6 and all(isinstance(a, str) and len(a) <= 4 for a in answers)
    # batching by length gives the same answers as one question at a time
    assert answers == [ms.answer_questions(model, vocab, [q], max_new=4)[0] for q in qs]
    assert ms.answer_matches("Hello, Ada!", "hello ada") and not ms.answer_matches("7", "8")


def test_nanogpt_recipe_on_module_06_groups_and_module_07_train_steps(ms, capsys):
    """Two AdamW groups (decay on matrices only), the per-step schedule, module 07's loop."""
    from tinytorch.models.transformer import GPT
    model = GPT(11, 8, 1, 1, 8, seed=0)
    opt = ms.make_optimizer(model, 1e-3, 0.1, (0.9, 0.99))
    decay, rest = opt.param_groups
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in rest["params"])
    assert len(opt.params) == len(model.parameters())
    rng = np.random.default_rng(0)
    batch = lambda: (rng.integers(0, 11, (2, 8)), rng.integers(0, 11, (2, 8)))   # noqa: E731
    history, secs = ms.train(model, batch, 6, lr=1e-2, min_lr=1e-3, warmup=2, eval_every=4,
                             eval_fn=lambda: {"val": 1.0}, log_every=5, label="t")
    assert [it for it, _ in history] == [0, 4, 6] and secs > 0
    printed = capsys.readouterr().out
    assert "[t] iter     5  loss" in printed and "ms/iter" in printed and "val 1.0000" in printed
