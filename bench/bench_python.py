"""Python training step (lipkit.nn modules, torch autograd, torch.optim) vs the C++ trainer's step on
the same model, batch and data shape, alternating in one process (same threads, same machine state).
Run alone: PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--presets cpl-s,sll-s]
[--batch 256] [--steps 5] [--rounds 2]"""
import argparse
import statistics
import time

import torch

import lipkit
from lipkit import _bridge


def python_throughput(model, shape, steps):
    x, y = torch.rand(shape), torch.randint(0, 10, (shape[0],))
    model.eval()
    with torch.no_grad():
        model(x)
        model(x)
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        infer = shape[0] * steps / (time.perf_counter() - t0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return shape[0] * steps / (time.perf_counter() - t0), infer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="cpl-s,sll-s")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    print(f"{torch.get_num_threads()} threads, batch {a.batch}, {a.steps} timed steps, medians of {a.rounds} alternating rounds")
    print(f"{'preset':8} {'C++ train':>10} {'Py train':>10} {'Py/C++':>7} {'C++ infer':>10} {'Py infer':>10} {'Py/C++':>7}")
    for name in a.presets.split(","):
        shape = [a.batch, 3, 32, 32]
        cpp, py = [], []
        for _ in range(a.rounds):
            model = lipkit.models.preset(name, seed=0)
            description, names, tensors = _bridge.to_cpp(model)
            cpp.append(torch.ops.lipkit.py_measure_throughput(description, names, tensors, shape, a.steps))
            py.append(python_throughput(lipkit.models.preset(name, seed=0), shape, a.steps))
        ct, ci = (statistics.median(v) for v in zip(*cpp))
        pt, pi = (statistics.median(v) for v in zip(*py))
        print(f"{name:8} {ct:10.1f} {pt:10.1f} {pt / ct:6.2f}x {ci:10.1f} {pi:10.1f} {pi / ci:6.2f}x")


if __name__ == "__main__":
    main()
