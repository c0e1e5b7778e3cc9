"""Whole-model Lipschitz bounds (the C++ lipschitz::upper_bound), for lipkit models and ordinary
torch.nn networks (Linear, Conv2d, BatchNorm, pooling, activations) alike."""
import torch

from . import _bridge

_ops = torch.ops.lipkit


def upper_bound(model, input_shape, method="gram", iters=0):
    """l2 bound of the model on inputs of input_shape ((C, H, W) or (F,)), layer by layer.
    method: gram (proven), exact (proven), power (an estimate). Returns {"bound", "proven", "layers":
    [(layer, bound), ...]}."""
    description, names, tensors = _bridge.to_cpp(model)
    product, proven, layers, bounds = _ops.py_upper_bound(description, names, tensors, [int(s) for s in input_shape],
                                                          method, int(iters))
    return {"bound": product, "proven": proven, "layers": list(zip(layers, bounds))}
