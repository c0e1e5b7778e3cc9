"""Export to TorchScript with the weights folded and the certificate attached (deploy/export.h)."""
import json
import os

import torch

from . import _C, _bridge

_ops = torch.ops.lipkit


def _input_shape(model):
    """The shape the model's checkpoint metadata or preset spec records (the CLI's rule)."""
    meta = dict(getattr(model, "lipkit_meta", None) or {})
    if getattr(model, "lipkit_spec", None) is not None:
        meta["spec"] = model.lipkit_spec
    return list(_C.recorded_input_shape(json.dumps(meta)))


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
