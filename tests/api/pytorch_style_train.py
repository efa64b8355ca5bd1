"""A training script written the way a PyTorch user writes one; tests/api/test_pytorch_style.py
runs it unchanged (``python pytorch_style_train.py OUT_DIR``) and checks that it learns.

Swap ``tinytorch`` for ``torch`` in the imports (and ``tinytorch.data.datasets`` for your own
loader) and the rest of the script is PyTorch.
"""
import json
import sys

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
import tinytorch.optim as optim
from tinytorch.data.datasets import load_tinydigits
from tinytorch.utils.data import DataLoader, TensorDataset

tinytorch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.fc2 = nn.Linear(64, 10)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        x = x.view(x.size(0), -1)                 # (B, 28, 28) -> (B, 784)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with tinytorch.no_grad():
        for x, y in loader:
            pred = model(x.float() / 255).argmax(dim=1)
            correct += (pred == y).sum().item()
            total += y.size(0)
    model.train()
    return correct / total


(x_train, y_train), (x_test, y_test) = load_tinydigits()
train_loader = DataLoader(TensorDataset(x_train[:2000], y_train[:2000]), batch_size=64, shuffle=True)
test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=500)

model = Net()
optimizer = optim.Adam(model.parameters(), lr=1e-3)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)

before = evaluate(model, test_loader)
epoch_losses = []
for epoch in range(3):
    total = 0.0
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x.float() / 255), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    scheduler.step()
    epoch_losses.append(total / len(train_loader))
after = evaluate(model, test_loader)

path = f"{sys.argv[1]}/net.npz"
tinytorch.save(model.state_dict(), path)
restored = Net()
restored.load_state_dict(tinytorch.load(path))
same = evaluate(restored, test_loader) == after

print(json.dumps({"before": before, "after": after, "epoch_losses": epoch_losses, "restored_same": same,
                  "dtype": str(model(tinytorch.zeros(2, 28, 28)).dtype)}))
