"""Every Python layer == its C++ twin (output, input gradient, parameter gradients; float64), through
a checkpoint written by one side and read by the other, both directions, in eval and training mode."""
import json

import pytest
import torch

import lipkit
from lipkit import _bridge

from layer_cases import CASES, as_model

_ops = torch.ops.lipkit
RTOL, ATOL = 1e-9, 1e-11  # float64: the two sides order a few sums differently


def _python_pass(model, x, g, train):
    model.train(train)
    xx = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    y = model(xx)
    y.backward(g)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return y.detach(), xx.grad, grads


def _compare(model, path, x, train):
    with torch.no_grad():
        g = torch.randn_like(model.eval()(x))  # eval: no buffer moves before the comparison
    py = _python_pass(model, x, g, train)
    y, gx, names, grads = _ops.py_checkpoint_forward(str(path), x, g, train)
    torch.testing.assert_close(py[0], y, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(py[1], gx, rtol=RTOL, atol=ATOL)
    cpp = dict(zip(names, grads))
    assert sorted(cpp) == sorted(py[2]), "the same parameters get gradients"
    for n in cpp:
        torch.testing.assert_close(py[2][n], cpp[n], rtol=RTOL, atol=ATOL, msg=lambda m: f"{n}: {m}")


def _perturbed(name):
    factory, shape, _ = CASES[name]
    torch.manual_seed(1)
    model = as_model(factory()).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(shape, dtype=torch.float64)
    model.train()(x)  # sizes power-iteration vectors, moves running means: state worth carrying
    return model, x


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("train", [False, True])
def test_python_checkpoint_read_by_cpp(name, train, tmp_path):
    model, x = _perturbed(name)
    path = tmp_path / "py.pt"
    lipkit.save(model, path)
    reloaded = lipkit.load(path)  # the state as C++ wrote it back, for the Python side of the comparison
    assert set(reloaded.state_dict()) == set(model.state_dict())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[k], v, rtol=0, atol=0)
    _compare(reloaded, path, x, train)


@pytest.mark.parametrize("name", list(CASES))
def test_cpp_checkpoint_read_by_python(name, tmp_path):
    factory, shape, _ = CASES[name]
    description = json.dumps(_bridge.describe(as_model(factory())))
    path = tmp_path / "cpp.pt"
    _ops.py_init_checkpoint(str(path), description, 7, True)  # built and initialised by C++ alone
    model = lipkit.load(path)
    assert _bridge.describe(model) == json.loads(description)
    x = torch.randn(shape, dtype=torch.float64)
    _compare(model, path, x, False)


def test_description_round_trips_through_cpp():
    for name, (factory, _, _) in CASES.items():
        d = json.dumps(_bridge.describe(as_model(factory())))
        names, _ = _ops.py_build_description(d, 0)
        assert set(names) == set(as_model(factory()).state_dict()), name


def test_a_wrong_twin_is_caught(tmp_path):
    """Negative control: a Python layer that differs from its twin (a spectral layer that forgets
    to divide by the norm) fails the comparison."""
    layer = lipkit.nn.SpectralLinear(6, 5).double()
    layer.forward = lambda x: torch.nn.functional.linear(x, layer.weight, layer.bias)
    model = torch.nn.Sequential(layer)
    lipkit.save(model, tmp_path / "f.pt")  # described as a SpectralLinear
    with pytest.raises(AssertionError):
        _compare(model, tmp_path / "f.pt", torch.randn(4, 6, dtype=torch.float64), False)
