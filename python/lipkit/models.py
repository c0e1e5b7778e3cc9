"""The papers' architectures (lipkit presets), built by the C++ library and returned as Python
modules with the same initial weights the CLI would start from (same seed)."""
import json

import torch

from . import _C, _bridge

_ops = torch.ops.lipkit


def preset_names():
    return list(_C.preset_names())


def preset_spec(name):
    """The ModelSpec of a preset, as a dict (family, widths, image size, classes, ...)."""
    return json.loads(_C.preset_spec(name))


def build(spec, seed=0):
    """The model of a ModelSpec dict (see preset_spec), initialised as C++ initialises it."""
    description, names, tensors = _ops.py_build_spec(json.dumps(spec), seed)
    model = _bridge.from_cpp(description, names, tensors)
    model.lipkit_spec = spec
    return model


def preset(name, seed=0, **overrides):
    """A preset's model, e.g. preset("sll-s"), preset("cpl-fmnist", num_classes=10, image_size=28).
    overrides: ModelSpec fields (in_channels, image_size, num_classes, width, mean, ...)."""
    spec = preset_spec(name)
    unknown = sorted(set(overrides) - set(spec))
    if unknown:
        raise ValueError(f"lipkit.models.preset: unknown spec field(s) {unknown}; known: {sorted(spec)}")
    spec.update(overrides)
    return build(spec, seed)
