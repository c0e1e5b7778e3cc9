"""lipkit from Python: train a small SLL network a few steps on Fashion-MNIST, certify it, save a
checkpoint the CLI reads, and export it to TorchScript. Run: PYTHONPATH=build/python /usr/bin/python3
python/examples/quickstart.py [out_dir]"""
import sys
import time

import torch

import lipkit

out = sys.argv[1] if len(sys.argv) > 1 else "."
torch.manual_seed(0)
x_train, y_train, classes = lipkit.data.load("fashion-mnist", "train")
x_test, y_test, _ = lipkit.data.load("fashion-mnist", "test")
model = lipkit.models.preset("sll-fmnist", in_channels=1, image_size=28, num_classes=classes,
                             mean=[float(x_train.mean())])
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
start = time.time()
model.train()
for step in range(30):
    idx = torch.randint(0, len(y_train), (128,))
    logits = model(x_train[idx])
    loss = torch.nn.functional.cross_entropy(logits, y_train[idx])  # the CLI's default is the certifying loss
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"trained 30 steps in {time.time() - start:.1f} s, last loss {loss.item():.3f}")

model.eval()
report = lipkit.certify(model, x_test[:1000], y_test[:1000])  # l2, float64, the C++ rule
print(f"clean {100 * report['clean']:.1f}%, certified " +
      ", ".join(f"{100 * a:.1f}% at {r:.3f}" for r, a in report["certified"].items()))

lipkit.save(model, f"{out}/sll.pt", {"data": "fashion-mnist"})  # lipkit certify --checkpoint sll.pt
cert = lipkit.export(model, f"{out}/sll.ts", vanilla=True)        # loads with plain torch.jit.load
ts = torch.jit.load(f"{out}/sll.ts")
same = torch.allclose(ts(x_test[:8]), model(x_test[:8]), atol=1e-4)
print(f"exported: Lipschitz bound {ts.lipschitz_bound} ({ts.norm}, rule {ts.rule}), logits match: {same}")
