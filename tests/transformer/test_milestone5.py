"""Milestone 5's building blocks (milestones/05_transformer/transformer.py), on tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ms(manifest):
    return manifest.load_milestone("transformer")


def test_lr_schedule_matches_nanogpt(ms):
    assert ms.lr_at(0, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-3 / 101)
    assert ms.lr_at(100, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-3)
    assert ms.lr_at(1050, 1e-3, 1e-4, 100, 2000) == pytest.approx(5.5e-4)
    assert ms.lr_at(2000, 1e-3, 1e-4, 100, 2000) == pytest.approx(1e-4)


def test_char_vocab_round_trip_and_unknown(ms):
    v = ms.CharVocab("hello?\n")
    assert v.decode(v.encode("hello\n")) == "hello\n"
    assert v.decode(v.encode("hex")) == "he?"


def test_clip_grad_norm_scales_to_max(ms):
    from tinytorch.core.tensor import Tensor
    p = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    p.grad = Tensor(np.array([3.0, 4.0], dtype=np.float32))
    assert ms.clip_grad_norm([p], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8], rtol=1e-5)
    assert p.grad.data.dtype == np.float32


def test_tinytalks_pairs_and_batched_greedy_answers(ms):
    train, val, test = ms.load_pairs()
    assert len(train) > 2000 and len(test) > 250
    assert not {q for q, _, _ in train} & {q for q, _, _ in test}, "a test question is in train"
    vocab = ms.CharVocab([chr(c) for c in range(32, 127)] + ["\n"])
    from tinytorch.models.transformer import GPT
    model = GPT(len(vocab), 96, 1, 1, 8, seed=0)
    qs = [q for q, _, _ in test[:6]]
    answers = ms.answer_questions(model, vocab, qs, max_new=4)
    assert len(answers) == 6 and all(isinstance(a, str) and len(a) <= 4 for a in answers)
    # batching by length gives the same answers as one question at a time
    assert answers == [ms.answer_questions(model, vocab, [q], max_new=4)[0] for q in qs]
    assert ms.answer_matches("Hello, Ada!", "hello ada") and not ms.answer_matches("7", "8")
