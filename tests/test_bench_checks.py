"""Every bench script checks all its inputs in the main process before any work: a bad one is one line
``<script>: …`` on stderr naming the flag, exit status 2 (SystemExit, or gpu_suite's return value), no
traceback, nothing written at the output paths given. No benchmark runs here: each case is refused first."""
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = "{tmp}/out/r.json"            # every JSON-writing case names this; neither it nor {tmp}/out may appear


def _image(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def tmp(tmp_path):
    """Bad and good inputs: a plain file, an existing folder, data roots lacking bsds500's folders, with empty
    ones, too few images, too small ones, a non-image; results folders with a damaged and a foreign JSON."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "existing").mkdir()
    (tmp_path / "bare" / "bsds500").mkdir(parents=True)
    for split in ("train", "val"):
        (tmp_path / "empty" / "bsds500" / split).mkdir(parents=True)
        _image(tmp_path / "few" / "bsds500" / split / "0.png", 96, 80)
        _image(tmp_path / "good" / "bsds500" / split / "0.png", 481, 321)
        _image(tmp_path / "good" / "bsds500" / split / "1.png", 321, 481)
    for i in range(2):
        _image(tmp_path / "small" / "bsds500" / "val" / f"{i}.png", 300, 200)
        (tmp_path / "junk" / "bsds500" / "val").mkdir(parents=True, exist_ok=True)
        (tmp_path / "junk" / "bsds500" / "val" / f"{i}.png").write_text("not an image")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "receiver_full_eager.json").write_text("{not json")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "train_step_full_bf16.json").write_text('{"bench": "receiver", "command": "x"}')
    (tmp_path / "unrelated").mkdir()                    # another script's result beside none of the suite's
    (tmp_path / "unrelated" / "train_profile_cpu.json").write_text('{"bench": "train_profile"}')
    return tmp_path


def _run(script: str, argv: list[str]) -> int:
    try:
        return importlib.import_module(f"bench.{script}").main(argv)
    except SystemExit as refused:
        return refused.code


def refused(capsys, tmp, script, argv, flag):
    """``bench/<script>.py argv`` gives 2 and one stderr line ``<script>: …`` naming ``flag``; nothing at
    {tmp}/out (nor at a path given to --out)."""
    argv = [a.format(tmp=tmp) for a in argv]
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    assert _run(script, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{script}: ") and "Traceback" not in err, err
    assert flag in err, err
    assert sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before                # nothing written
    assert not (tmp / "out").exists()


JSON_CASES = {
    "receiver": [(["--sizes", "256x250:1"], "--sizes"), (["--sizes", "64x64:0"], "--sizes"),
                 (["--sizes", "big"], "--sizes"), (["--sizes", "64x64:1", "8x8:1"], "--sizes"),
                 (["--sizes", ""], "--sizes"), (["--profile", "64x64:1,4"], "--profile"),
                 (["--profile", "axb"], "--profile"), (["--profile", ""], "--profile"),
                 (["--steps", "0"], "--steps"), (["--repeats", "-2"], "--repeats"), (["--steps", "x"], "--steps"),
                 (["--preset", "huge"], "--preset"), (["--dtype", "int8"], "--dtype"), (["--bogus"], "--bogus")],
    "train_step": [(["--batch", "0"], "--batch"), (["--steps", "0"], "--steps"), (["--crop", "0"], "--crop"),
                   (["--crop", "-16"], "--crop"), (["--crop", "30"], "--crop"),
                   (["--frozen-dtype", "bf16", "--backbone-mode", "full"], "--frozen-dtype"),
                   (["--backbone-mode", "half"], "--backbone-mode"), (["--preset", "huge"], "--preset")],
    "train_rate": [(["--methods", "nosuch"], "--methods"), (["--methods", "jscgc,jscgc"], "--methods"),
                   (["--methods", ""], "--methods"), (["--steps", "0", "4"], "--steps"),
                   (["--steps", "4", "2"], "--steps"), (["--steps", "2", "100000"], "--steps"),
                   (["--steps", "2"], "--steps"), (["--goal-seconds", "nan"], "--goal-seconds"),
                   (["--goal-seconds", "-1"], "--goal-seconds"), (["--data", "{tmp}/none"], "--data"),
                   (["--data", "{tmp}/bare"], "bsds500/train"), (["--data", "{tmp}/empty"], "no image files"),
                   (["--data", "{tmp}/file"], "--data")],
    "train_workers": [(["--train-steps", "0"], "--train-steps"), (["--rounds", "0"], "--rounds"),
                      (["--workers", "1"], "--workers"), (["--methods", "nosuch"], "--methods"),
                      (["--preset", "huge"], "--preset")],
    "cpu_headroom": [(["--calls", "0"], "--calls"), (["--methods", "nosuch"], "--methods"),
                     (["--data", "{tmp}/none"], "--data"), (["--data", "{tmp}/bare"], "bsds500/train")],
    "taef2_compile": [(["--rounds", "0"], "--rounds"), (["--calls", "-1"], "--calls"), (["--threads", "0"], "--threads"),
                      (["--calls", "x"], "--calls")],
}


def _json_cases():
    for script, cases in JSON_CASES.items():
        data = ["--data", "{tmp}/few"] if script == "train_rate" else []
        for argv, flag in cases:
            given = data if "--data" not in argv else []
            yield pytest.param(script, [*given, *argv, "--out", OUT], flag, id=f"{script} {' '.join(argv)}")
        for out in ("{tmp}/file/r.json", "{tmp}/existing", "{tmp}/existing/"):
            yield pytest.param(script, [*data, "--out", out], "--out", id=f"{script} --out {out}")


@pytest.mark.parametrize("script, argv, flag", _json_cases())
def test_json_writers_refuse_bad_inputs_and_write_nothing(capsys, tmp, script, argv, flag):
    refused(capsys, tmp, script, argv, flag)


CASES = {
    "scan": [(["--batch", "0"], "--batch"), (["--length", "-1"], "--length"), (["--channels", "0"], "--channels"),
             (["--state", "x"], "--state"), (["--groups", "0"], "--groups"), (["--repeats", "0"], "--repeats"),
             (["--channels", "1000", "--groups", "3"], "--groups"), (["--device", "tpu"], "--device"),
             (["--device", "cuda:99"], "--device"), (["--device", "nonsense:x"], "--device"),
             (["--bogus"], "--bogus")],
    "patch_fd": [(["--repeats", "0"], "--repeats"), (["--repeats", "x"], "--repeats"), (["--bogus"], "--bogus")],
    "ms_ssim": [(["--repeats", "0"], "--repeats"), (["--no-reference", "--repeats", "-1"], "--repeats")],
    "opta": [(["--snr", "nan"], "--snr"), (["--snr", "inf", "5"], "--snr"), (["--snr"], "--snr"),
             (["--dim", "3"], "--dim"), (["--dim", "0"], "--dim"), (["--steps", "0"], "--steps")],
    "mi_estimators": [(["--n", "0"], "--n"), (["--n", "500"], "--n"), (["--n", "1020"], "--n"),
                      (["--n", "4e3"], "--n")],
    "perceptual": [(["--repeats", "0"], "--repeats"), (["--sizes", "10x10"], "--sizes"),
                   (["--sizes", "big"], "--sizes"), (["--sizes"], "--sizes")],
    "sharpness": [(["--images", "1", "--data", "{tmp}/good"], "--images"), (["--data", "{tmp}/none"], "--data"),
                  (["--data", "{tmp}/bare"], "bsds500/val"), (["--data", "{tmp}/empty"], "no image files"),
                  (["--data", "{tmp}/few", "--images", "2"], "--images"),
                  (["--data", "{tmp}/good", "--images", "3"], "--images"),
                  (["--data", "{tmp}/small", "--images", "2"], "smaller than the 384x256 crop"),
                  (["--data", "{tmp}/junk", "--images", "2"], "cannot be read")],
    "performance": [(["--write", "--check"], "--write and --check"), (["--results", "{tmp}/none"], "--results"),
                    (["--results", "{tmp}/file"], "--results"),
                    (["--results", "{tmp}/badjson", "--write"], "receiver_full_eager.json is not readable JSON"),
                    (["--results", "{tmp}/foreign", "--write"],
                     "train_step_full_bf16.json is not a result of bench/train_step.py")],
    "train_profile": [(["--methods", "bogus", "--out", "{tmp}/out/p.json"], "--methods"),
                      (["--methods", "cjscc,cjscc", "--out", "{tmp}/out/p.json"], "--methods"),
                      (["--steps", "0", "--out", "{tmp}/out/p.json"], "--steps"),
                      (["--warmup", "-1", "--out", "{tmp}/out/p.json"], "--warmup"),
                      (["--data", "{tmp}/none", "--out", "{tmp}/out/p.json"], "--data"),
                      (["--out", "{tmp}/file/sub.json"], "--out")],
    "train_speed": [(["--methods", "bogus", "--out", "{tmp}/out/s.json"], "--methods"),
                    (["--variants", "old", "--out", "{tmp}/out/s.json"], "--variants"),
                    (["--variants", "old,old", "--out", "{tmp}/out/s.json"], "--variants"),
                    (["--variants", "old,old+bogus", "--out", "{tmp}/out/s.json"], "--variants"),
                    (["--rounds", "0", "--out", "{tmp}/out/s.json"], "--rounds"),
                    (["--steps", "0", "--out", "{tmp}/out/s.json"], "--steps"),
                    (["--warmup", "-1", "--out", "{tmp}/out/s.json"], "--warmup"),
                    (["--threads", "0", "--out", "{tmp}/out/s.json"], "--threads"),
                    (["--preset", "huge", "--out", "{tmp}/out/s.json"], "--preset"),
                    (["--data", "{tmp}/none", "--out", "{tmp}/out/s.json"], "--data"),
                    (["--out", "{tmp}/file/sub.json"], "--out")],
    "first_losses": [(["--methods", "bogus", "--out", "{tmp}/out/l.json"], "--methods"),
                     (["--steps", "0", "--out", "{tmp}/out/l.json"], "--steps"),
                     (["--threads", "0", "--out", "{tmp}/out/l.json"], "--threads"),
                     (["--preset", "huge", "--out", "{tmp}/out/l.json"], "--preset"),
                     (["--data", "{tmp}/none", "--out", "{tmp}/out/l.json"], "--data"),
                     (["--out", "{tmp}/file/sub.json"], "--out"),
                     (["--compare", "{tmp}/none.json", "{tmp}/file"], "--compare"),
                     (["--compare", "{tmp}/file", "{tmp}/file"], "not JSON"),
                     (["--compare", "{tmp}/unrelated/train_profile_cpu.json", "{tmp}/file"], "no methods")],
    "eval_profile": [(["--repeats", "0"], "--repeats"), (["--timings", "{tmp}/none.json"], "--timings"),
                     (["--timings", "{tmp}/file"], "--timings"), (["--out", "{tmp}/file/sub.json"], "--out")],
    "gpu_suite": [(["nosuch"], "nosuch"), (["--deadline", "0"], "--deadline"), (["--deadline", "nan"], "--deadline"),
                  (["--deadline", "x"], "--deadline"), (["--wheels", "{tmp}/file"], "--wheels"),
                  (["--out", "{tmp}/file/sub"], "--out"), (["--bogus"], "--bogus")],
}


@pytest.mark.parametrize("script, argv, flag", [pytest.param(script, argv, flag, id=f"{script} {' '.join(argv)}")
                                                for script, cases in CASES.items() for argv, flag in cases])
def test_scripts_refuse_bad_inputs_before_any_work(capsys, tmp, script, argv, flag):
    if script == "gpu_suite":           # a dry run checks as a run does, and would run nothing if it did not refuse
        argv = ["--out", "{tmp}/out", "--dry-run", *argv]
    page = (ROOT / "docs" / "performance.md").read_bytes()   # what performance.py --write rewrites
    refused(capsys, tmp, script, argv, flag)
    assert (ROOT / "docs" / "performance.md").read_bytes() == page


def test_perceptual_refuses_when_a_metric_cannot_load(capsys, tmp, monkeypatch):
    from bench import perceptual

    monkeypatch.setattr(perceptual, "available_metrics", lambda names: ({}, {"lpips_vgg": "no weights\nhere"}))
    refused(capsys, tmp, "perceptual", ["--repeats", "1"], "lpips_vgg: no weights here")


def test_good_inputs_pass_the_checks_unchanged(tmp):
    """The checks return what the scripts used before, and create nothing."""
    from bench import gpu_suite, performance, receiver, scan, sharpness, train_rate, train_step

    assert scan.check(["--device", "cpu", "--channels", "8", "--groups", "2"]).channels == 8
    a, preset, sizes, prof, out = receiver.check(["--profile", "64x64:2", "--out", str(tmp / "out" / "r.json")],
                                                 torch.device("cpu"))
    assert sizes == receiver.parse_sizes(receiver.CPU_SIZES, 16) and prof == (64, 64, 2) and out.name == "r.json"
    assert train_step.check(["--out", str(tmp / "out" / "s.json")])[2] == 64          # the preset's crop
    methods, folder = train_rate.check(["--data", str(tmp / "few"), "--methods", "jscgc, cjscc",
                                        "--out", str(tmp / "out" / "t.json")])[2:4]
    assert methods == ["jscgc", "cjscc"] and folder == tmp / "few" / "bsds500" / "train"
    assert sharpness.check(["--data", str(tmp / "good"), "--images", "2"])[1] == tmp / "good" / "bsds500" / "val"
    steps = {s.name for s in gpu_suite.STEPS}
    assert performance.check(["--check"])[1] == {k: v for k, v in performance.load().items() if k in steps}
    assert performance.check(["--check", "--results", str(tmp / "unrelated")])[1] == {}
    a, steps, out = gpu_suite.check(["--out", str(tmp / "out"), "train_rate_default"])
    assert [s.name for s in steps] == ["train_rate_default"] and out == tmp / "out"
    assert not (tmp / "out").exists()


@pytest.mark.parametrize("argv", [["bench/patch_fd.py", "--repeats", "0"],
                                  ["bench/gpu_suite.py", "--deadline", "-1", "--out", "{out}"],
                                  ["bench/train_step.py", "--crop", "0", "--out", "{out}/r.json"]])
def test_a_script_run_from_the_shell_exits_2_with_one_line(argv, tmp_path):
    argv = [a.format(out=tmp_path / "out") for a in argv]
    run = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == "", run
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(Path(argv[0]).stem + ": "), run.stderr
    assert not (tmp_path / "out").exists()
