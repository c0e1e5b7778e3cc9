"""lipkit's layers as torch.nn.Modules, the twins of the C++ modules (include/lipkit/layers).

Same constructor options, same parameter and buffer names, same maps: a state_dict moves between
the two unchanged (lipkit.save / lipkit.load). The layer maps are written here in torch operators;
what certifies or must draw the same random numbers as C++ (proven norm bounds, power iteration,
SortNet's subsets, the distance and spline kernels) calls the C++ library through torch.ops.lipkit.
In eval mode every layer is Lipschitz with the constant lipschitz_bound(norm) returns.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import _C  # noqa: F401  (registers torch.ops.lipkit)

_ops = torch.ops.lipkit
NO_BOUND = math.inf

__all__ = [
    "LipschitzModule", "CplLinear", "CplConv2d", "SllLinear", "SllConv2d", "AolLinear", "AolConv2d",
    "SpectralLinear", "SpectralConv2d", "OrthogonalLinear", "GroupSort", "MaxMin", "LinfDistLinear",
    "SortNetLinear", "NegatedDistance", "MeanShift", "LinearSpline", "LipschitzLinear", "MonotonicResidual",
    "DpLinear", "DpBoundedInput", "InputNormalization", "PadChannels", "SumPool2d", "PixelUnshuffle",
    "FirstChannels", "Residual", "NormalizedLinear", "set_distance_p",
]


def _check_input(x, layer, rank, channels, like, shape):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lipkit.{layer}: expected a Tensor, got {type(x).__name__}")
    if (x.dim() < 2 if rank < 0 else x.dim() != rank) or (channels >= 0 and x.size(1) != channels):
        raise ValueError(f"lipkit.{layer}: expected input of shape {shape}, got {list(x.shape)}")
    if like is not None and x.dtype != like.dtype:
        raise ValueError(f"lipkit.{layer}: expected input dtype {like.dtype} (the layer's dtype), got {x.dtype}")


def _version_key(tensors, extra=None):
    """Changes when a tensor is replaced, stepped or loaded (autograd's version counter), as C++'s."""
    return tuple((id(t), t.data_ptr(), t._version, t.dtype) for t in tensors) + (extra,)


class _CachedBound:
    """An eval-mode bound recomputed only when the weight changes (replaced, stepped, loaded)."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, weight, extra, compute):
        key = _version_key((weight,), extra)
        if key != self.key:
            self.value, self.key = compute(), key
        return self.value


class _EvalCache:
    """An eval-mode tensor (SLL's T^-1, an orthogonal weight) kept until its inputs change; computed
    afresh, with autograd, in training or when a gradient to the weights is wanted (as C++)."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, module, tensors, compute):
        if module.training or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
            return compute()
        key = _version_key(tensors)
        if key != self.key:
            with torch.no_grad():
                self.value = compute()
            self.key = key
        return self.value


class LipschitzModule(nn.Module):
    """A lipkit layer: options by name (as the C++ options struct) and a proven bound per norm."""

    def __init__(self, **options):
        super().__init__()
        self.options = options

    def lipschitz_bound(self, norm="l2"):
        raise NotImplementedError

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.options.items())

    def __getstate__(self):  # the caches hold no state worth pickling
        state = self.__dict__.copy()
        state.pop("_bound", None)
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bound, self._cache = _CachedBound(), _EvalCache()


def _uniform_fan_in(weight, bias, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        if bias is not None:
            bias.uniform_(-bound, bound)


def _unit(shape, like):
    u = torch.randn(shape, dtype=like.dtype, device=like.device)
    return u / u.norm()


def _step_size(sigma, eps):
    d = sigma * sigma + eps
    if isinstance(d, torch.Tensor):
        return torch.where(d > 0, 2.0 / d.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(d))
    return 2.0 / d if d > 0 else 0.0


def _dense_norm(module):
    """||W||_2: power iteration (an estimate, differentiable) in training, the proven spectral bound
    (lipkit::spectral_norm_bound, cached per weight version) in eval."""
    if module.training:
        return _ops.power_iteration_dense(module.weight, module.u, module.options["train_iters"])
    return module._bound.get(module.weight, None, lambda: _ops.spectral_norm_bound(module.weight))


def _conv_norm(module, x, channels, pad):
    """The convolution's operator norm at x's spatial size, as _dense_norm (the vector u sized on use)."""
    if module.training:
        shape = [1, channels, x.size(2), x.size(3)]
        if list(module.u.shape) != shape:
            module.u = _unit(shape, module.weight)
        return _ops.power_iteration_conv(module.weight, module.u, pad, module.options["train_iters"])
    size = (x.size(2), x.size(3))
    return module._bound.get(module.weight, size, lambda: _ops.conv2d_norm_bound(module.weight, *size, pad))


def _as_step(step, like):
    return step if isinstance(step, torch.Tensor) else torch.full((), step, dtype=like.dtype)


def _conv2d_adjoint(y, kernel, padding):
    kh, kw = kernel.shape[2], kernel.shape[3]
    return F.conv2d(y, kernel.transpose(0, 1).flip([2, 3]), None, 1, [kh - 1 - padding, kw - 1 - padding])


def _residual_activation(module, layer, activation, hidden, knots, grid):
    if activation not in ("relu", "spline"):
        raise ValueError(f"lipkit.{layer}: activation must be relu or spline (a monotone LinearSpline; the "
                         f"residual's proof needs slopes in [0, 1]), got '{activation}'")
    if activation == "spline":
        module.activation = LinearSpline(hidden, num_knots=knots, grid=grid, init="relu", monotone=True)
    else:
        module.activation = None


def _activate(module, h):
    return torch.relu(h) if module.activation is None else module.activation(h)


def _residual_bound(module, norm):
    ok = module.activation is None or module.activation.slopes_in_unit_interval()
    return 1.0 if norm == "l2" and ok else NO_BOUND


# ------------------------------------------------------------------------------------------- CPL

class CplLinear(LipschitzModule):
    """Convex Potential Layer (Meunier et al. 2022): x - 2/||W||^2 W^T relu(W x + b)."""

    def __init__(self, features, hidden=0, eps=1e-4, train_iters=1, activation="relu", spline_knots=51, spline_grid=0.1):
        hidden = hidden if hidden > 0 else features
        super().__init__(features=features, hidden=hidden, eps=eps, train_iters=train_iters, activation=activation,
                         spline_knots=spline_knots, spline_grid=spline_grid)
        if features <= 0 or eps < 0:
            raise ValueError(f"lipkit.CplLinear: features must be positive and eps >= 0, got {features}, {eps}")
        self.weight = nn.Parameter(torch.empty(hidden, features))
        self.bias = nn.Parameter(torch.empty(hidden))
        self.register_buffer("u", torch.empty(features))
        _residual_activation(self, "CplLinear", activation, hidden, spline_knots, spline_grid)
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_fan_in(self.weight, self.bias, self.options["features"])
        with torch.no_grad():
            self.u.copy_(_unit(self.u.shape, self.u))
        if self.activation is not None:
            self.activation.reset_parameters()

    def forward(self, x):
        _check_input(x, "CplLinear", 2, self.options["features"], self.weight, "(N, features)")
        step = _as_step(_step_size(_dense_norm(self), self.options["eps"]), self.weight)
        h = _activate(self, F.linear(x, self.weight, self.bias))
        return x - torch.mm(step * h, self.weight)

    def lipschitz_bound(self, norm="l2"):
        return _residual_bound(self, norm)


class CplConv2d(LipschitzModule):
    """Convolutional CPL: x - 2/||K||^2 K^T relu(K x + b), ||K|| the operator norm at the input size."""

    def __init__(self, channels, hidden=0, kernel_size=3, eps=1e-4, train_iters=1):
        hidden = hidden if hidden > 0 else channels
        super().__init__(channels=channels, hidden=hidden, kernel_size=kernel_size, eps=eps, train_iters=train_iters)
        if kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"lipkit.CplConv2d: kernel_size must be odd (same padding keeps the residual shape), "
                             f"got {kernel_size}")
        self.weight = nn.Parameter(torch.empty(hidden, channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(hidden))
        self.register_buffer("u", torch.empty(0))
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        k = self.options["kernel_size"]
        _uniform_fan_in(self.weight, self.bias, self.options["channels"] * k * k)

    def forward(self, x):
        _check_input(x, "CplConv2d", 4, self.options["channels"], self.weight, "(N, channels, H, W)")
        pad = self.options["kernel_size"] // 2
        step = _as_step(_step_size(_conv_norm(self, x, self.options["channels"], pad), self.options["eps"]), self.weight)
        r = torch.relu(F.conv2d(x, self.weight, self.bias, 1, pad))
        return x - _conv2d_adjoint(step * r, self.weight, pad)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


# ------------------------------------------------------------------------------------------- SLL

def _safe_inverse(t):
    positive = t > 0
    return torch.where(positive, 1.0 / torch.where(positive, t, torch.ones_like(t)), torch.zeros_like(t))


def _weighted_row_sums(s, q):
    return torch.exp(-q) * torch.mv(s, torch.exp(q))


class SllLinear(LipschitzModule):
    """SDP-based Lipschitz Layer (Araujo et al. 2023): x - 2 W^T T^-1 relu(W x + b)."""

    def __init__(self, features, hidden=0, activation="relu", spline_knots=51, spline_grid=0.1):
        hidden = hidden if hidden > 0 else features
        super().__init__(features=features, hidden=hidden, activation=activation, spline_knots=spline_knots,
                         spline_grid=spline_grid)
        self.weight = nn.Parameter(torch.empty(hidden, features))
        self.bias = nn.Parameter(torch.empty(hidden))
        self.q = nn.Parameter(torch.empty(hidden))
        _residual_activation(self, "SllLinear", activation, hidden, spline_knots, spline_grid)
        self._cache = _EvalCache()
        self.reset_parameters()

    def reset_parameters(self):
        _sll_init(self.weight, self.bias, self.q, self.options["features"])
        if self.activation is not None:
            self.activation.reset_parameters()

    def inverse_t(self):
        # C++'s |W W^T| exp(q): one triangle of the Gram, a fused one-GEMM backward
        return _safe_inverse(torch.exp(-self.q) * _ops.abs_gram_mv(self.weight, torch.exp(self.q)))

    def forward(self, x):
        _check_input(x, "SllLinear", 2, self.options["features"], self.weight, "(N, features)")
        inv_t = self._cache.get(self, (self.weight, self.q), self.inverse_t)
        r = _activate(self, F.linear(x, self.weight, self.bias)) * inv_t
        return x - 2.0 * torch.mm(r, self.weight)

    def lipschitz_bound(self, norm="l2"):
        return _residual_bound(self, norm)


def _sll_init(weight, bias, q, fan_in):
    with torch.no_grad():
        nn.init.xavier_normal_(weight)
        bound = 1.0 / math.sqrt(fan_in)
        bias.uniform_(-bound, bound)
        q.normal_()


class SllConv2d(LipschitzModule):
    """Convolutional SLL: T from the kernel's own correlation, x - 2 K^T T^-1 relu(K x + b)."""

    def __init__(self, channels, hidden=0, kernel_size=3, cancel_q=False):
        hidden = hidden if hidden > 0 else channels
        super().__init__(channels=channels, hidden=hidden, kernel_size=kernel_size, cancel_q=cancel_q)
        if kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"lipkit.SllConv2d: kernel_size must be odd, got {kernel_size}")
        self.weight = nn.Parameter(torch.empty(hidden, channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(hidden))
        self.q = nn.Parameter(torch.empty(hidden))
        self._cache = _EvalCache()
        self.reset_parameters()

    def reset_parameters(self):
        k = self.options["kernel_size"]
        _sll_init(self.weight, self.bias, self.q, self.options["channels"] * k * k)

    def inverse_t(self):
        k = self.weight.shape[2]
        g = F.conv2d(self.weight, self.weight, None, 1, k - 1).abs().sum((2, 3))
        t = g.sum(1) if self.options["cancel_q"] else _weighted_row_sums(g, self.q)
        return _safe_inverse(t)

    def forward(self, x):
        _check_input(x, "SllConv2d", 4, self.options["channels"], self.weight, "(N, channels, H, W)")
        pad = self.options["kernel_size"] // 2
        inv_t = self._cache.get(self, (self.weight, self.q), self.inverse_t)
        r = torch.relu(F.conv2d(x, self.weight, self.bias, 1, pad)) * inv_t.view(1, -1, 1, 1)
        return x - 2.0 * _conv2d_adjoint(r, self.weight, pad)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


# ------------------------------------------------------------------------------------------- AOL

def _optional_bias(module, enabled, size):
    if enabled:
        module.bias = nn.Parameter(torch.empty(size))
    else:
        module.register_parameter("bias", None)


class AolLinear(LipschitzModule):
    """Almost-Orthogonal Layer (Prach & Lampert 2022): W diag(sum_j |W^T W|_ij + eps)^-1/2."""

    def __init__(self, in_features, out_features, bias=True, eps=1e-6):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias, eps=eps)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _optional_bias(self, bias, out_features)
        self._cache = _EvalCache()
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            nn.init.orthogonal_(self.weight)
            if self.bias is not None:
                self.bias.zero_()

    def effective_weight(self):
        wt = self.weight.t()
        d = torch.rsqrt(_ops.abs_gram_mv(wt, wt.new_ones(wt.shape[0])) + self.options["eps"])
        return self.weight * d.unsqueeze(0)

    def forward(self, x):
        _check_input(x, "AolLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        return F.linear(x, self._cache.get(self, [self.weight], self.effective_weight), self.bias)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


class AolConv2d(LipschitzModule):
    """Convolutional AOL: each input channel rescaled by its kernel correlation sum."""

    def __init__(self, in_channels, out_channels, kernel_size=3, bias=True, eps=1e-6):
        super().__init__(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, bias=bias, eps=eps)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        _optional_bias(self, bias, out_channels)
        self._cache = _EvalCache()
        self.reset_parameters()

    def reset_parameters(self):
        c = self.options["kernel_size"] // 2
        with torch.no_grad():
            self.weight.zero_()
            centre = torch.empty(self.options["out_channels"], self.options["in_channels"])
            nn.init.orthogonal_(centre)
            self.weight[:, :, c, c] = centre
            if self.bias is not None:
                self.bias.zero_()

    def effective_weight(self):
        k = self.weight.shape[2]
        kt = self.weight.transpose(0, 1)
        gram = F.conv2d(kt, kt, None, 1, k - 1).abs().sum((1, 2, 3))
        return self.weight * torch.rsqrt(gram + self.options["eps"]).view(1, -1, 1, 1)

    def forward(self, x):
        _check_input(x, "AolConv2d", 4, self.options["in_channels"], self.weight, "(N, in_channels, H, W)")
        w = self._cache.get(self, [self.weight], self.effective_weight)
        return F.conv2d(x, w, self.bias, 1, self.options["kernel_size"] // 2)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


# -------------------------------------------------------------------------------- spectral, orthogonal

class SpectralLinear(LipschitzModule):
    """W / ||W||_2: power iteration in training, a proven Gram-iteration bound in eval."""

    def __init__(self, in_features, out_features, bias=True, train_iters=1):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias, train_iters=train_iters)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _optional_bias(self, bias, out_features)
        self.register_buffer("u", torch.empty(in_features))
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_fan_in(self.weight, self.bias, self.options["in_features"])
        with torch.no_grad():
            self.u.copy_(_unit(self.u.shape, self.u))

    def forward(self, x):
        _check_input(x, "SpectralLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        return F.linear(x, self.weight / _dense_norm(self), self.bias)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


class SpectralConv2d(LipschitzModule):
    """K / ||K||: the convolution's operator norm at the input size (power iteration / proven bound)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, bias=True, train_iters=1):
        super().__init__(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, bias=bias,
                         train_iters=train_iters)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        _optional_bias(self, bias, out_channels)
        self.register_buffer("u", torch.empty(0))
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        k = self.options["kernel_size"]
        _uniform_fan_in(self.weight, self.bias, self.options["in_channels"] * k * k)

    def forward(self, x):
        _check_input(x, "SpectralConv2d", 4, self.options["in_channels"], self.weight, "(N, in_channels, H, W)")
        pad = self.options["kernel_size"] // 2
        return F.conv2d(x, self.weight / _conv_norm(self, x, self.options["in_channels"], pad), self.bias, 1, pad)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


class OrthogonalLinear(LipschitzModule):
    """An exactly orthogonal map: the Cayley transform (I + A)^-1 (I - A) of A = V - V^T, cropped."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias)
        n = max(in_features, out_features)
        self.v = nn.Parameter(torch.empty(n, n))
        _optional_bias(self, bias, out_features)
        self._cache = _EvalCache()
        self.reset_parameters()

    def reset_parameters(self):
        scale = 1.0 / math.sqrt(self.v.shape[0])
        with torch.no_grad():
            self.v.uniform_(-scale, scale)
            if self.bias is not None:
                self.bias.zero_()

    def effective_weight(self):
        a = self.v - self.v.t()
        eye = torch.eye(self.v.shape[0], dtype=self.v.dtype, device=self.v.device)
        w = torch.linalg.solve(eye + a, eye - a)
        return w[: self.options["out_features"], : self.options["in_features"]]

    def forward(self, x):
        _check_input(x, "OrthogonalLinear", 2, self.options["in_features"], self.v, "(N, in_features)")
        if self.training:  # Q = 2 (I + A)^-1 - I applied through one LU solve with the batch as right-hand sides
            y = _ops.cayley_linear(x, self.v, self.options["out_features"])
            return y if self.bias is None else y + self.bias
        return F.linear(x, self._cache.get(self, (self.v,), self.effective_weight), self.bias)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


# ------------------------------------------------------------------------------------- activations

def _group_sort(x, group_size, layer):
    if x.dim() < 2 or x.size(1) % group_size != 0:
        raise ValueError(f"lipkit.{layer}: channels {x.size(1) if x.dim() > 1 else '?'} (dim 1 of input "
                         f"{list(x.shape)}) must be divisible by group_size {group_size}")
    if group_size == 1:
        return x
    g = x.reshape([x.size(0), x.size(1) // group_size, group_size] + list(x.shape[2:]))
    if group_size == 2:
        a, b = g.select(2, 0), g.select(2, 1)
        out = torch.stack([torch.maximum(a, b), torch.minimum(a, b)], 2)
    else:
        out = g.sort(2, descending=True)[0]
    return out.reshape(x.shape)


class GroupSort(LipschitzModule):
    """Sorts each group of group_size channels, in decreasing order (Anil et al. 2019)."""

    def __init__(self, group_size=2):
        super().__init__(group_size=group_size)
        if group_size < 1:
            raise ValueError(f"lipkit.GroupSort: group_size must be >= 1, got {group_size}")

    def forward(self, x):
        return _group_sort(x, self.options["group_size"], "GroupSort")

    def lipschitz_bound(self, norm="l2"):
        return 1.0


class MaxMin(LipschitzModule):
    """GroupSort with groups of 2: (max(a, b), min(a, b))."""

    def forward(self, x):
        return _group_sort(x, 2, "MaxMin")

    def lipschitz_bound(self, norm="l2"):
        return 1.0


# ------------------------------------------------------------------------------- l_inf distance nets

def _distance_parameters(module, in_features, out_features, bias, init_std, identity_init):
    module.weight = nn.Parameter(torch.empty(out_features, in_features))
    _optional_bias(module, bias, out_features)
    module.register_buffer("p", torch.full((), math.inf, dtype=torch.float64))
    with torch.no_grad():
        module.weight.normal_(0.0, init_std)
        if identity_init > 0 and in_features <= out_features:
            for i in range(out_features):
                module.weight[i, i % in_features] = -identity_init
        if module.bias is not None:
            module.bias.zero_()


def _distance_bound(norm, n_in, n_out, p):
    linf = 1.0 if math.isinf(p) else n_in ** (1.0 / p)
    if norm == "linf":
        return linf
    l2 = 1.0 if p >= 2 else n_in ** (1.0 / p - 0.5)
    return math.sqrt(n_out) * l2


class LinfDistLinear(LipschitzModule):
    """l_inf-distance neuron (Zhang et al. 2021): y_j = ||x - w_j||_p + b_j, p = inf when certified."""

    def __init__(self, in_features, out_features, bias=False, identity_init=0.0, init_std=1.0):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias, identity_init=identity_init,
                         init_std=init_std)
        _distance_parameters(self, in_features, out_features, bias, init_std, identity_init)

    def forward(self, x):
        _check_input(x, "LinfDistLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        y = _ops.lp_dist(x, self.weight, float(self.p))
        return y if self.bias is None else y + self.bias

    def lipschitz_bound(self, norm="l2"):
        return _distance_bound(norm, self.options["in_features"], self.options["out_features"], float(self.p))


class SortNetLinear(LipschitzModule):
    """SortNet neuron (Zhang et al. 2022): sum_k q (1-q)^(k-1) of the sorted |x_i - w_i|, + b."""

    def __init__(self, in_features, out_features, q=0.7, k=10, bias=False, identity_init=0.0, init_std=1.0, seed=0):
        super().__init__(in_features=in_features, out_features=out_features, q=q, k=k, bias=bias,
                         identity_init=identity_init, init_std=init_std, seed=seed)
        if not 0 < q <= 1:
            raise ValueError(f"lipkit.SortNetLinear: q must be in (0, 1], got {q}")
        _distance_parameters(self, in_features, out_features, bias, init_std, identity_init)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        _check_input(x, "SortNetLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        p, q = float(self.p), self.options["q"]
        subset = self.training and (torch.is_grad_enabled() or not math.isinf(p))
        if subset and q < 1:
            s = int(self.step)
            self.step.add_(1)
            kept = _ops.sortnet_subset(self.options["seed"], s, self.options["in_features"], q)
            idx = torch.tensor(kept, dtype=torch.long, device=x.device)
            y = _ops.lp_dist(x.index_select(1, idx), self.weight.index_select(1, idx), p)
        elif subset:
            y = _ops.lp_dist(x, self.weight, p)
        else:
            y = _ops.sort_neuron(x, self.weight, q, min(self.options["k"], self.options["in_features"]))
        return y if self.bias is None else y + self.bias

    def lipschitz_bound(self, norm="l2"):
        return _distance_bound(norm, self.options["in_features"], self.options["out_features"], math.inf)


class NegatedDistance(LipschitzModule):
    """-x: distances become logits (the smallest distance wins)."""

    def forward(self, x):
        return -x

    def lipschitz_bound(self, norm="l2"):
        return 1.0


class MeanShift(LipschitzModule):
    """x - mean (batch statistics in training, running mean in eval): BatchNorm without the scale."""

    def __init__(self, features, momentum=0.1):
        super().__init__(features=features, momentum=momentum)
        self.register_buffer("running_mean", torch.zeros(features))
        self._averaging, self._seen = False, 0.0

    def begin_average(self):
        """Running mean = the plain average over the batches until end_average (re-estimation)."""
        self._averaging, self._seen = True, 0.0

    def end_average(self):
        self._averaging = False

    def forward(self, x):
        _check_input(x, "MeanShift", -1, self.options["features"], self.running_mean, "(N, features, ...)")
        shape = [1] * x.dim()
        shape[1] = self.options["features"]
        if not self.training:
            return x - self.running_mean.view(shape)
        mean = x.mean([0] + list(range(2, x.dim())))
        with torch.no_grad():
            n = float(x.numel() // self.options["features"])
            rate = n / (self._seen + n) if self._averaging else self.options["momentum"]
            self._seen += n
            self.running_mean.add_((mean.detach() - self.running_mean) * rate)
        return x - mean.view(shape)

    def lipschitz_bound(self, norm="l2"):
        return 1.0


def set_distance_p(module, p):
    """Sets p of every distance layer in module (the l_p -> l_inf schedule); returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, (LinfDistLinear, SortNetLinear)):
            m.p.fill_(p)
            n += 1
    return n


# ---------------------------------------------------------------------------------------- splines

def _knots(k, grid, like):
    return (torch.arange(k, dtype=like.dtype, device=like.device) - (k - 1) / 2.0) * grid


def _slopes(a, grid):
    return (a[:, 1:] - a[:, :-1]) / grid


class LinearSpline(LipschitzModule):
    """Learnable 1-Lipschitz linear-spline activation per channel (Ducotterd et al. 2024)."""

    def __init__(self, num_channels, num_knots=51, grid=0.1, init="relu", lipschitz=1.0, scaling=True,
                 monotone=False, project=True):
        super().__init__(num_channels=num_channels, num_knots=num_knots, grid=grid, init=init, lipschitz=lipschitz,
                         scaling=scaling, monotone=monotone, project=project)
        if num_knots < 3 or grid <= 0 or not 0 < lipschitz <= 1:
            raise ValueError(f"lipkit.LinearSpline: need num_knots >= 3, grid > 0 and lipschitz in (0, 1], got "
                             f"{num_knots}, {grid}, {lipschitz}")
        if init not in ("identity", "relu", "absolute_value", "maxmin"):
            raise ValueError(f"lipkit.LinearSpline: init must be identity, relu, absolute_value or maxmin, got '{init}'")
        self.coefficients = nn.Parameter(torch.empty(num_channels, num_knots))
        self.log_scale = nn.Parameter(torch.zeros(num_channels), requires_grad=scaling)
        self.reset_parameters()

    def reset_parameters(self):
        o = self.options
        with torch.no_grad():
            rows = _knots(o["num_knots"], o["grid"], self.coefficients).unsqueeze(0).expand(o["num_channels"], -1).clone()
            if o["init"] == "relu":
                rows.clamp_(min=0)
            elif o["init"] == "absolute_value":
                rows.abs_()
            elif o["init"] == "maxmin":
                rows[0::2].clamp_(min=0)
                rows[1::2].clamp_(max=0)
            self.coefficients.copy_(rows * o["lipschitz"])
            self.log_scale.zero_()

    def effective_coefficients(self):
        o = self.options
        if not o["project"]:
            return self.coefficients
        a = self.coefficients
        slopes = _slopes(a, o["grid"]).clamp(0.0 if o["monotone"] else -o["lipschitz"], o["lipschitz"])
        rebuilt = torch.cat([torch.zeros(a.shape[0], 1, dtype=a.dtype, device=a.device),
                             torch.cumsum(slopes * o["grid"], 1)], 1)
        return rebuilt + (a.mean(1, keepdim=True) - rebuilt.mean(1, keepdim=True))

    def forward(self, x):
        _check_input(x, "LinearSpline", -1, self.options["num_channels"], self.coefficients, "(N, num_channels, ...)")
        return _ops.linear_spline(x, self.effective_coefficients(), self.log_scale.exp(), self.options["grid"])

    def slopes_in_unit_interval(self):
        with torch.no_grad():
            a = self.effective_coefficients().double()
            s = _slopes(a, self.options["grid"])
            tol = 1e-12 * (1 + float(a.abs().max()) / self.options["grid"])
            return float(s.min()) >= -tol and float(s.max()) <= 1 + tol

    def lipschitz_bound(self, norm="l2"):
        with torch.no_grad():
            return float(_slopes(self.effective_coefficients().double(), self.options["grid"]).abs().max()) * (1 + 1e-12)


# ------------------------------------------------------------------------------ monotonic networks

_PAIRS = {"one": ("1", "1"), "inf": ("inf", "inf"), "one-inf": ("1", "inf"), "two-inf": ("2", "inf"), "two": ("2", "2")}
_RANK = {"1": 0, "2": 1, "inf": 2}
_INSIDE = 1.0 - 1e-5


def _operator_norm(w, p, q):
    w64 = w.detach().double().abs()
    if (p, q) == ("2", "2"):
        return _ops.spectral_norm_bound(w.detach())
    n = {("1", "1"): lambda: w64.sum(0).max(), ("inf", "inf"): lambda: w64.sum(1).max(),
         ("1", "inf"): lambda: w64.max(), ("2", "inf"): lambda: w64.pow(2).sum(1).sqrt().max()}[(p, q)]()
    return float(n) * (1 + 1e-12)


class LipschitzLinear(LipschitzModule):
    """A linear layer normalised to ||W||_{p->q} <= lipschitz (Kitouni et al. 2023); kind names (p, q)."""

    def __init__(self, in_features, out_features, bias=True, kind="one", lipschitz=1.0, vectorwise=True):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias, kind=kind, lipschitz=lipschitz,
                         vectorwise=vectorwise)
        if kind not in _PAIRS:
            raise ValueError(f"lipkit.LipschitzLinear: kind must be one of {sorted(_PAIRS)}, got '{kind}'")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _optional_bias(self, bias, out_features)
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_fan_in(self.weight, self.bias, self.options["in_features"])

    def effective_weight(self):
        w, kind = self.weight, self.options["kind"]
        if kind == "one":
            norms = w.abs().sum(0, keepdim=True)
        elif kind == "inf":
            norms = w.abs().sum(1, keepdim=True)
        elif kind == "one-inf":
            norms = w.abs()
        elif kind == "two-inf":
            norms = w.norm(2, 1, keepdim=True)
        elif self.training:
            norms = torch.linalg.svdvals(w).max()
        else:
            norms = torch.full((), self._bound.get(w, None, lambda: _ops.spectral_norm_bound(w.detach())), dtype=w.dtype)
        if not self.options["vectorwise"] or kind == "two":
            norms = norms.max()
        return w / torch.clamp_min(norms / (self.options["lipschitz"] * _INSIDE), 1.0)

    def forward(self, x):
        _check_input(x, "LipschitzLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        return F.linear(x, self.effective_weight(), self.bias)

    def norm_pair(self):
        return _PAIRS[self.options["kind"]]

    def pair_bound(self):
        with torch.no_grad():
            return _operator_norm(self.effective_weight(), *self.norm_pair())

    def lipschitz_bound(self, norm="l2"):
        p, q = self.norm_pair()
        if (norm == "l2" and (p, q) == ("2", "2")) or (norm == "linf" and (p, q) == ("inf", "inf")):
            return self.pair_bound()
        return NO_BOUND


def _chain_bound(body, p_in, p_out):
    bound, current = 1.0, p_in
    for i, m in enumerate(body.children()):
        if isinstance(m, LipschitzLinear):
            p, q = m.norm_pair()
            if _RANK[current] > _RANK[p]:
                raise ValueError(f"lipkit.MonotonicResidual: layer {i} (LipschitzLinear, kind {m.options['kind']}) "
                                 f"takes l_{p} inputs but follows l_{current}")
            bound *= m.pair_bound()
            current = q
        elif not isinstance(m, (GroupSort, MaxMin, nn.ReLU)):
            raise ValueError(f"lipkit.MonotonicResidual: layer {i} ({type(m).__name__}) has no l_p -> l_q bound")
    if _RANK[current] > _RANK[p_out]:
        raise ValueError(f"lipkit.MonotonicResidual: the body ends in l_{current}, not l_{p_out}")
    return bound


class MonotonicResidual(LipschitzModule):
    """body(x) + lipschitz * C x (Kitouni et al. 2023): monotone in the features C marks, when the
    body is Lipschitz <= lipschitz from l_1 to l_inf (checked here, as in C++)."""

    def __init__(self, body, constraints, lipschitz=1.0):
        c = torch.as_tensor(constraints, dtype=torch.float32).detach()
        c = c.unsqueeze(0) if c.dim() == 1 else c
        super().__init__(lipschitz=lipschitz, constraints=c.tolist())
        self.register_buffer("constraints", c.contiguous())
        self.body = body
        product = 1.0
        _chain_bound(body, "1", "inf")
        for m in body.children():
            if isinstance(m, LipschitzLinear):
                product *= m.options["lipschitz"]
        if product > lipschitz * (1 + 1e-9):
            raise ValueError(f"lipkit.MonotonicResidual: the body's layers allow {product} > lipschitz {lipschitz}: "
                             "monotonicity would not be proven; give each of the d layers lambda^(1/d)")

    def extra_repr(self):
        return f"lipschitz={self.options['lipschitz']}, constraints={list(self.constraints.shape)}"

    def forward(self, x):
        _check_input(x, "MonotonicResidual", 2, self.constraints.shape[1], None, "(N, features)")
        return self.body(x) + self.options["lipschitz"] * x.matmul(self.constraints.to(x.dtype).t())

    def body_bound(self):
        return _chain_bound(self.body, "1", "inf")

    def monotone_proven(self):
        return self.body_bound() <= self.options["lipschitz"]

    def lipschitz_bound(self, norm="l2"):
        return NO_BOUND  # stated per norm pair (l_1 -> l_inf) by body_bound, not in one norm


# -------------------------------------------------------------------------------------- lip-dp

class DpLinear(LipschitzModule):
    """A dense layer kept at spectral norm <= 1 by projection after each step (Bethune et al. 2024)."""

    def __init__(self, in_features, out_features, bias=True, bound_iters=8, project_iters=2):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias, bound_iters=bound_iters,
                         project_iters=project_iters)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _optional_bias(self, bias, out_features)
        self.register_buffer("u", torch.empty(in_features))
        self._bound = _CachedBound()
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            nn.init.orthogonal_(self.weight)
            if self.bias is not None:
                self.bias.zero_()
            self.u.copy_(_unit(self.u.shape, self.u))

    def forward(self, x):
        _check_input(x, "DpLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        return F.linear(x, self.weight, self.bias)

    def weight_norm_bound(self):
        return self._bound.get(self.weight, None,
                               lambda: _ops.gram_iteration_bound(self.weight, self.options["bound_iters"]))

    @torch.no_grad()
    def project(self):
        s = float(_ops.power_iteration_dense(self.weight, self.u, self.options["project_iters"]))
        if s > 1:
            self.weight.mul_(1.0 / s)

    def lipschitz_bound(self, norm="l2"):
        return self.weight_norm_bound() if norm == "l2" else NO_BOUND


class DpBoundedInput(LipschitzModule):
    """Clips every example to l2 norm <= norm (the bounded input domain lip-dp's sensitivities need)."""

    def __init__(self, norm):
        super().__init__(norm=norm)
        if not norm > 0:
            raise ValueError(f"lipkit.DpBoundedInput: norm must be positive, got {norm}")

    def forward(self, x):
        norms = x.flatten(1).norm(2, 1).clamp_min(1e-30)
        scale = (self.options["norm"] / norms).clamp_max(1.0)
        return x * scale.view([x.size(0)] + [1] * (x.dim() - 1))

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else NO_BOUND


# -------------------------------------------------------------------------------------- structure

class InputNormalization(LipschitzModule):
    """(x - mean) / std per channel (or feature); Lipschitz 1 / min std (1 without std)."""

    def __init__(self, mean, std=()):
        mean, std = [float(v) for v in mean], [float(v) for v in std]
        super().__init__(mean=mean, std=std)
        if std and (len(std) != len(mean) or min(std) <= 0):
            raise ValueError(f"lipkit.InputNormalization: std must be empty or {len(mean)} positive values, got {std}")
        c = len(mean)
        inv = [1.0 / s for s in std] if std else [1.0] * c
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(c, 1, 1))
        self.register_buffer("inv_std", torch.tensor(inv, dtype=torch.float32).view(c, 1, 1))

    def forward(self, x):
        if x.dim() == 2:
            _check_input(x, "InputNormalization", 2, self.mean.shape[0], self.mean, "(N, features) or (N, channels, H, W)")
            return (x - self.mean.view(1, -1)) * self.inv_std.view(1, -1)
        _check_input(x, "InputNormalization", 4, self.mean.shape[0], self.mean, "(N, channels, H, W) or (N, features)")
        return (x - self.mean) * self.inv_std

    def lipschitz_bound(self, norm="l2"):
        return float(self.inv_std.abs().max())


class PadChannels(LipschitzModule):
    """Appends zero channels: in_channels -> out_channels (an isometry)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels=in_channels, out_channels=out_channels)
        if out_channels < in_channels:
            raise ValueError(f"lipkit.PadChannels: out_channels must be >= in_channels, got {in_channels} -> {out_channels}")

    def forward(self, x):
        _check_input(x, "PadChannels", -1, self.options["in_channels"], None, "(N, in_channels, ...)")
        shape = list(x.shape)
        shape[1] = self.options["out_channels"] - self.options["in_channels"]
        return torch.cat([x, torch.zeros(shape, dtype=x.dtype, device=x.device)], 1)

    def lipschitz_bound(self, norm="l2"):
        return 1.0


class SumPool2d(LipschitzModule):
    """Sum over k x k windows divided by k: 1-Lipschitz in l2 (k in l_inf)."""

    def __init__(self, kernel_size):
        super().__init__(kernel_size=kernel_size)

    def forward(self, x):
        k = self.options["kernel_size"]
        _check_input(x, "SumPool2d", 4, -1, None, "(N, C, H, W)")
        if x.size(2) % k or x.size(3) % k:
            raise ValueError(f"lipkit.SumPool2d: spatial size {list(x.shape)} must be multiples of kernel_size {k}")
        return F.avg_pool2d(x, k, k, 0, False, True, k)

    def lipschitz_bound(self, norm="l2"):
        return 1.0 if norm == "l2" else float(self.options["kernel_size"])


class PixelUnshuffle(LipschitzModule):
    """Space-to-depth by factor (a permutation: an isometry)."""

    def __init__(self, factor):
        super().__init__(factor=factor)

    def forward(self, x):
        r = self.options["factor"]
        _check_input(x, "PixelUnshuffle", 4, -1, None, "(N, C, H, W)")
        if x.size(2) % r or x.size(3) % r:
            raise ValueError(f"lipkit.PixelUnshuffle: spatial size {list(x.shape)} must be multiples of factor {r}")
        return F.pixel_unshuffle(x, r)

    def lipschitz_bound(self, norm="l2"):
        return 1.0


class FirstChannels(LipschitzModule):
    """The first count channels (a projection)."""

    def __init__(self, count):
        super().__init__(count=count)

    def forward(self, x):
        return x.narrow(1, 0, self.options["count"])

    def lipschitz_bound(self, norm="l2"):
        return 1.0


class Residual(nn.Module):
    """x + branch(x); bounded by 1 + Lip(branch)."""

    def __init__(self, branch):
        super().__init__()
        self.branch = branch

    def forward(self, x):
        y = self.branch(x)
        if y.shape != x.shape:
            raise ValueError(f"lipkit.Residual: the branch maps {list(x.shape)} to {list(y.shape)}; a residual block "
                             "needs the same shape")
        return x + y


class NormalizedLinear(LipschitzModule):
    """Last-layer normalisation: rows w_k / ||w_k||; certified with the per-pair rule."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features=in_features, out_features=out_features, bias=bias)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _optional_bias(self, bias, out_features)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.options["in_features"])
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    def normalized_weight(self):
        return self.weight / self.weight.norm(2, 1, keepdim=True).clamp_min(1e-12)

    def forward(self, x):
        _check_input(x, "NormalizedLinear", 2, self.options["in_features"], self.weight, "(N, in_features)")
        return F.linear(x, self.normalized_weight(), self.bias)

    def lipschitz_bound(self, norm="l2"):
        with torch.no_grad():
            w = self.normalized_weight().double()
            if norm == "linf":
                return float(w.abs().sum(1).max())
            return _ops.spectral_norm_exact(w) * (1.0 + 1e-9)
