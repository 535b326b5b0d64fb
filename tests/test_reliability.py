"""Runs that are killed, fed damaged files or started twice end in one clear line or a correct result:
validated reads of every stored file (jscgc.io.read_json, jscgc.checkpoints.check_checkpoint), the per-folder
lock, the completion marker, and kodak.py's --overwrite with a --checkpoint inside --out."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from jscgc.checkpoints import check_checkpoint, latest_checkpoint, load_trained
from jscgc.data import ring
from jscgc.io import DamagedFile, FolderBusy, FolderLock, is_complete, mark_complete, read_json
from jscgc.methods import ToySpec, build_toy
from jscgc.train import TrainConfig, train

CFG = TrainConfig(steps=6, batch_size=8, lr=1e-2, snr_db=[0.0, 10.0], progress=False, checkpoint_every=3, seed=1)


def _system():
    torch.manual_seed(0)
    return build_toy("jscgc", ToySpec(2, 1, hidden=8, encoder_hidden=8))


@pytest.fixture()
def trained(tmp_path):
    train(_system(), ring(), CFG, out_dir=tmp_path)
    return tmp_path, latest_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- damaged files
def test_read_json_names_a_damaged_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"step": 3')                                   # truncated
    with pytest.raises(DamagedFile, match=r"state.json is damaged: not JSON .*; remove it or pass --overwrite"):
        read_json(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DamagedFile, match="not JSON"):
        read_json(path)
    path.write_text('{"step": 3}')
    with pytest.raises(DamagedFile, match="no plan"):
        read_json(path, keys=("step", "plan"))
    assert read_json(path) == {"step": 3}


@pytest.mark.parametrize("name, damage", [
    ("state.json", lambda p: p.write_text(p.read_text()[:40])),             # truncated
    ("model.safetensors", lambda p: p.write_bytes(b"\0" * p.stat().st_size)),  # zeroed
    ("optimizer.pt", lambda p: p.write_bytes(b"garbage, not a pickle")),
])
def test_each_damaged_checkpoint_file_is_named_not_a_traceback(trained, name, damage):
    out, ckpt = trained
    check_checkpoint(ckpt)                                           # intact: no error
    damage(ckpt / name)
    with pytest.raises(DamagedFile, match=f"{name} is damaged: .*; remove it or pass --overwrite"):
        check_checkpoint(ckpt)
    with pytest.raises(DamagedFile, match=name):                     # resuming reads the same files
        train(_system(), ring(), CFG, out_dir=out)
    if name != "optimizer.pt":                                       # loading the weights needs no optimiser
        with pytest.raises(DamagedFile, match=name):
            load_trained(_system(), out)


def test_weights_of_another_model_are_not_called_damage(trained):
    out, _ = trained
    other = build_toy("jscgc", ToySpec(2, 1, hidden=16, encoder_hidden=8))
    with pytest.raises(ValueError, match="weights of another model"):
        load_trained(other, out)


# ----------------------------------------------------------------------------- lock and completion
def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(FolderBusy, match=rf"{tmp_path} is in use by another run \(pid \d+"):
            FolderLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()                         # released on exit
    FolderLock(tmp_path).acquire().release()


def test_a_stale_or_unreadable_lock_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                                "started": "then", "command": "killed"}))
    lock = FolderLock(tmp_path).acquire()                            # the process that held it is gone
    assert json.loads((tmp_path / ".lock").read_text())["command"] != "killed"
    lock.release()
    (tmp_path / ".lock").write_text("{not json")
    FolderLock(tmp_path).acquire().release()


def test_completion_marker_is_written_last_and_read_back(tmp_path):
    assert not is_complete(tmp_path)
    mark_complete(tmp_path, {"command": "x"})
    assert is_complete(tmp_path) and read_json(tmp_path / "complete.json")["command"] == "x"


def test_an_explicit_weights_folder_that_does_not_exist_is_an_error(monkeypatch, tmp_path):
    from jscgc.latents import weights_root

    monkeypatch.setenv("JSCGC_WEIGHTS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="JSCGC_WEIGHTS .*nowhere does not exist"):
        weights_root()
    with pytest.raises(FileNotFoundError, match="nowhere2 does not exist"):
        weights_root(tmp_path / "nowhere2")


# ----------------------------------------------------------------------------- kodak.py end to end
@pytest.fixture()
def kodak_args(tmp_path):
    from jscgc.imagedata import data_root

    try:
        root = data_root(need="kodak")
        data_root(need="bsds500")
    except FileNotFoundError:
        pytest.skip("../shared/data (kodak, bsds500) is absent; set JSCGC_DATA")
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for f in sorted((root / "bsds500" / "train").glob("*.jpg"))[:3]:
        (train_dir / f.name).write_bytes(f.read_bytes())
    return ["--preset", "tiny", "--images", "kodim01,kodim23", "--snr", "5", "--crop", "64", "--methods", "mambajscc",
            "--train-steps", "2", "--train-data", str(train_dir), "--no-progress", "--no-figures", "--bootstrap", "20",
            "--figure-images", ""]


def test_kodak_killed_before_it_finished_is_finished_by_the_same_command(kodak_args, tmp_path, capsys):
    from experiments.kodak import main

    out = tmp_path / "out"
    args = kodak_args + ["--out", str(out)]
    assert main(args) == 0 and is_complete(out)
    whole = (out / "metrics.csv").read_bytes(), (out / "sets.csv").read_bytes()
    assert main(args) == 2 and "holds a finished run" in capsys.readouterr().err
    (out / "complete.json").unlink()                                 # as if killed after metrics.csv
    (out / "sets.csv").unlink()
    assert main(args) == 0 and is_complete(out)
    assert ((out / "metrics.csv").read_bytes(), (out / "sets.csv").read_bytes()) == whole


def test_kodak_refuses_to_overwrite_the_checkpoint_it_reads_and_a_busy_folder(kodak_args, tmp_path, capsys):
    from experiments.kodak import main

    out = tmp_path / "out"
    assert main(kodak_args + ["--out", str(out)]) == 0
    weights = latest_checkpoint(out / "mambajscc" / "train") / "model.safetensors"
    assert main(kodak_args + ["--out", str(out), "--checkpoint", str(out), "--overwrite"]) == 2
    assert "--overwrite would delete what this run reads" in capsys.readouterr().err and weights.is_file()
    other = tmp_path / "other"
    with FolderLock(other):
        assert main(kodak_args + ["--out", str(other)]) == 2
        assert "is in use by another run" in capsys.readouterr().err
    record = out / "mambajscc" / "run.json"
    intact = record.read_bytes()
    record.write_bytes(intact[: len(intact) // 2])                    # a truncated run record
    assert main(kodak_args + ["--out", str(tmp_path / "third"), "--checkpoint", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.json is damaged" in err[0] and not (tmp_path / "third").exists()
    record.write_bytes(intact)
    (weights.parent / "state.json").write_text("{")
    assert main(kodak_args + ["--out", str(tmp_path / "third"), "--checkpoint", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "state.json is damaged" in err[0]
