"""Integration tests of module 07 on the exported package (tinytorch.* only)."""
import numpy as np

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.training import (
    Trainer,
    batches,
    evaluate,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    save_state_dict,
    train_epoch,
)


def test_xor_is_solved_by_two_layers():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    for seed in range(3):
        model = Sequential(Linear(2, 8, seed=seed), Tanh(), Linear(8, 1, seed=seed + 100), Sigmoid())
        opt = Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            train_epoch(model, opt, BinaryCrossEntropyLoss(), [(x, y)])
        assert evaluate(model, BinaryCrossEntropyLoss(), [(x, y)])["accuracy"] == 1.0, f"seed {seed}"


def test_trainer_checkpoint_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)    # 3 classes
    model = Sequential(Linear(10, 32, seed=0), ReLU(), Linear(32, 3, seed=1))
    opt = Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, opt, CrossEntropyLoss(), max_grad_norm=5.0)
    hist = trainer.fit(lambda e: batches(x, y, 32, shuffle=True, seed=e), 8, val_data=[(x, y)], progress=False)
    assert hist[-1]["val"]["accuracy"] > 0.85
    path = save_checkpoint(tmp_path / "c.npz", model, opt, epoch=trainer.epoch)
    clone = Sequential(Linear(10, 32, seed=5), ReLU(), Linear(32, 3, seed=6))
    assert load_checkpoint(path, clone)["epoch"] == 8
    assert evaluate(clone, CrossEntropyLoss(), [(x, y)]) == evaluate(model, CrossEntropyLoss(), [(x, y)])
    save_state_dict(model.state_dict(), tmp_path / "w.npz")
    assert set(load_state_dict(tmp_path / "w.npz")) == set(model.state_dict())
