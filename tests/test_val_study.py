"""The validation study (experiments/val_study.py): the rule of docs/val_study.md on tables with known answers,
the runner's input checks, its run records (kodak.py's for unchanged methods) and one tiny run end to end."""
import json

import numpy as np
import pandas as pd
import pytest

import experiments.val_study as study
import experiments.val_study_variants as variants
from experiments.kodak_config import configure, train_config
from experiments.val_study_report import BOUND, choose, confirm, rank
from jscgc.presets import OUR_RECIPE, get_preset
from jscgc.runs import data_fingerprint, run_record, same_training


def _frame(receivers: dict, n: int = 12, seed: int = 0, rng=None) -> pd.DataFrame:
    """Rows of per-image metrics at two SNRs: receivers = {name: (role, psnr, lpips_alex, dists, lpips_vgg)};
    each value gets small per-image noise so that standard errors exist."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for name, (role, psnr, la, di, lv) in receivers.items():
        for i in range(n):
            for snr in (0.0, 10.0):
                e = rng.normal(0, 0.002, 4)
                rows.append({"receiver": name, "role": role, "seed": seed, "image": f"im{i}", "snr_db": snr,
                             "sample": 0, "psnr": psnr + 100 * e[0], "lpips_alex": la + e[1], "dists": di + e[2],
                             "lpips_vgg": lv + e[3]})
    return pd.DataFrame(rows)


def test_rule_picks_lowest_lpips_among_passing_and_breaks_ties_by_dists():
    frame = _frame({"mambajscc": ("reference", 20.0, 0.50, 0.30, 0.50),
                    "a": ("screen", 18.0, 0.400, 0.25, 0.45),      # passes, lowest LPIPS-alex
                    "b": ("screen", 18.5, 0.4005, 0.20, 0.45),     # tied with a on LPIPS-alex, lower DISTS
                    "c": ("screen", 15.0, 0.30, 0.10, 0.30),       # best perceptually but costs 5 dB
                    "d": ("screen", 19.0, 0.45, 0.25, 0.45),
                    "d μ(ŷ)": ("screen", 19.9, 0.35, 0.25, 0.45)})  # an estimate is never a candidate
    table = rank(frame).set_index("receiver")
    assert not table.loc["c", "passes"] and not table.loc["d μ(ŷ)", "passes"]
    assert table.loc["a", "psnr_cost"] == pytest.approx(2.0, abs=0.2) and table.loc["a", "passes"]
    winner, runner_up, _ = choose(table.reset_index())
    assert (winner, runner_up) == ("b", "a")
    assert table.loc["d", "rank"] == 3 and pd.isna(table.loc["mambajscc", "rank"])


def test_a_crop_trained_receiver_is_costed_against_the_mse_decoder_trained_on_the_same_crops():
    frame = _frame({"mambajscc": ("reference", 20.0, 0.50, 0.30, 0.50),
                    "mambajscc-crops": ("reference", 17.0, 0.50, 0.30, 0.50),
                    "ours-crops-win4": ("screen", 15.0, 0.40, 0.25, 0.45),     # 2 dB below its own reference
                    "ours-win4": ("screen", 15.0, 0.45, 0.25, 0.45)})          # 5 dB below mambajscc
    frame["variant"] = frame["receiver"]
    table = rank(frame).set_index("receiver")
    assert table.loc["ours-crops-win4", "reference"] == "mambajscc-crops"
    assert table.loc["ours-crops-win4", "psnr_cost"] == pytest.approx(2.0, abs=0.2)
    assert table.loc["ours-win4", "psnr_cost"] == pytest.approx(5.0, abs=0.2)
    assert choose(table.reset_index())[0] == "ours-crops-win4" and not table.loc["ours-win4", "passes"]


def test_rule_without_a_passing_receiver_takes_the_cheapest_below_mambajscc():
    frame = _frame({"mambajscc": ("reference", 20.0, 0.50, 0.30, 0.50),
                    "a": ("screen", 15.0, 0.40, 0.25, 0.45),
                    "b": ("screen", 16.0, 0.45, 0.25, 0.45),
                    "c": ("screen", 16.5, 0.55, 0.25, 0.45)})      # cheapest but worse than the reference
    winner, runner_up, how = choose(rank(frame))
    assert (winner, runner_up) == ("b", "a") and "no receiver passed" in how
    assert BOUND == pytest.approx(3.0103, abs=1e-4)


def test_confirmation_over_two_seeds():
    rows = {"mambajscc": ("reference", 20.0, 0.50, 0.30, 0.50), "a": ("screen", 18.0, 0.40, 0.25, 0.45)}
    seed0 = _frame({**rows, "b": ("screen", 18.0, 0.42, 0.25, 0.45)})
    worse = _frame({**rows, "b": ("screen", 18.0, 0.35, 0.25, 0.45)}, seed=1, rng=np.random.default_rng(1))
    assert "a stays" in confirm(pd.concat([seed0, _frame({**rows, "b": ("screen", 18.0, 0.42, 0.25, 0.45)},
                                                         seed=1, rng=np.random.default_rng(2))]), "a", "b")
    line = confirm(pd.concat([seed0, worse]), "a", "b")           # a is worse over both seeds: b is checked
    assert "a does not stay" in line and "b stays" in line
    failing = _frame({**rows, "b": ("screen", 15.0, 0.35, 0.25, 0.45)}, seed=1, rng=np.random.default_rng(1))
    line = confirm(pd.concat([seed0, failing]), "a", "b")          # b costs 5 dB on seed 1: neither stays
    assert "a does not stay" in line and "b does not stay" in line and "Neither stays" in line
    assert confirm(seed0, "a", "b") is None


@pytest.mark.parametrize("argv, flag", [(["--variants", "bogus"], "--variants"), (["--images", "0"], "--images"),
                                        (["--snr", "nan"], "--snr"), (["--metrics", "psnr,nope"], "--metrics")])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, flag):
    out = tmp_path / "out"
    assert study.main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("val_study: ") and flag in err[0]
    assert not out.exists()


def test_unchanged_methods_keep_kodaks_run_record(tmp_path):
    """The study's checkpoints on the crop schedule it chose are what kodak.py --preset small trains; the
    variants of before the choice are small without the schedule."""
    from jscgc.imagedata import data_root

    root = data_root(None, need="bsds500/train")
    fingerprint = data_fingerprint(root / "bsds500/train")
    for name, method in (("mambajscc-crops", "mambajscc"), ("ours-crops-s10-mse-half", "jscgc"),
                         ("paper-crops", "jscgc-paper")):
        config = configure(["--preset", "small", "--methods", method])
        kodak = run_record(method, get_preset("small"), train_config(config, get_preset("small"), False),
                           config.train_data, fingerprint, 0)
        cfg = study.train_cfg(variants.preset_of(name), 0, True)
        ours = run_record(variants.VARIANTS[name].method, variants.preset_of(name), cfg, study.TRAIN_DATA, fingerprint, 0)
        assert same_training(ours, kodak)
        assert (ours == kodak) == (method == "jscgc")   # the others' records differ only in the recipe they ignore
    assert variants.preset_of("ours-a16") == variants.preset_of("ours")       # receive-only: the same training
    assert variants.preset_of("ours") == get_preset("small", crop_schedule=(), recipe=OUR_RECIPE)
    assert variants.preset_of("ours-crops").recipe == OUR_RECIPE != get_preset("small").recipe
    assert variants.preset_of("alone").recipe.cond_dropout == 1.0


def test_a_tiny_run_end_to_end_and_its_rerun_skips(tmp_path, monkeypatch, capsys):
    small = variants.preset_of
    monkeypatch.setattr(study, "preset_of", lambda n: small(n).updated(train={"steps": 2, "checkpoint_every": 0},
                                                                        latent_pool=32))
    out = tmp_path / "vs"
    argv = ["--variants", "mambajscc", "--images", "1", "--snr", "5", "--bootstrap", "0", "--out", str(out),
            "--metrics", "psnr,lpips_alex,dists,lpips_vgg", "--no-progress"]
    assert study.main(argv) == 0
    info = json.loads((out / "seed0" / "mambajscc" / "info.json").read_text())
    assert info["examples"] == 2 * 16 and info["pixels_seen"] == 2 * 16 * 64 * 64 and info["role"] == "reference"
    metrics = pd.read_csv(out / "seed0" / "mambajscc" / "metrics.csv")
    assert list(metrics["method"]) == ["mambajscc"] and metrics["psnr"].notna().all()
    capsys.readouterr()
    assert study.main(argv) == 0 and "skipped" in capsys.readouterr().err


def test_report_ranks_only_seeds_that_have_the_reference(tmp_path):
    from experiments.val_study_report import report

    for seed, names in ((0, ("mambajscc", "a")), (1, ("a",))):
        frame = _frame({n: ("reference" if n == "mambajscc" else "screen", 20.0 - (n == "a"), 0.5, 0.3, 0.5)
                        for n in names}, seed=seed)
        for n in names:
            folder = tmp_path / f"seed{seed}" / n
            folder.mkdir(parents=True)
            frame[frame["receiver"] == n].rename(columns={"receiver": "method"}).to_csv(folder / "metrics.csv", index=False)
            (folder / "info.json").write_text(json.dumps({"seed": seed, "variant": n, "role": frame[frame["receiver"] == n]
                                                          ["role"].iloc[0], "dial": {}}))
    tables = report(tmp_path)
    assert set(tables["seed"]) == {0} and (tmp_path / "verdict.md").is_file() and (tmp_path / "runs.csv").is_file()


def test_restored_variants_rank_as_the_study_they_came_from(tmp_path):
    from experiments.val_study_report import report, restore

    frame = _frame({"mambajscc": ("reference", 20.0, 0.6, 0.3, 0.5), "a": ("screen", 18.5, 0.45, 0.28, 0.5),
                    "b": ("screen", 18.0, 0.5, 0.29, 0.5)})
    out = tmp_path / "study"
    for n in ("mambajscc", "a", "b"):
        folder = out / "seed0" / n
        folder.mkdir(parents=True)
        frame[frame["receiver"] == n].rename(columns={"receiver": "method"}).to_csv(folder / "metrics.csv", index=False)
        (folder / "info.json").write_text(json.dumps({"seed": 0, "variant": n, "examples": 7, "role": frame[
            frame["receiver"] == n]["role"].iloc[0], "dial": {"steps": 9}, "source": {"commit": "abc"}}))
    first = report(out, tmp_path / "docs")
    again = tmp_path / "again"
    (again / "seed0" / "b").mkdir(parents=True)             # a variant finished there already is kept
    (again / "seed0" / "b" / "metrics.csv").write_text((out / "seed0" / "b" / "metrics.csv").read_text())
    (again / "seed0" / "b" / "info.json").write_text((out / "seed0" / "b" / "info.json").read_text())
    assert sorted(restore(tmp_path / "docs", again)) == ["seed0/a", "seed0/mambajscc"]
    second = report(again)
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))
    restored = json.loads((again / "seed0" / "a" / "info.json").read_text())
    assert restored["examples"] == 7 and restored["source"]["commit"] == "abc" and restored["dial"] == {"steps": 9}
    runs = pd.read_csv(again / "runs.csv")
    assert list(runs["commit"]) == ["abc"] * 3
    third = tmp_path / "third"                              # the same through the command line
    assert study.main(["--report", "--restore", str(tmp_path / "docs"), "--out", str(third)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(third / "ranking.csv"), pd.read_csv(out / "ranking.csv"))
    assert study.main(["--report", "--out", str(third), "--versus", "nosuch,other"]) == 2    # one line, no traceback


def test_restore_names_a_folder_without_the_tables(tmp_path, capsys):
    assert study.main(["--report", "--restore", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--restore" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert study.main(["--versus", "a,b", "--out", str(tmp_path / "o")]) == 2           # needs --report
    assert "--versus" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_versus_pairs_two_receivers_per_seed_and_pooled():
    from experiments.val_study_report import versus

    frame = pd.concat([_frame({"a": ("screen", 18.0, 0.50, 0.3, 0.5), "b": ("screen", 17.0, 0.52, 0.3, 0.5)},
                              seed=s, rng=np.random.default_rng(s)) for s in (0, 1)])
    frame.loc[frame.receiver == "b", ["psnr", "lpips_alex"]] = frame.loc[frame.receiver == "a", ["psnr", "lpips_alex"]].to_numpy() - [1.0, -0.02]
    table = versus(frame, "a", "b").set_index("seed")
    assert list(table.index) == [0, 1, "all"] and list(table["n"]) == [12, 12, 24]
    assert np.allclose(table["psnr"], 1.0) and np.allclose(table["lpips_alex"], -0.02)
    assert np.allclose(table[["psnr_se", "lpips_alex_se"]], 0, atol=1e-9)
    assert "dists" in table and "detail_match" not in table          # only the measures the frame has
    frame["detail_match"] = np.where(frame.receiver == "a", 0.4, 0.1)
    assert np.allclose(versus(frame, "a", "b").set_index("seed")["detail_match"], 0.3)
    with pytest.raises(ValueError, match="no seed has both"):
        versus(frame, "a", "c")
