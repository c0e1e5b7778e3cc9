"""torch.ops.lipkit: registered once in C++, used from Python, gradient-checked, scriptable."""
import torch

import lipkit

_ops = torch.ops.lipkit


def test_the_extension_matches_this_torch():
    assert torch.__version__.startswith(lipkit._C.torch_version[:4])
    assert torch._C._GLIBCXX_USE_CXX11_ABI == lipkit._C.cxx11_abi
    for name in lipkit._C.operators:
        assert hasattr(_ops, name.split("::")[1]), name


def test_gradcheck():
    torch.manual_seed(3)
    x, w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True), torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _ops.lp_dist(a, b, 3.0), (x, w))
    assert torch.autograd.gradcheck(lambda a, b: _ops.lp_dist(a, b, float("inf")), (x, w))
    assert torch.autograd.gradcheck(lambda a, b: _ops.sort_neuron(a, b, 0.7, 3), (x, w))
    coeff = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    scale = (0.5 + torch.rand(5, dtype=torch.float64)).requires_grad_(True)
    z = torch.randn(4, 5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c, s: _ops.linear_spline(a, c, s, 0.3), (z, coeff, scale))
    v = torch.randn(7, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _ops.cayley_linear(a, b, 6), (x, v))  # in 5 -> out 6 of a 7 x 7 Q


def test_gradcheck_catches_a_wrong_gradient():
    """Negative control: an op whose backward is off by a factor fails gradcheck."""
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return _ops.lp_dist(a, b, 2.0)

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            with torch.enable_grad():
                a_, b_ = a.detach().requires_grad_(), b.detach().requires_grad_()
                ga, gb = torch.autograd.grad(_ops.lp_dist(a_, b_, 2.0), (a_, b_), g)
            return 1.1 * ga, gb

    x, w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True), torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(Wrong.apply, (x, w), raise_exception=False)


@torch.jit.script
def _scripted(x: torch.Tensor, w: torch.Tensor, c: torch.Tensor, s: torch.Tensor):
    d = torch.ops.lipkit.lp_dist(x, w, 2.0)
    lo, hi = torch.ops.lipkit.sort_neuron_bounds(x - 0.1, x + 0.1, w, 0.7, 2)
    return d, hi - lo, torch.ops.lipkit.linear_spline(d, c, s, 0.5)


def test_ops_work_in_torchscript():
    x, w = torch.randn(3, 5), torch.randn(4, 5)
    c, s = torch.randn(4, 9), torch.ones(4)
    d, width, y = _scripted(x, w, c, s)
    assert "lipkit::lp_dist" in str(_scripted.graph)
    assert torch.equal(d, _ops.lp_dist(x, w, 2.0))
    assert (width >= 0).all()
    assert torch.equal(y, _ops.linear_spline(d, c, s, 0.5))


def test_power_iteration_updates_the_vector_in_place_and_is_differentiable():
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    u = torch.randn(4, dtype=torch.float64)
    before = u.clone()
    sigma = _ops.power_iteration_dense(w, u, 50)
    assert not torch.equal(u, before)
    torch.testing.assert_close(sigma.detach(), torch.linalg.matrix_norm(w.detach(), 2), rtol=1e-6, atol=0)
    sigma.backward()
    assert w.grad is not None
    assert _ops.gram_iteration_bound(w.detach()) >= torch.linalg.matrix_norm(w.detach(), 2).item()
