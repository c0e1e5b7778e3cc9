"""Attacks (the C++ certify::pgd_attack)."""
import torch

from . import _bridge
from .certify import _labels, _norm

_ops = torch.ops.lipkit


def pgd(model, x, y, eps, norm="l2", steps=50, step_size=0.0, random_start=True, seed=0):
    """Projected gradient ascent on the margin inside the eps-ball (clipped to [0, 1]); returns the
    adversarial inputs (per point, the iterate with the largest margin seen)."""
    if not eps >= 0:
        raise ValueError(f"lipkit.attack.pgd: eps must be >= 0, got {eps}")
    description, names, tensors = _bridge.to_cpp(model)
    return _ops.py_pgd(description, names, tensors, x, _labels(x, y), _norm(norm), float(eps), int(steps),
                       float(step_size), bool(random_start), int(seed))
