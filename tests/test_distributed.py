"""Training through accelerate on 2 CPU processes (gloo) equals a single-process run on the
same global batch (cut into the same two micro-batches; see jscgc/train.py)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HELPER = Path(__file__).with_name("_dist_train.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def _final(out: Path):
    ckpt = sorted((out / "checkpoints").glob("step_*"))[-1]
    return json.loads((ckpt / "state.json").read_text())["losses"], load_file(ckpt / "model.safetensors")


def test_two_gloo_processes_match_one_process(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    stdout = _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(_free_port()), str(HELPER), "--out", str(two)], tmp_path)
    assert "trained on 2 process(es), backend gloo" in stdout
    _run([sys.executable, str(HELPER), "--out", str(one), "--accumulation", "2"], tmp_path)
    (loss2, w2), (loss1, w1) = _final(two), _final(one)
    assert len(loss2) == len(loss1) == 3
    torch.testing.assert_close(torch.tensor(loss2), torch.tensor(loss1), rtol=1e-5, atol=1e-6)
    assert w1.keys() == w2.keys()
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=k)
    # the runs did train: weights moved from their (seeded) start by 10x the comparison's tolerance (the
    # 3 steps are 1 MSE step and 2 flow steps of the tiny plan, at warm-up learning rates)
    from jscgc.latents import TAEF2
    from jscgc.methods import build_method
    from jscgc.presets import get_preset

    torch.manual_seed(0)
    start = build_method("jscgc", get_preset("tiny"), TAEF2()).state_dict()
    moved = max((w1[k] - start[k]).abs().max().item() for k in w1 if k.startswith("inner."))
    assert moved > 1e-4
