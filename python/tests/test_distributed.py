"""lipkit train on several processes (c10d, Gloo, loopback): the same weights as one process with the
whole batch (float64), clear failures for bad launches and for a worker that dies."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import torch

import lipkit

DATA = "/usr/share/datasets/fashion-mnist"
pytestmark = pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist not installed")


def _config(tmp_path, preset):
    cfg = tmp_path / f"{preset}.json"
    cfg.write_text(json.dumps({"model": {"preset": preset, "conv_layers": 1, "dense_layers": 2, "width": 4,
                                         "dense_hidden": 32, "pool": 2}, "batch_size": 20, "epochs": 1}))
    return cfg


def _train(cli, cfg, out, *extra, env=None):
    return subprocess.run([cli, "train", "--config", str(cfg), "--out", str(out), "--subset", "100", "--quiet",
                           *extra], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("preset", ["cpl-fmnist", "sll-fmnist", "sortnet-fmnist"])
def test_two_processes_train_the_weights_of_one(cli, tmp_path, preset):
    cfg = _config(tmp_path, preset)
    one = _train(cli, cfg, tmp_path / "one", "--threads", "1", "--dtype", "float64")
    assert one.returncode == 0, one.stderr
    two = _train(cli, cfg, tmp_path / "two", "--nproc", "2", "--threads", "1", "--device", "cpu", "--dtype", "float64")
    assert two.returncode == 0, two.stderr
    a, b = lipkit.load(tmp_path / "one" / "model.pt"), lipkit.load(tmp_path / "two" / "model.pt")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # float64, 5 Adam steps: the two runs differ only in the order of the gradient sums
        assert sa[k].dtype != torch.float32
        torch.testing.assert_close(sb[k], sa[k], rtol=1e-9, atol=1e-12, msg=lambda m: f"{k}: {m}")
    init = lipkit.models.preset(preset, seed=0, **{k: v for k, v in a.lipkit_spec.items()}).state_dict()
    moved = sum(float((sa[k] - init[k]).abs().max()) > 1e-4 for k in sa
                if sa[k].is_floating_point() and k in init and sa[k].shape == init[k].shape)
    assert moved > 0, "training moved the weights (the comparison is not of two untouched models)"


def test_a_wrong_gradient_average_is_caught(cli, tmp_path):
    """Negative control: a 2-process run with another global batch (10 instead of 20) ends elsewhere."""
    cfg = _config(tmp_path, "sll-fmnist")
    other = tmp_path / "other.json"
    c = json.loads(cfg.read_text())
    c["batch_size"] = 10
    other.write_text(json.dumps(c))
    assert _train(cli, cfg, tmp_path / "one", "--threads", "1", "--dtype", "float64").returncode == 0
    assert _train(cli, other, tmp_path / "two", "--nproc", "2", "--threads", "1", "--dtype", "float64").returncode == 0
    sa = lipkit.load(tmp_path / "one" / "model.pt").state_dict()
    sb = lipkit.load(tmp_path / "two" / "model.pt").state_dict()
    assert any(not torch.allclose(sa[k], sb[k], rtol=1e-9, atol=1e-12) for k in sa if sa[k].is_floating_point())


def _certify(cli, ckpt, subset, out):
    r = subprocess.run([cli, "certify", "--checkpoint", str(ckpt), "--subset", str(subset), "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    j = json.loads(out.read_text())
    return [j["clean_accuracy"]] + [c["accuracy"] for c in j["certified"]]


@pytest.mark.parametrize("preset", ["cpl-fmnist", "sortnet-fmnist"])
def test_epoch_certification_on_shards_counts_the_whole_test_set(cli, tmp_path, preset):
    """Each rank certifies its half of the 301 test points (150 + 151) and the counts are summed: the
    metrics equal a one-process `lipkit certify` of the written checkpoint on all 301 (SortNet: after
    rank 0's mean-shift re-estimation, broadcast before the shards are certified)."""
    cfg = _config(tmp_path, preset)
    c = json.loads(cfg.read_text())
    c["epochs"] = 3
    cfg.write_text(json.dumps(c))
    r = subprocess.run([cli, "train", "--config", str(cfg), "--out", str(tmp_path / "two"), "--subset", "301",
                        "--quiet", "--nproc", "2", "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    last = json.loads((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()[-1])
    logged = [last["test_accuracy"]] + [c["accuracy"] for c in last["certified"]]
    ckpt = tmp_path / "two" / "model.pt"
    assert logged == _certify(cli, ckpt, 301, tmp_path / "all.json")
    if preset == "cpl-fmnist":  # negative control: rank 0's shard alone is another number
        assert logged != _certify(cli, ckpt, 150, tmp_path / "shard0.json")


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR")}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def test_bad_launches_exit_2_with_a_reason(cli, tmp_path):
    cfg = _config(tmp_path, "cpl-fmnist")
    r = _train(cli, cfg, tmp_path / "a", env=_env(WORLD_SIZE=2))
    assert r.returncode == 2 and "RANK is not set" in r.stderr, r.stderr
    r = _train(cli, cfg, tmp_path / "b", env=_env(WORLD_SIZE=2, RANK=2, MASTER_PORT=29999))
    assert r.returncode == 2 and "RANK" in r.stderr and "[0, 1]" in r.stderr, r.stderr
    r = _train(cli, cfg, tmp_path / "b2", env=_env(WORLD_SIZE=2, RANK=0, LOCAL_WORLD_SIZE="2x", MASTER_PORT=29999))
    assert r.returncode == 2 and "LOCAL_WORLD_SIZE='2x'" in r.stderr and "[1, 2]" in r.stderr, r.stderr
    r = _train(cli, cfg, tmp_path / "c", "--nproc", "0")
    assert r.returncode == 2, r.stderr
    with socket.socket() as s:  # the rendezvous port already taken
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = _train(cli, cfg, tmp_path / "d", "--dist-timeout", "5",
                   env=_env(WORLD_SIZE=2, RANK=0, MASTER_ADDR="127.0.0.1", MASTER_PORT=s.getsockname()[1]))
    assert r.returncode == 2 and "could not join" in r.stderr, r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this LibTorch has CUDA: the refusal is for CPU-only builds")
def test_a_device_this_build_lacks_is_refused_before_any_worker_starts(cli, tmp_path):
    cfg = _config(tmp_path, "cpl-fmnist")
    for extra in [("--device", "cuda"), ("--device", "cuda:1", "--nproc", "2"), ("--device", "tpu", "--nproc", "2")]:
        r = _train(cli, cfg, tmp_path / "out", *extra)
        assert r.returncode == 2 and f"device '{extra[1]}'" in r.stderr, r.stderr
        assert "worker" not in r.stderr, "refused by the launcher, not by each worker"
        assert not (tmp_path / "out" / "model.pt").exists()


def test_a_worker_that_dies_fails_the_job(cli, tmp_path):
    cfg = tmp_path / "long.json"
    cfg.write_text(json.dumps({"model": {"preset": "cpl-fmnist", "conv_layers": 1, "dense_layers": 2, "width": 4,
                                         "dense_hidden": 32, "pool": 2}, "batch_size": 20, "epochs": 5000}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [cli, "train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--subset", "200", "--quiet",
            "--threads", "1", "--dist-timeout", "30"]
    procs = [subprocess.Popen(args, env=_env(WORLD_SIZE=2, RANK=r, MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    time.sleep(6)
    assert procs[0].poll() is None and procs[1].poll() is None, "both workers still training"
    procs[1].send_signal(signal.SIGKILL)
    start = time.time()
    out, err = procs[0].communicate(timeout=120)
    assert procs[0].returncode != 0 and time.time() - start < 60
    assert "failed on rank 0" in err, err


def test_resume_after_a_killed_worker_ends_as_the_uninterrupted_run(cli, tmp_path):
    cfg = tmp_path / "three.json"
    cfg.write_text(json.dumps({"model": {"preset": "cpl-fmnist", "conv_layers": 1, "dense_layers": 2, "width": 4,
                                         "dense_hidden": 32, "pool": 2}, "batch_size": 20, "epochs": 3}))
    base = [cli, "train", "--config", str(cfg), "--subset", "1000", "--quiet", "--threads", "1"]
    whole = subprocess.run(base + ["--out", str(tmp_path / "whole"), "--nproc", "2"], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "cut"
    procs = [subprocess.Popen(base + ["--out", str(out), "--dist-timeout", "30"],
                              env=_env(WORLD_SIZE=2, RANK=r, MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    deadline = time.time() + 120
    while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 1):
        assert time.time() < deadline and procs[0].poll() is None, "the first epoch ends"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # mid-epoch 2: the checkpoint of epoch 1 stays
    procs[0].communicate(timeout=120)
    procs[1].communicate(timeout=120)
    assert procs[0].returncode != 0
    resumed = subprocess.run(base + ["--out", str(out), "--nproc", "2", "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    sa = lipkit.load(tmp_path / "whole" / "model.pt").state_dict()
    sb = lipkit.load(out / "model.pt").state_dict()
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=0, msg=lambda m: f"{k}: {m}")
