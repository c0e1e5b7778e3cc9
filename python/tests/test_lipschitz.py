"""The conformance Lipschitz checks, from Python, over every Python layer with a stated bound: exact
Jacobians at random points, random pairs, and gradient ascent on the difference quotient must all
stay under lipschitz_bound(norm). A layer that breaks its bound must be caught (negative control)."""
import pytest
import torch

import lipkit

from layer_cases import CASES, as_model


def _norm(v, norm):
    v = v.flatten(1)
    return v.norm(2, 1) if norm == "l2" else v.abs().amax(1)


def largest_quotient(f, shape, norm, points=6, pairs=64, ascent_steps=60):
    """The largest ||f(x) - f(y)|| / ||x - y|| (and local Jacobian norm) found."""
    worst = 0.0
    for _ in range(points):  # exact Jacobian at one example
        x = torch.randn((1,) + tuple(shape[1:]), dtype=torch.float64)
        j = torch.autograd.functional.jacobian(lambda v: f(v.view_as(x)).flatten(), x.flatten())
        local = torch.linalg.matrix_norm(j, 2) if norm == "l2" else j.abs().sum(1).max()
        worst = max(worst, float(local))
    x = torch.randn((pairs,) + tuple(shape[1:]), dtype=torch.float64)
    for scale in (1.0, 1e-2):
        y = x + scale * torch.randn_like(x)
        worst = max(worst, float((_norm(f(x) - f(y), norm) / _norm(x - y, norm)).max()))
    x = x[:16].clone().requires_grad_(True)
    y = (x.detach() + 0.1 * torch.randn_like(x)).requires_grad_(True)
    opt = torch.optim.Adam([x, y], lr=0.05)
    for _ in range(ascent_steps):
        q = _norm(f(x) - f(y), norm) / _norm(x - y, norm).clamp_min(1e-12)
        worst = max(worst, float(q.max()))
        opt.zero_grad()
        (-q.sum()).backward()
        opt.step()
    return worst


CHECKED = [(name, norm) for name, (_, _, norms) in CASES.items() for norm in norms]


@pytest.mark.parametrize("name,norm", CHECKED)
def test_layer_stays_under_its_bound(name, norm):
    factory, shape, _ = CASES[name]
    torch.manual_seed(2)
    layer = factory().double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model = as_model(layer)
    model.train()(torch.randn(shape, dtype=torch.float64))  # sizes vectors, moves running means
    model.eval()
    bound = layer.lipschitz_bound(norm)
    assert bound < float("inf")
    found = largest_quotient(model, shape, norm)
    assert found <= bound * (1 + 1e-6), f"{name} in {norm}: quotient {found} > bound {bound}"


def test_checker_catches_a_layer_that_breaks_its_bound():
    """Negative control: a spectral layer that skips its normalisation (and claims 1) is caught."""
    layer = lipkit.nn.SpectralLinear(6, 5).double()
    with torch.no_grad():
        layer.weight.mul_(3.0)
    layer.forward = lambda x: torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert layer.lipschitz_bound("l2") == 1.0
    assert largest_quotient(torch.nn.Sequential(layer), (5, 6), "l2") > 1.0 + 1e-3


def test_model_bound_of_ordinary_network_is_above_its_exact_norm():
    """lipkit.lipschitz.upper_bound on plain torch.nn layers: a proven Gram bound of one Linear is
    at least its exact spectral norm and within 1% of it; a CNN's bound is above every quotient found."""
    lin = torch.nn.Linear(20, 12)
    exact = torch.linalg.matrix_norm(lin.weight.double(), 2).item()
    r = lipkit.lipschitz.upper_bound(torch.nn.Sequential(lin), (20,))
    assert r["proven"] and exact <= r["bound"] <= exact * 1.01
    cnn = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(16, 3))
    r = lipkit.lipschitz.upper_bound(cnn, (2, 4, 4))
    assert r["proven"] and len(r["layers"]) == 5
    assert largest_quotient(cnn.double(), (8, 2, 4, 4), "l2") <= r["bound"] * (1 + 1e-6)
