"""Every Python layer, in a small configuration, with an input shape (shared by the twin and the
Lipschitz tests)."""
from collections import OrderedDict

from torch import nn

import lipkit.nn as L


def _mono():
    body = nn.Sequential(L.LipschitzLinear(4, 6, kind="one-inf", lipschitz=0.5), L.GroupSort(2),
                         L.LipschitzLinear(6, 2, kind="inf", lipschitz=0.5))
    return L.MonotonicResidual(body, [[1, 0, -1, 0], [0, 1, 0, 0]], lipschitz=0.25)


# name -> (factory, input shape, norms with a bound)
CASES = OrderedDict([
    ("CplLinear", (lambda: L.CplLinear(6, 8), (5, 6), ["l2"])),
    ("CplLinear-spline", (lambda: L.CplLinear(6, 8, activation="spline", spline_knots=11, spline_grid=0.3), (5, 6), ["l2"])),
    ("CplConv2d", (lambda: L.CplConv2d(3, 4), (2, 3, 6, 6), ["l2"])),
    ("SllLinear", (lambda: L.SllLinear(6, 8), (5, 6), ["l2"])),
    ("SllLinear-spline", (lambda: L.SllLinear(6, 8, activation="spline", spline_knots=11, spline_grid=0.3), (5, 6), ["l2"])),
    ("SllConv2d", (lambda: L.SllConv2d(3, 4), (2, 3, 6, 6), ["l2"])),
    ("SllConv2d-cancel_q", (lambda: L.SllConv2d(3, 4, cancel_q=True), (2, 3, 5, 5), ["l2"])),
    ("AolLinear", (lambda: L.AolLinear(6, 5), (5, 6), ["l2"])),
    ("AolConv2d", (lambda: L.AolConv2d(3, 4), (2, 3, 6, 6), ["l2"])),
    ("SpectralLinear", (lambda: L.SpectralLinear(6, 5), (5, 6), ["l2"])),
    ("SpectralConv2d", (lambda: L.SpectralConv2d(3, 4), (2, 3, 6, 6), ["l2"])),
    ("OrthogonalLinear", (lambda: L.OrthogonalLinear(6, 4), (5, 6), ["l2"])),
    ("GroupSort", (lambda: L.GroupSort(3), (5, 6), ["l2", "linf"])),
    ("MaxMin", (lambda: L.MaxMin(), (2, 4, 3, 3), ["l2", "linf"])),
    ("LinfDistLinear", (lambda: L.LinfDistLinear(6, 5, bias=True), (5, 6), ["linf", "l2"])),
    ("SortNetLinear", (lambda: L.SortNetLinear(6, 5, q=0.7, k=3, bias=True, seed=3), (5, 6), ["linf", "l2"])),
    ("NegatedDistance", (lambda: L.NegatedDistance(), (5, 6), ["l2", "linf"])),
    ("MeanShift", (lambda: L.MeanShift(4), (5, 4), ["l2", "linf"])),
    ("LinearSpline", (lambda: L.LinearSpline(4, num_knots=9, grid=0.25, init="maxmin"), (5, 4), ["l2", "linf"])),
    ("LipschitzLinear-one", (lambda: L.LipschitzLinear(6, 5, kind="one"), (5, 6), [])),
    ("LipschitzLinear-inf", (lambda: L.LipschitzLinear(6, 5, kind="inf"), (5, 6), ["linf"])),
    ("LipschitzLinear-one-inf", (lambda: L.LipschitzLinear(6, 5, kind="one-inf", lipschitz=0.5), (5, 6), [])),
    ("LipschitzLinear-two-inf", (lambda: L.LipschitzLinear(6, 5, kind="two-inf"), (5, 6), [])),
    ("LipschitzLinear-two", (lambda: L.LipschitzLinear(6, 5, kind="two", vectorwise=False), (5, 6), ["l2"])),
    ("MonotonicResidual", (_mono, (5, 4), [])),
    ("DpLinear", (lambda: L.DpLinear(6, 5), (5, 6), ["l2"])),
    ("DpBoundedInput", (lambda: L.DpBoundedInput(1.5), (5, 6), ["l2"])),
    ("InputNormalization", (lambda: L.InputNormalization([0.1, 0.2, 0.3], [0.5, 0.6, 0.7]), (2, 3, 4, 4), ["l2", "linf"])),
    ("PadChannels", (lambda: L.PadChannels(3, 5), (2, 3, 4, 4), ["l2", "linf"])),
    ("SumPool2d", (lambda: L.SumPool2d(2), (2, 3, 4, 4), ["l2", "linf"])),
    ("PixelUnshuffle", (lambda: L.PixelUnshuffle(2), (2, 3, 4, 4), ["l2", "linf"])),
    ("FirstChannels", (lambda: L.FirstChannels(2), (2, 3, 4, 4), ["l2", "linf"])),
    ("NormalizedLinear", (lambda: L.NormalizedLinear(6, 4), (5, 6), ["l2", "linf"])),
    ("Residual", (lambda: L.Residual(nn.Sequential(L.AolLinear(6, 6), L.MaxMin())), (5, 6), [])),
    ("torch-layers", (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                            nn.Conv2d(4, 4, 3, stride=1), nn.Tanh(), nn.AvgPool2d(1), nn.Flatten(),
                                            nn.Linear(4, 5), nn.LeakyReLU(0.1), nn.BatchNorm1d(5), nn.Sigmoid()),
                      (3, 3, 6, 6), [])),
])


def as_model(layer):
    return layer if isinstance(layer, nn.Sequential) else nn.Sequential(layer)
