"""Certified radii by the C++ rule (certify::certified_radius): the network evaluated in float64,
margins reduced by the float64 rounding slack, the per-pair rule for a NormalizedLinear head."""
import math

import torch

from . import _bridge

_ops = torch.ops.lipkit


def _norm(norm):
    if norm not in ("l2", "linf"):
        raise ValueError(f"lipkit: norm must be l2 or linf, got '{norm}'")
    return norm


def _labels(x, y):
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("lipkit: x and y must be tensors")
    if y.dim() != 1 or y.numel() != x.size(0):
        raise ValueError(f"lipkit: y must hold one label per input, got x {list(x.shape)} and y {list(y.shape)}")
    return y.long()


def certified_radius(model, x, y, norm="l2", bound=None):
    """Per-point certified radius (float64; 0 where the prediction is wrong). A point is certified at
    r iff its radius is > r. bound: a proven whole-model Lipschitz bound replacing the layers' own
    (e.g. lipkit.lipschitz.upper_bound(...)["bound"] for an ordinary network)."""
    description, names, tensors = _bridge.to_cpp(model)
    return _ops.py_certified_radius(description, names, tensors, x, _labels(x, y), _norm(norm), float(bound or 0.0))


def default_radii(norm, channels):
    if norm == "l2":
        return [36 / 255, 72 / 255, 108 / 255, 1.0]
    return [0.1, 0.3] if channels == 1 else [2 / 255, 8 / 255]


def certify(model, x, y, norm="l2", radii=None, bound=None):
    """{"clean": accuracy, "certified": {radius: certified accuracy}, "radius": per-point radii}."""
    r = certified_radius(model, x, y, norm, bound)
    radii = radii if radii is not None else default_radii(norm, x.size(1))
    with torch.no_grad():
        clean = (r > 0).double().mean().item() if r.numel() else math.nan
    return {"clean": clean, "certified": {float(e): (r > e).double().mean().item() for e in radii}, "radius": r}


def certificate(model, norm="l2"):
    """The Lipschitz bound certify uses: of everything but a NormalizedLinear head (or the model)."""
    description, names, tensors = _bridge.to_cpp(model)
    return _ops.py_body_bound(description, names, tensors, _norm(norm))
