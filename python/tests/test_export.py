"""Export: the archive computes the checkpoint model's logits, carries the certificate lipkit
certify uses, loads without lipkit (vanilla) in a fresh process, and from the CLI."""
import json
import subprocess
import sys

import pytest
import torch

import lipkit

FMNIST = dict(in_channels=1, image_size=28, num_classes=10, mean=[0.286])
PRESETS = ["cpl-fmnist", "sll-fmnist", "aol-fmnist", "plain-fmnist", "sll-spline-fmnist", "sortnet-fmnist",
           "linfdist-fmnist", "dp-fmnist"]
VANILLA = ["cpl-fmnist", "sll-fmnist", "aol-fmnist", "plain-fmnist", "linfdist-fmnist", "dp-fmnist"]


def _model(name):
    model = lipkit.models.preset(name, seed=4, **FMNIST).eval()
    if name in ("sortnet-fmnist", "linfdist-fmnist"):
        lipkit.nn.set_distance_p(model, float("inf"))
    return model


@pytest.mark.parametrize("name", PRESETS)
def test_archive_gives_the_model_logits_and_its_certificate(name, tmp_path):
    model = _model(name)
    cert = lipkit.export(model, tmp_path / "m.ts")
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        want, got = model(x), ts(x)
    # float32: the folded weights are the same products computed once; 1e-4 of the logit scale
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    norm = "linf" if name in ("sortnet-fmnist", "linfdist-fmnist") else "l2"
    if name != "plain-fmnist":
        assert ts.lipschitz_bound == lipkit.certificate(model, norm) == cert["lipschitz_bound"]
    assert ts.norm == norm and ts.rule == cert["rule"] and ts.margin_slack == cert["margin_slack"]
    assert list(ts.input_shape) == [1, 28, 28]
    if ts.rule == "lln-pairwise":
        w = model[-1].weight.double()
        w = w / w.norm(2, 1, keepdim=True)  # certify's float64 copy normalises in float64
        torch.testing.assert_close(ts.pairwise, torch.cdist(w, w, 2 if norm == "l2" else 1), rtol=1e-12, atol=1e-12)
    with pytest.raises(Exception, match="expected input of shape"):
        ts(torch.rand(2, 1, 27, 27))


@pytest.mark.parametrize("name", VANILLA)
def test_vanilla_archive_loads_in_a_process_without_lipkit(name, tmp_path):
    model = _model(name)
    cert = lipkit.export(model, tmp_path / "m.ts", vanilla=True)
    assert not cert["uses_lipkit_operators"]
    x = torch.rand(8, 1, 28, 28)
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch\n"
            f"m = torch.jit.load({str(tmp_path / 'm.ts')!r})\n"
            f"torch.save(m(torch.load({str(tmp_path / 'x.pt')!r})), {str(tmp_path / 'y.pt')!r})\n"
            "assert not any(k.startswith('lipkit') for k in sys.modules), 'lipkit was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"})
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), model(x), rtol=1e-4, atol=1e-4)


def test_vanilla_refuses_layers_without_a_stock_form(tmp_path):
    for name, layer in (("sortnet-fmnist", "SortNetLinear"), ("sll-spline-fmnist", "spline")):
        with pytest.raises(Exception, match=layer):
            lipkit.export(_model(name), tmp_path / "m.ts", vanilla=True)
        assert not (tmp_path / "m.ts").exists(), "no half-written archive"


def test_archive_from_the_cli_matches_lipkit_certify(cli, tmp_path):
    model = lipkit.models.preset("sll-fmnist", seed=5, **FMNIST)
    lipkit.save(model, tmp_path / "m.pt", {"data": "fashion-mnist"})
    out = subprocess.run([cli, "export", "--checkpoint", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.ts")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    report = tmp_path / "r.json"
    out = subprocess.run([cli, "certify", "--checkpoint", str(tmp_path / "m.pt"), "--subset", "20", "--json", str(report)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(report.read_text())
    assert ts.lipschitz_bound == r["lipschitz_bound"] and ts.norm == r["norm"]
    assert (ts.rule == "lln-pairwise") == r["rule"].startswith("per-pair")


def test_cli_export_errors(cli, tmp_path):
    out = subprocess.run([cli, "export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.ts")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "checkpoint not found" in out.stderr
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    lipkit.save(model, tmp_path / "p.pt")
    out = subprocess.run([cli, "export", "--checkpoint", str(tmp_path / "p.pt"), "--out", str(tmp_path / "m.ts")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--input-shape" in out.stderr
    out = subprocess.run([cli, "export", "--checkpoint", str(tmp_path / "p.pt"), "--out", str(tmp_path / "m.ts"),
                          "--input-shape", "4", "--vanilla"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    assert ts.bound_source.startswith("gram") and ts.lipschitz_bound >= torch.linalg.matrix_norm(model[1].weight.double(), 2).item()
