"""A model as data, both ways: the description the C++ library reads (models/description.h) and the
modules built from one. lipkit layers describe themselves by their options; the LibTorch twins of
torch.nn modules (Linear, Conv2d, BatchNorm, pooling, activations) by theirs."""
import json
from collections import OrderedDict

import torch
from torch import nn

from . import nn as lnn

_LIPKIT = {name: getattr(lnn, name) for name in lnn.__all__ if name not in ("LipschitzModule", "set_distance_p")}


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _torch_options(m):
    if isinstance(m, nn.Linear):
        return "Linear", {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}
    if isinstance(m, nn.Conv2d):
        if m.groups != 1 or isinstance(m.padding, str) or _pair(m.dilation) != [1, 1] or m.padding_mode != "zeros":
            raise ValueError(f"lipkit: Conv2d with groups, string padding, dilation or padding_mode "
                             f"'{m.padding_mode}' has no description: {m}")
        return "Conv2d", {"in_channels": m.in_channels, "out_channels": m.out_channels,
                          "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
                          "bias": m.bias is not None}
    for cls, name in ((nn.BatchNorm1d, "BatchNorm1d"), (nn.BatchNorm2d, "BatchNorm2d")):
        if isinstance(m, cls):
            return name, {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum or 0.1, "affine": m.affine}
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        if isinstance(m, nn.AvgPool2d) and (m.ceil_mode or not m.count_include_pad or m.divisor_override):
            raise ValueError(f"lipkit: AvgPool2d with ceil_mode, count_include_pad=False or divisor_override has no "
                             f"description: {m}")
        if isinstance(m, nn.MaxPool2d) and (m.ceil_mode or _pair(m.dilation) != [1, 1]):
            raise ValueError(f"lipkit: MaxPool2d with ceil_mode or dilation has no description: {m}")
        stride = m.stride if m.stride is not None else m.kernel_size
        return type(m).__name__, {"kernel_size": _pair(m.kernel_size), "stride": _pair(stride), "padding": _pair(m.padding)}
    if isinstance(m, nn.Flatten):
        return "Flatten", {"start_dim": m.start_dim, "end_dim": m.end_dim}
    if isinstance(m, nn.Dropout):
        return "Dropout", {"p": m.p}
    if isinstance(m, nn.LeakyReLU):
        return "LeakyReLU", {"negative_slope": m.negative_slope}
    for cls in (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity):
        if isinstance(m, cls):
            return cls.__name__, {}
    raise ValueError(f"lipkit: module {type(m).__name__} has no description (lipkit describes its own layers and "
                     "Linear, Conv2d, BatchNorm1d/2d, AvgPool2d, MaxPool2d, Flatten, ReLU, Tanh, Sigmoid, LeakyReLU, "
                     "Dropout, Identity, inside nn.Sequential)")


def describe(module):
    """The description (a dict) of a module tree, as the C++ models::describe writes it."""
    if isinstance(module, nn.Sequential):
        children = []
        for name, child in module.named_children():
            d = describe(child)
            d["name"] = name
            children.append(d)
        return {"type": "Sequential", "options": {}, "children": children}
    if isinstance(module, lnn.Residual):
        return {"type": "Residual", "options": {}, "children": [dict(describe(module.branch), name="branch")]}
    if isinstance(module, lnn.MonotonicResidual):
        return {"type": "MonotonicResidual",
                "options": {"lipschitz": module.options["lipschitz"], "constraints": module.constraints.double().tolist()},
                "children": [dict(describe(module.body), name="body")]}
    if isinstance(module, lnn.LipschitzModule):
        name = type(module).__name__
        if name not in _LIPKIT:
            raise ValueError(f"lipkit: {name} is not a lipkit layer")
        return {"type": name, "options": dict(module.options)}
    t, options = _torch_options(module)
    return {"type": t, "options": options}


def _build_torch(t, o):
    if t == "Linear":
        return nn.Linear(o["in_features"], o["out_features"], bias=o.get("bias", True))
    if t == "Conv2d":
        return nn.Conv2d(o["in_channels"], o["out_channels"], tuple(o["kernel_size"]), tuple(o.get("stride", [1, 1])),
                         tuple(o.get("padding", [0, 0])), bias=o.get("bias", True))
    if t in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, t)(o["num_features"], eps=o.get("eps", 1e-5), momentum=o.get("momentum", 0.1),
                              affine=o.get("affine", True))
    if t in ("AvgPool2d", "MaxPool2d"):
        return getattr(nn, t)(tuple(o["kernel_size"]), tuple(o.get("stride", o["kernel_size"])), tuple(o.get("padding", [0, 0])))
    if t == "Flatten":
        return nn.Flatten(o.get("start_dim", 1), o.get("end_dim", -1))
    if t == "Dropout":
        return nn.Dropout(o.get("p", 0.5))
    if t == "LeakyReLU":
        return nn.LeakyReLU(o.get("negative_slope", 0.01))
    if t in ("ReLU", "Tanh", "Sigmoid", "Identity"):
        return getattr(nn, t)()
    raise ValueError(f"lipkit: unknown module type '{t}' in the model description")


def build(description):
    """The module tree of a description (fresh parameters: load a state into it)."""
    t, o = description["type"], description.get("options", {})
    children = {c["name"]: c for c in description.get("children", [])}
    if t == "Sequential":
        return nn.Sequential(OrderedDict((c["name"], build(c)) for c in description.get("children", [])))
    if t == "Residual":
        return lnn.Residual(build(children["branch"]))
    if t == "MonotonicResidual":
        return lnn.MonotonicResidual(build(children["body"]), o["constraints"], o.get("lipschitz", 1.0))
    if t in _LIPKIT:
        return _LIPKIT[t](**o)
    return _build_torch(t, o)


def state(module):
    """(names, tensors): the parameters and buffers by their state_dict names."""
    sd = module.state_dict(keep_vars=False)
    return list(sd.keys()), [t.detach() for t in sd.values()]


def load_state(module, names, tensors):
    """Loads (names, tensors) into module, strictly; buffers sized at first use (power-iteration
    vectors of convolutions) take the stored shape."""
    sd = dict(zip(names, tensors))
    stored = next((t.dtype for n, t in sd.items() if t.is_floating_point() and not n.endswith(".p")), None)
    if stored is not None:
        module.to(stored)  # a float64 checkpoint gives a float64 model
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    if missing or extra:
        raise ValueError(f"lipkit: the state does not fit the model: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, t in sd.items():
        owner, _, leaf = name.rpartition(".")
        m = module.get_submodule(owner) if owner else module
        if leaf in m._buffers and m._buffers[leaf] is not None and m._buffers[leaf].shape != t.shape:
            m._buffers[leaf] = t.clone().to(m._buffers[leaf].dtype)
            own[name] = m._buffers[leaf]
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def to_cpp(module):
    """What the C++ operators take: (description JSON, names, tensors)."""
    names, tensors = state(module)
    return json.dumps(describe(module)), names, tensors


def from_cpp(description, names, tensors):
    model = build(json.loads(description) if isinstance(description, str) else description)
    with torch.no_grad():
        load_state(model, names, tensors)
    return model
