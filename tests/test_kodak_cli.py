"""experiments/kodak.py refuses bad input before any work: exit 2, one line ``kodak: …`` naming the input,
``--out`` absent afterwards; valid edge cases (a 96-px crop) pass the checks; identical runs write
identical result files; per-image seeds accept every finite SNR."""
import json
import math
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import kodak as cli
from jscgc.evaluation import image_seed
from jscgc.imagedata import data_root


@pytest.fixture(scope="module")
def root():
    try:
        r = data_root(need="kodak")
        data_root(need="bsds500")
    except FileNotFoundError:
        pytest.skip("../shared/data (kodak, bsds500) is absent; set JSCGC_DATA")
    return r


@pytest.fixture(scope="module")
def small_train(root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for f in sorted((root / "bsds500" / "train").glob("*.jpg"))[:3]:
        shutil.copy(f, folder / f.name)
    return folder


def _refused(capsys, argv, out, *words):
    code = cli.main([*argv, "--out", str(out), "--images", "kodim01", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("kodak: "), err
    assert all(w in err[0] for w in words), err
    assert not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--snr", "nan"], ["--snr nan", "finite"]),
    (["--snr", "0", "inf"], ["--snr inf", "finite"]),
    (["--snr=-inf"], ["--snr -inf"]),
    (["--crop", "0"], ["--crop 0", "positive"]),
    (["--crop", "-16"], ["--crop -16"]),
    (["--crop", "100"], ["kodim01", "100x100", "multiples of 16", "--crop 96"]),
    (["--crop", "8"], ["kodim01", "8x8", "smaller than one 16x16 token"]),
    (["--methods", "jscgc,bogus"], ["bogus"]),
    (["--channel", "nope"], ["--channel nope", "awgn"]),
    (["--channel", "bsc", "--methods", "cjscc"], ["--channel bsc", "cjscc", "carries bits"]),
    (["--train-steps", "0"], ["--train-steps 0"]),
    (["--workers", "0"], ["--workers 0", ">= 1"]),
    (["--dial", "samples=0"], ["--dial 'samples=0'", "integer >= 1"]),
    (["--dial", "temperature=2"], ["--dial 'temperature=2'", "temperature"]),
    (["--dial", "samples=2", "--dial", "samples=2"], ["expected distinct points"]),
    (["--dial", "steps=9"], ["none equal to the default receiver"]),
    (["--dial", "samples=2", "--dial-methods", "diffjscc"], ["--dial-methods 'diffjscc'"]),
    (["--dial", "prior_noise=0.1", "--methods", "jscgc-paper", "--dial-methods", "jscgc-paper"],
     ["--dial for jscgc-paper", "posterior-mean prior"]),
    (["--preset", "full", "--zimage", "/nonexistent", "--yes"], ["/nonexistent", "no such folder"]),
])
def test_bad_numbers_and_names_are_refused(argv, words, root, tmp_path, capsys):
    _refused(capsys, argv, tmp_path / "out", *words)


def test_bad_folders_and_weights_are_refused(root, tmp_path, capsys):
    _refused(capsys, ["--train-data", str(tmp_path / "nowhere")], tmp_path / "out", "nowhere", "does not exist")
    (tmp_path / "empty").mkdir()
    _refused(capsys, ["--train-data", str(tmp_path / "empty")], tmp_path / "out", "empty", "no image files")
    _refused(capsys, ["--weights", str(tmp_path / "noweights")], tmp_path / "out", "noweights")
    bad = tmp_path / "badweights"
    bad.mkdir()
    (bad / "taef2_encoder.pth").write_bytes(b"not a checkpoint")
    (bad / "taef2_decoder.pth").write_bytes(b"not a checkpoint")
    _refused(capsys, ["--weights", str(bad)], tmp_path / "out", "taef2_encoder.pth is not a valid TAEF2 checkpoint")
    (tmp_path / "afile").write_text("x")
    _refused(capsys, [], tmp_path / "afile" / "out", "afile is a file")


def test_checkpoints_of_another_preset_or_missing_are_refused(root, small_train, tmp_path, capsys):
    _refused(capsys, ["--checkpoint", str(tmp_path / "nockpt")], tmp_path / "out", "no trained jscgc")
    folder = tmp_path / "ckpt" / "jscgc"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"method": "jscgc", "preset": {"name": "tiny"}}))
    _refused(capsys, ["--checkpoint", str(tmp_path / "ckpt"), "--preset", "default", "--yes"], tmp_path / "out",
             "built with preset tiny, this run uses default")


def test_a_96_px_crop_passes_the_checks_and_the_dry_pass(root, small_train, tmp_path):
    config = cli.configure(["--crop", "96", "--images", "kodim01", "--snr", "-30", "50", "--methods", "cjscc,jscgc",
                            "--train-data", str(small_train), "--out", str(tmp_path / "out"), "--no-progress"])
    setup = cli.check_inputs(config)
    cli.dry_pass(setup)
    assert not (tmp_path / "out").exists()


def test_identical_runs_write_identical_files(root, small_train, tmp_path, capsys):
    argv = ["--crop", "64", "--images", "kodim01,kodim23", "--snr", "5", "--methods", "cjscc,jscgc",
            "--train-steps", "4", "--train-data", str(small_train), "--no-progress", "--no-figures"]
    for out in ("a", "b"):
        assert cli.main([*argv, "--out", str(tmp_path / out)]) == 0
    for name in ("metrics.csv", "summary.csv", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert {m["examples"] for m in config["methods"].values()} == {4 * 8}      # the same budget for every method
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 2                  # no silent overwrite
    # checkpoints trained on other data are never resumed: the rerun is refused, naming what differs
    (tmp_path / "a" / "complete.json").unlink()                                  # as if it had not finished
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(next(small_train.glob("*.jpg")), other / "one.jpg")
    changed = [*argv[:-4], "--train-data", str(other), "--no-progress", "--no-figures", "--out", str(tmp_path / "a")]
    assert cli.main(changed) == 2
    assert "built with other settings (train_data, train_data_files)" in capsys.readouterr().err


def test_a_rerun_loads_finished_trainings_records_it_and_scores_the_same(root, small_train, tmp_path):
    """A run whose --out holds finished trainings with its record loads them (how the r5 Kodak runs reused
    trainings): config.json says it resumed at the last step, and every metric is what the first run gave."""
    argv = ["--crop", "64", "--images", "kodim01", "--snr", "5", "--methods", "cjscc,jscgc", "--train-steps", "4",
            "--train-data", str(small_train), "--no-progress", "--no-figures", "--out", str(tmp_path / "a")]
    assert cli.main(argv) == 0
    first = (tmp_path / "a" / "metrics.csv").read_bytes()
    before = json.loads((tmp_path / "a" / "config.json").read_text())["methods"]
    (tmp_path / "a" / "complete.json").unlink()                                  # allow the rerun into --out
    assert cli.main(argv) == 0
    after = json.loads((tmp_path / "a" / "config.json").read_text())["methods"]
    assert {m: i["resumed_from_step"] for m, i in before.items()} == {"cjscc": 0, "jscgc": 0}
    assert {m: i["resumed_from_step"] for m, i in after.items()} == {"cjscc": 4, "jscgc": 4}
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == first


@settings(max_examples=200, deadline=None)
@given(a=st.floats(allow_nan=False, allow_infinity=False), b=st.floats(allow_nan=False, allow_infinity=False))
def test_image_seeds_accept_every_finite_snr_and_separate_them(a, b):
    sa, sb = image_seed(0, "kodim01", a), image_seed(0, "kodim01", b)
    assert 0 <= sa < 2 ** 63 and torch.Generator().manual_seed(sa) is not None
    assert (sa == sb) == (float(a).hex() == float(b).hex())
    assert image_seed(0, "kodim01", -50.0) != image_seed(0, "kodim01", 50.0)
    assert image_seed(0, "kodim01", a) != image_seed(0, "kodim02", a)
    assert math.isfinite(a)


def test_a_record_differing_only_in_progress_or_checkpointing_is_the_same_training(tmp_path):
    """kodak.py and val_study.py share trainings by their run record; --no-progress must not split them."""
    from dataclasses import replace

    from jscgc.checks import UsageError
    from jscgc.presets import get_preset
    from jscgc.runs import refuse_other_record, run_record

    preset = get_preset("tiny")
    stored = run_record("jscgc", preset, replace(preset.train, progress=True), "bsds500/train", "abc", 0)
    (tmp_path / "run.json").write_text(json.dumps(stored))
    quiet = replace(preset.train, progress=False, checkpoint_every=7, keep_checkpoints=5)
    refuse_other_record(tmp_path, run_record("jscgc", preset, quiet, "bsds500/train", "abc", 0), "--out")
    with pytest.raises(UsageError, match=r"built with other settings \(train\)"):
        refuse_other_record(tmp_path, run_record("jscgc", preset, replace(quiet, lr=0.5), "bsds500/train", "abc", 0),
                            "--out")


def test_workers_train_what_one_process_trains(root, small_train, tmp_path):
    """--workers 2 trains each method in a forked process on its share of the threads: the same results as
    one process, up to float32 rounding of the thread count (jscgc.forked)."""
    import pandas as pd

    argv = ["--crop", "64", "--images", "kodim01", "--snr", "5", "--methods", "cjscc,jscgc",
            "--train-steps", "4", "--train-data", str(small_train), "--no-progress", "--no-figures"]
    for workers in ("1", "2"):
        assert cli.main([*argv, "--workers", workers, "--out", str(tmp_path / workers)]) == 0
    one, two = (pd.read_csv(tmp_path / w / "metrics.csv") for w in ("1", "2"))
    assert list(one.columns) == list(two.columns) and len(one) == len(two) > 0
    numbers = one.select_dtypes("number").columns
    pd.testing.assert_frame_equal(one[numbers], two[numbers], rtol=1e-3, atol=1e-5)
    configs = [json.loads((tmp_path / w / "config.json").read_text()) for w in ("1", "2")]
    for c in configs:
        c.pop("workers", None)
        c.get("settings", {}).pop("workers", None)
    assert configs[0]["methods"].keys() == configs[1]["methods"].keys() == {"cjscc", "jscgc"}
    for m in ("cjscc", "jscgc"):
        for key in ("examples", "steps", "plan", "trainable_parameters"):
            assert configs[0]["methods"][m][key] == configs[1]["methods"][m][key], (m, key)
    timings = json.loads((tmp_path / "2" / "timings.json").read_text())
    assert timings["train_all"] > 0 and timings["train_cjscc"] > 0


def test_config_records_the_code_the_run_started_with(root, small_train, tmp_path, monkeypatch):
    """A commit made while a run trains must not be recorded as the run's code: config.json and
    complete.json hold the source version taken before any work."""
    calls = iter(range(100))
    monkeypatch.setattr(cli, "source_version", lambda *a: {"commit": f"version {next(calls)}", "dirty": False})
    argv = ["--crop", "64", "--images", "kodim01", "--snr", "5", "--methods", "cjscc", "--train-steps", "2",
            "--train-data", str(small_train), "--no-progress", "--no-figures", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    complete = json.loads((tmp_path / "run" / "complete.json").read_text())
    assert config["source"] == complete["source"] == {"commit": "version 0", "dirty": False}
