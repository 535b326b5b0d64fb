"""Every command checks its inputs first, in the main process: a bad input is one line ``<command>: …`` naming
it on stderr, exit status 2, no traceback, nothing written at ``--out``. Also the shared checks (jscgc.checks)."""
import json
import math

import pytest
import torch

from experiments import recipe_search, resolution_probe, toy_frontier
from jscgc import checks
from jscgc.checks import UsageError
from paper_figures import kodak as kodak_figures, kodak_report, toy_frontier as frontier_figures
from paper_figures import toy_manifold as toy_figures


def refused(capsys, main, argv, command, names, out=None):
    """``main(argv)`` returns 2 with one stderr line ``<command>: …`` containing ``names``; ``out`` absent."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{command}: ") and "Traceback" not in err, err
    assert all(n in err for n in ((names,) if isinstance(names, str) else names)), err
    assert out is None or not out.exists()


# ----------------------------------------------------------------------------- jscgc.checks
def test_number_checks_accept_good_values_and_name_the_flag_on_bad_ones():
    assert checks.positive_int("--n", 3) == 3 and checks.nonnegative_int("--seed", 0) == 0
    assert checks.finite("--snr", -5) == -5.0 and checks.positive_finite("--lr", 1e-3) == 1e-3
    assert checks.finite_all("--snr", [0, 5.5]) == [0.0, 5.5]
    bad = [(checks.positive_int, 0), (checks.positive_int, -1), (checks.positive_int, 1.5),
           (checks.positive_int, True), (checks.nonnegative_int, -1), (checks.finite, math.nan),
           (checks.finite, math.inf), (checks.finite, "5"), (checks.positive_finite, 0.0),
           (checks.positive_finite, -1e-3), (checks.positive_finite, math.nan)]
    for check, value in bad:
        with pytest.raises(UsageError, match=r"^--flag "):
            check("--flag", value)
    for values, distinct in (([], False), ([1.0, math.nan], False), ([1.0, 1.0], True)):
        with pytest.raises(UsageError, match=r"^--snr .*finite SNRs"):
            checks.finite_all("--snr", values, distinct=distinct, what="SNRs")


def test_names_are_known_distinct_and_at_least_one():
    assert checks.names("--methods", "a, b", ["a", "b", "c"]) == ["a", "b"]
    for text in ("", "a,a", "a,x"):
        with pytest.raises(UsageError, match=r"^--methods "):
            checks.names("--methods", text, ["a", "b"])


def test_folder_checks(tmp_path):
    assert checks.writable_folder("--out", tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()                             # tried, not left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"^--out .*is a file"):
        checks.writable_folder("--out", tmp_path / "file" / "sub")
    assert checks.new_folder("--out", tmp_path / "new") == tmp_path / "new"
    with pytest.raises(UsageError, match=r"^--out .*exists"):
        checks.new_folder("--out", tmp_path)
    (tmp_path / "r.csv").write_text("a,b\n1,2\n")
    assert checks.results_folder("--results", tmp_path, ["r.csv"], {"r.csv": ["a"]}) == tmp_path
    for folder, files, columns, what in ((tmp_path / "none", [], None, "no such folder"),
                                         (tmp_path, ["s.csv"], None, "lacks s.csv"),
                                         (tmp_path, ["r.csv"], {"r.csv": ["c"]}, "no column c")):
        with pytest.raises(UsageError, match=rf"^--results .*{what}"):
            checks.results_folder("--results", folder, files, columns)
    with pytest.raises(UsageError, match=r"^--data: .*does not exist"):
        checks.data_folder("--data", tmp_path / "none")
    (tmp_path / "root" / "bsds500").mkdir(parents=True)
    assert checks.data_folder("--data", tmp_path / "root", need="bsds500") == tmp_path / "root"
    with pytest.raises(UsageError, match=r"^--data: .*bsds500/val is missing"):
        checks.data_folder("--data", tmp_path / "root", need="bsds500/val")


def test_parser_errors_and_run_main(capsys):
    p = checks.Parser()
    p.add_argument("--n", type=int)
    with pytest.raises(UsageError, match="invalid int value"):
        p.parse_args(["--n", "x"])
    ran = []
    assert checks.run_main("cmd", lambda: 3, lambda v: ran.append(v) or 0) == 0 and ran == [3]

    def damaged():
        raise UsageError("--x 1: expected\nsomething")
    assert checks.run_main("cmd", damaged, lambda v: ran.append(v)) == 2 and ran == [3]
    assert capsys.readouterr().err == "cmd: --x 1: expected something\n"


# ----------------------------------------------------------------------------- experiments/toy_frontier.py
@pytest.mark.parametrize("argv,names", [
    (["--lr", "nan"], "--lr nan"), (["--lr", "0"], "--lr 0"), (["--seed", "-1"], "--seed -1"),
    (["--train-steps", "-3"], "--train-steps -3"), (["--steps", "-1"], "--steps '-1'"),
    (["--steps=-1,2"], "--steps '-1,2'"), (["--samples", "0"], "--samples '0'"), (["--snr", "inf"], "--snr inf"),
    (["--batch-size", "0"], "--batch-size 0"), (["--hidden", "0"], "--hidden 0"), (["--n", "-16"], "--n -16"),
    (["--lr", "abc"], "--lr"), (["--bogus"], "--bogus"),
])
def test_toy_frontier_refuses(tmp_path, capsys, argv, names):
    out = tmp_path / "out"
    refused(capsys, toy_frontier.main, ["--out", str(out), *argv], "toy_frontier", names, out)


def test_toy_frontier_refuses_an_unwritable_out(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    refused(capsys, toy_frontier.main, ["--out", str(tmp_path / "file" / "out")], "toy_frontier", "--out")


# ----------------------------------------------------------------------------- experiments/recipe_search.py
@pytest.fixture
def bsds(tmp_path):
    """A data root with bsds500/{train,val}, each two 96x80 images."""
    from PIL import Image

    for part in ("train", "val"):
        (tmp_path / "data" / "bsds500" / part).mkdir(parents=True)
        for k in range(2):
            pixels = (torch.rand(80, 96, 3, generator=torch.Generator().manual_seed(k)) * 255).to(torch.uint8)
            Image.fromarray(pixels.numpy()).save(tmp_path / "data" / "bsds500" / part / f"im{k}.png")
    return tmp_path / "data"


@pytest.mark.parametrize("argv,names", [
    (["--variants", "foo"], "--variants 'foo'"), (["--variants", ""], "--variants ''"),
    (["--steps", "0"], "--steps 0"), (["--batch-size", "-1"], "--batch-size -1"), (["--lr", "nan"], "--lr nan"),
    (["--lr", "-1"], "--lr -1"), (["--pool", "0"], "--pool 0"), (["--snr", "nan"], "--snr nan"),
    (["--snr=-inf"], "--snr -inf"), (["--eval-crop", "100"], "--eval-crop 100"),
    (["--eval-crop", "0"], "--eval-crop 0"), (["--val-images", "0"], "--val-images 0"),
    (["--workers", "0"], "--workers 0"), (["--seed", "-1"], "--seed -1"), (["--steps", "x"], "--steps"),
    (["--eval-crop", "128"], "--eval-crop 128"),                     # larger than the 96x80 images
    (["WEIGHTS"], "--weights"), (["NODATA"], "--data"), (["NOVAL"], "--data"),
])
def test_recipe_search_refuses_before_training(tmp_path, capsys, bsds, argv, names):
    out = tmp_path / "out"
    if argv == ["WEIGHTS"]:
        argv = ["--weights", str(tmp_path / "no_weights")]
    elif argv == ["NODATA"]:
        argv, bsds = [], tmp_path / "no_data"
    elif argv == ["NOVAL"]:
        argv = []
        for f in (bsds / "bsds500" / "val").iterdir():
            f.unlink()
    refused(capsys, recipe_search.main, ["--out", str(out), "--data", str(bsds), "--eval-crop", "64", *argv],
            "recipe_search", names, out)


def test_recipe_search_refuses_a_finished_run(tmp_path, capsys, bsds):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.csv").write_text("variant\n")
    (tmp_path / "out" / "complete.json").write_text("{}")
    refused(capsys, recipe_search.main, ["--out", str(tmp_path / "out"), "--data", str(bsds)], "recipe_search",
            "--out")


# ----------------------------------------------------------------------------- experiments/resolution_probe.py
def _checkpoint(root, method: str, preset: str, step: int, total: int = 2):
    """A checkpoint folder as jscgc.train writes it, of ``method`` at ``preset`` (random weights), that
    stopped at ``step`` of ``total``."""
    from safetensors.torch import save_model

    from jscgc.latents import TAEF2
    from jscgc.methods import build_method
    from jscgc.presets import get_preset

    folder = root / method / "train" / "checkpoints" / f"step_{step:08d}"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    save_model(build_method(method, get_preset(preset), TAEF2()), str(folder / "model.safetensors"))
    plan = [{"name": "only", "steps": total}]
    (folder / "state.json").write_text(json.dumps({"step": step, "stage": 0, "stage_step": step, "plan": plan,
                                                   "losses": [], "train_config": {}}))
    torch.save({"optimizer": {}, "scheduler": {}, "generators": {}}, folder / "optimizer.pt")
    return folder


@pytest.fixture
def probe(tmp_path, bsds):
    """Arguments of a probe whose every input is good: a finished small mambajscc, 192x128-able val images."""
    from PIL import Image

    for f in (bsds / "bsds500" / "val").iterdir():
        Image.new("RGB", (481, 321), (90, 120, 30)).save(f)
    _checkpoint(tmp_path / "ck", "mambajscc", "small", step=2)
    return ["--checkpoint", str(tmp_path / "ck"), "--methods", "mambajscc", "--data", str(bsds),
            "--out", str(tmp_path / "out")]


def test_resolution_probe_checks_pass_on_good_inputs(probe):
    config = resolution_probe.configure(probe)
    assert config.methods == ("mambajscc",) and config.snrs == (5.0,) and config.recorded()["methods"] == "mambajscc"
    images, systems = resolution_probe.check_inputs(config)
    assert len(images) == 2 and images[0][1].shape == (3, *resolution_probe.SIZE) and list(systems) == ["mambajscc"]


@pytest.mark.parametrize("argv,names", [
    (["--methods", "foo"], "--methods 'foo'"), (["--methods", "mambajscc,jscgc"], "--checkpoint"),
    (["--images", "0"], "--images 0"), (["--images", "-3"], "--images -3"), (["--snr", "nan"], "--snr nan"),
    (["--snr", "5", "inf"], "--snr 5.0 inf"), (["--seed", "-1"], "--seed -1"), (["--preset", "huge"], "--preset"),
    (["--data", "NOWHERE"], "--data"),
])
def test_resolution_probe_refuses(tmp_path, capsys, probe, argv, names):
    argv = [str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in argv]
    refused(capsys, resolution_probe.main, probe + argv, "resolution_probe", names, tmp_path / "out")


def test_resolution_probe_refuses_an_existing_out(tmp_path, capsys, probe):
    (tmp_path / "out").mkdir()
    refused(capsys, resolution_probe.main, probe, "resolution_probe", "--out")
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("damage,names", [
    ("unfinished", "stopped at step 1 of 2"), ("other_model", "another model"),
    ("state", "state.json is damaged"), ("model", "model.safetensors is damaged"),
    ("optimizer", "optimizer.pt is damaged"), ("image", "--data"),
])
def test_resolution_probe_refuses_a_bad_checkpoint_or_image(tmp_path, capsys, probe, damage, names):
    ckpt = next((tmp_path / "ck" / "mambajscc" / "train" / "checkpoints").iterdir())
    if damage in ("unfinished", "other_model"):
        (tmp_path / "ck" / "mambajscc").rename(tmp_path / "old")
        _checkpoint(tmp_path / "ck", "mambajscc", "small" if damage == "unfinished" else "tiny",
                    step=1 if damage == "unfinished" else 2)
    elif damage == "image":
        next((tmp_path / "data" / "bsds500" / "val").iterdir()).write_bytes(b"not an image")
    else:
        path = ckpt / {"state": "state.json", "model": "model.safetensors", "optimizer": "optimizer.pt"}[damage]
        path.write_bytes(path.read_bytes()[:10])
    refused(capsys, resolution_probe.main, probe, "resolution_probe", names, tmp_path / "out")


# ----------------------------------------------------------------------------- paper_figures/*.py
def _folder(tmp_path, files: dict):
    folder = tmp_path / "results"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None


FIGURE_CASES = [
    (kodak_figures.main, "paper_figures/kodak.py", {}, "lacks summary.csv"),
    (kodak_figures.main, "paper_figures/kodak.py", {"summary.csv": "psnr\n1\n"}, "no column method, snr_db"),
    (kodak_figures.main, "paper_figures/kodak.py", {"summary.csv": "method,snr_db\njscgc,5\n", "config.json": "{"},
     "config.json is damaged"),
    (frontier_figures.main, "paper_figures/toy_frontier.py", {}, "lacks frontier.csv"),
    (frontier_figures.main, "paper_figures/toy_frontier.py", {"frontier.csv": ""}, "no column manifold"),
    (toy_figures.main, "paper_figures/toy_manifold.py", {}, "lacks results.csv"),
    (toy_figures.main, "paper_figures/toy_manifold.py", {"results.csv": "manifold,snr_db\n"}, "no column decoder, p"),
]


@pytest.mark.parametrize("main,command,files,names", FIGURE_CASES)
def test_figure_scripts_refuse_a_folder_without_their_files(tmp_path, capsys, main, command, files, names):
    folder = _folder(tmp_path, files)
    refused(capsys, main, ["--results", str(folder)], command, ("--results", names))
    assert _listing(folder) == sorted(files)                          # nothing drawn


@pytest.mark.parametrize("main,command", [(kodak_figures.main, "paper_figures/kodak.py"),
                                          (frontier_figures.main, "paper_figures/toy_frontier.py"),
                                          (toy_figures.main, "paper_figures/toy_manifold.py"),
                                          (kodak_report.main, "paper_figures/kodak_report.py")])
def test_figure_scripts_refuse_a_missing_results_folder(tmp_path, capsys, main, command):
    refused(capsys, main, ["--results", str(tmp_path / "none"), *(["--out", str(tmp_path / "out")]
                                                                  if main is kodak_report.main else [])],
            command, "--results", tmp_path / "out")
    assert not (tmp_path / "none").exists()


def _kodak_run(folder, config=None):
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("method,snr_db,image,psnr\njscgc,5,kodim01,20\n")
    (folder / "summary.csv").write_text("method,snr_db,psnr\njscgc,5,20\n")
    (folder / "config.json").write_text(json.dumps(config if config is not None else {
        "args": {"seed": 0}, "methods": {}, "preset": {"name": "tiny"}, "images": [], "device": "cpu", "torch": "x"}))
    (folder / "timings.json").write_text(json.dumps({"wall": 1.0}))
    return folder


@pytest.mark.parametrize("case,names", [
    ("no_timings", "--results"), ("bad_config", "--results"), ("config_without_keys", "no args"),
    ("bad_seed_run", "--seed-runs"), ("out_is_file", "--out"), ("bad_flag", "--bogus"),
])
def test_kodak_report_refuses(tmp_path, capsys, case, names):
    results = _kodak_run(tmp_path / "run")
    out, argv = tmp_path / "out", []
    if case == "no_timings":
        (results / "timings.json").unlink()
    elif case == "bad_config":
        (results / "config.json").write_text("{not json")
    elif case == "config_without_keys":
        _kodak_run(results.parent / "run2", config={"preset": {}})
        results = results.parent / "run2"
    elif case == "bad_seed_run":
        argv = ["--seed-runs", str(tmp_path / "missing")]
    elif case == "out_is_file":
        out.write_text("x")
        out = out / "sub"
    else:
        argv = ["--bogus"]
    refused(capsys, kodak_report.main, ["--results", str(results), "--out", str(out), *argv],
            "paper_figures/kodak_report.py", names, out)
