"""Export to TorchScript with the weights folded and the certificate attached (deploy/export.h)."""
import json
import os

import torch

from . import _bridge

_ops = torch.ops.lipkit


def _input_shape(model):
    spec = getattr(model, "lipkit_spec", None)
    if spec is None:
        return None
    if spec.get("family") in ("monotonic",):
        return [spec["in_channels"]]
    return [spec["in_channels"], spec["image_size"], spec["image_size"]]


def export(model, path, input_shape=None, norm="", vanilla=False):
    """Writes a TorchScript archive of the eval-mode model (torch.jit.load reads it; with vanilla=True
    it needs no lipkit operators) and returns its certificate: {"lipschitz_bound", "norm", "rule",
    "margin_slack", ...}, also stored as the archive's attributes."""
    shape = list(input_shape) if input_shape is not None else _input_shape(model)
    if not shape:
        raise ValueError("lipkit.export: input_shape is needed ((C, H, W) or (F,)) for a model not built from a preset")
    description, names, tensors = _bridge.to_cpp(model)
    return json.loads(_ops.py_export(description, names, tensors, os.fspath(path), [int(s) for s in shape], norm,
                                     bool(vanilla)))
