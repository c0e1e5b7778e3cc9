"""The package's functions: presets, checkpoints with the CLI, certificates that attacks cannot
break (with a negative control), and errors that are Python exceptions carrying the C++ message."""
import gzip
import json
import os
import subprocess

import pytest
import torch

import lipkit

FMNIST = dict(in_channels=1, image_size=28, num_classes=10, mean=[0.286])
DATA = "/usr/share/datasets/fashion-mnist"


def test_presets_build_as_the_cli_builds_them():
    assert "sll-s" in lipkit.models.preset_names() and "cpl-fmnist" in lipkit.models.preset_names()
    a = lipkit.models.preset("cpl-fmnist", seed=3, **FMNIST)
    b = lipkit.models.preset("cpl-fmnist", seed=3, **FMNIST)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    assert a.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_certified_points_survive_pgd_and_a_false_bound_is_caught():
    torch.manual_seed(0)
    model = lipkit.models.preset("cpl-fmnist", seed=1, **FMNIST).eval()
    x = torch.rand(48, 1, 28, 28)
    with torch.no_grad():
        y = model(x).argmax(1)  # every point correct: the radius is the margin's
    r = lipkit.certified_radius(model, x, y)
    assert r.dtype == torch.float64 and (r > 0).all()
    eps = float(r.median())
    adv = lipkit.attack.pgd(model, x, y, eps, steps=100)
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= eps * (1 + 1e-5)
    with torch.no_grad():
        flipped = model(adv).argmax(1) != y
    assert not (flipped & (r > eps)).any(), "a point certified at eps was flipped"
    # negative control: a bound 100x too small certifies 100x larger radii; PGD must break some
    fake = lipkit.certified_radius(model, x, y, bound=lipkit.certificate(model) / 100)
    eps = float(fake.median())
    adv = lipkit.attack.pgd(model, x, y, eps, steps=100)
    with torch.no_grad():
        broken = (model(adv).argmax(1) != y) & (fake > eps)
    assert broken.any(), "the attack must catch a false certificate"


def test_certify_reports_accuracies():
    model = lipkit.models.preset("sll-fmnist", seed=1, **FMNIST).eval()
    x, y = torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))
    out = lipkit.certify(model, x, y)
    assert sorted(out["certified"]) == sorted(lipkit.default_radii("l2", 1))
    assert all(0 <= v <= out["clean"] for v in out["certified"].values())


def _fmnist_test(n):
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        images = torch.frombuffer(bytearray(f.read()[16:16 + n * 784]), dtype=torch.uint8)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = torch.frombuffer(bytearray(f.read()[8:8 + n]), dtype=torch.uint8)
    return images.view(n, 1, 28, 28).float() / 255, labels.long()


def _expect_cli_certify_equal(cli, checkpoint, model, x, y, tmp_path):
    """lipkit certify on the first len(y) test images == lipkit.certify on the same images."""
    report = tmp_path / "r.json"
    out = subprocess.run([cli, "certify", "--checkpoint", str(checkpoint), "--subset", str(len(y)), "--json", str(report)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(report.read_text())
    mine = lipkit.certify(model, x, y, radii=[c["radius"] for c in r["certified"]])
    assert mine["clean"] == pytest.approx(r["clean_accuracy"], abs=1e-12)
    for c in r["certified"]:
        assert mine["certified"][c["radius"]] == pytest.approx(c["accuracy"], abs=1e-12)


@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist not installed")
def test_python_checkpoint_is_certified_by_the_cli_with_the_same_numbers(cli, tmp_path):
    model = lipkit.models.preset("sll-fmnist", seed=2, **FMNIST)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = _fmnist_test(200)
    model.train()
    for i in range(3):  # a few steps on (test) data: enough to move the margins
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i * 64:(i + 1) * 64]), y[i * 64:(i + 1) * 64]).backward()
        opt.step()
    lipkit.save(model.eval(), tmp_path / "m.pt", {"data": "fashion-mnist"})
    _expect_cli_certify_equal(cli, tmp_path / "m.pt", model, x, y, tmp_path)
    info = subprocess.run([cli, "info", "--checkpoint", str(tmp_path / "m.pt")], capture_output=True, text=True)
    assert info.returncode == 0 and "SllConv2d" in info.stdout, info.stderr


def test_save_load_round_trip_keeps_spec_and_weights(tmp_path):
    model = lipkit.models.preset("aol-fmnist", seed=9, **FMNIST)
    lipkit.save(model, tmp_path / "a.pt")
    back = lipkit.load(tmp_path / "a.pt")
    assert back.lipkit_spec["family"] == "aol" and not back.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model.eval()(x), rtol=0, atol=0)


def test_errors_are_python_exceptions_with_the_message(tmp_path):
    with pytest.raises(ValueError, match="unknown preset|known"):
        lipkit.models.preset("no-such-preset")
    with pytest.raises(ValueError, match="unknown spec field"):
        lipkit.models.preset("cpl-fmnist", widht=3)
    with pytest.raises(ValueError, match="checkpoint not found"):
        lipkit.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        lipkit.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"expected input of shape \(N, features\), got \[2, 5\]"):
        lipkit.nn.SllLinear(6)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        lipkit.nn.CplConv2d(3, kernel_size=2)
    model = lipkit.models.preset("cpl-fmnist", **FMNIST)
    with pytest.raises(ValueError, match="one label per input"):
        lipkit.certified_radius(model, torch.rand(4, 1, 28, 28), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="norm must be l2 or linf"):
        lipkit.certified_radius(model, torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), norm="l3")
    with pytest.raises(ValueError, match="no description"):
        lipkit.save(torch.nn.Sequential(torch.nn.GELU()), tmp_path / "g.pt")
    assert not (tmp_path / "g.pt").exists()
    with pytest.raises(ValueError, match="refused: the model is not Lipschitz in l2"):
        lipkit.certified_radius(torch.nn.Sequential(lipkit.nn.LipschitzLinear(4, 2, kind="one")), torch.rand(2, 4),
                                torch.zeros(2, dtype=torch.long), norm="l2")


@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist not installed")
def test_readme_quickstart_runs(tmp_path):
    """The README's Python example, end to end."""
    import sys
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart.py")
    out = subprocess.run([sys.executable, example, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "logits match: True" in out.stdout, out.stdout
    assert (tmp_path / "sll.pt").exists() and (tmp_path / "sll.ts").exists()


@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist not installed")
def test_checkpoint_of_lipkit_train_loads_in_python(cli, tmp_path):
    """A checkpoint written by the CLI's trainer (optimizer state and all) gives Python the model C++
    evaluates, and Python's certificate equals lipkit certify's."""
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": {"preset": "sll-fmnist", "conv_layers": 1, "dense_layers": 1, "width": 4,
                                         "dense_hidden": 32, "pool": 2}, "batch_size": 20, "epochs": 1}))
    out = subprocess.run([cli, "train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--subset", "200",
                          "--quiet", "--threads", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    model = lipkit.load(tmp_path / "run" / "model.pt")
    assert model.lipkit_meta["data"] == "fashion-mnist" and model.lipkit_spec["width"] == 4
    x, y = _fmnist_test(100)
    g = torch.randn(100, 10)
    want, _, _, _ = torch.ops.lipkit.py_checkpoint_forward(str(tmp_path / "run" / "model.pt"), x, g, False)
    with torch.no_grad():
        torch.testing.assert_close(model(x), want, rtol=1e-6, atol=1e-6)
    _expect_cli_certify_equal(cli, tmp_path / "run" / "model.pt", model, x, y, tmp_path)
