"""The CLI's process settings: idle OpenMP threads spin briefly (GOMP_SPINCOUNT=1000) unless the
environment says otherwise, so two jobs sharing the cores do not spin on each other's."""
import json
import os
import subprocess
import time

import pytest

DATA = "/usr/share/datasets/fashion-mnist"


def _environ_of(cli, tmp_path, env):
    tmp_path.mkdir()
    cfg = tmp_path / "long.json"
    cfg.write_text(json.dumps({"model": {"preset": "cpl-fmnist", "conv_layers": 1, "dense_layers": 1, "width": 4,
                                         "dense_hidden": 16, "pool": 2}, "batch_size": 20, "epochs": 100000}))
    p = subprocess.Popen([cli, "train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--subset", "200",
                          "--quiet", "--threads", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (tmp_path / "run" / "config.json").exists():  # past start-up
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.1)
        entries = open(f"/proc/{p.pid}/environ", "rb").read().split(b"\0")
        return dict(e.decode().split("=", 1) for e in entries if b"=" in e)
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not os.path.isdir(DATA) or not os.path.isdir("/proc/self"), reason="needs fashion-mnist, /proc")
def test_openmp_spins_briefly_unless_told_otherwise(cli, tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert _environ_of(cli, tmp_path / "a", base).get("GOMP_SPINCOUNT") == "1000"
    assert "GOMP_SPINCOUNT" not in _environ_of(cli, tmp_path / "b", {**base, "OMP_WAIT_POLICY": "ACTIVE"})
    assert _environ_of(cli, tmp_path / "c", {**base, "GOMP_SPINCOUNT": "5"})["GOMP_SPINCOUNT"] == "5"
