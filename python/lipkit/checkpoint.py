"""Checkpoints shared with the C++ CLI: the same file format (lipkit-ckpt-v1), read and written by
the C++ library."""
import json
import os

import torch

from . import _bridge

_ops = torch.ops.lipkit


def _path(path):
    path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ValueError(f"lipkit: a checkpoint path is needed, got {path!r}")
    return path


def load(path):
    """The model of a checkpoint written by `lipkit train` or lipkit.save, in eval mode. Its metadata
    (the training config, the data set, the spec of a preset) is model.lipkit_meta."""
    description, meta, names, tensors = _ops.py_load_checkpoint(_path(path))
    model = _bridge.from_cpp(description, names, tensors)
    model.eval()
    model.lipkit_meta = json.loads(meta)
    if "spec" in model.lipkit_meta:
        model.lipkit_spec = model.lipkit_meta["spec"]
    return model


def save(model, path, meta=None):
    """Writes model (an nn.Sequential of lipkit layers and the torch.nn layers lipkit knows) to path,
    atomically, as a checkpoint the CLI reads (lipkit certify / attack / info / export). meta: a dict
    stored with it (e.g. {"data": "fashion-mnist"} for lipkit certify)."""
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"lipkit.save: the model must be a torch.nn.Sequential, got {type(model).__name__}")
    m = dict(getattr(model, "lipkit_meta", {}) or {})
    m.update(meta or {})
    if getattr(model, "lipkit_spec", None) is not None:
        m["spec"] = model.lipkit_spec
    description, names, tensors = _bridge.to_cpp(model)
    _ops.py_save_checkpoint(_path(path), description, json.dumps(m), names, tensors)
