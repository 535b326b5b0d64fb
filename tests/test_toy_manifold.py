"""experiments/toy_manifold.py: bad inputs (one line, exit 2, nothing written), reproducible files, and
an end-to-end --quick run (columns, invariants, Bayes-optimal references, figures, the README report)."""
import json

import numpy as np
import pandas as pd
import pytest

from experiments import toy_manifold
from paper_figures.toy_manifold import failure_causes, report

COLUMNS = ["manifold", "d", "m", "snr_db", "decoder", "mi_bits", "mi_bits_low", "mi_bits_high",
           "capacity_bits", "p", "delta_emp", "delta_emp_ci_low", "delta_emp_ci_high",
           "delta_star_paper", "delta_star_rigorous", "C_rigorous", "bound_holds", "dist_to_manifold_median",
           "mse", "mmse", "mmse_se", "mse_gap", "mse_gap_reference", "sampler_mse", "delta_emp_sampler",
           "delta_emp_mmse", "delta_emp_map", "sw_to_posterior", "sw_floor", "snis_ess_median"]
TINY = ["--train-steps", "3", "--eval-n", "200", "--mi-batch", "64", "--mi-batches", "1", "--snr", "0", "10",
        "--ref-n", "16", "--sw-n", "2", "--sw-samples", "4", "--no-figures"]
FILES = ("results.csv", "pe_curves.csv", "samples.csv")


# ---- bad inputs: checked before anything is trained or written ---------------------------------

@pytest.mark.parametrize("args,words", [
    (["--methods", "jscgc,nope"], "--methods"), (["--methods", ","], "--methods"),
    (["--methods", "jscgc,jscgc"], "--methods"), (["--snr"], "--snr"), (["--snr", "nan"], "--snr"),
    (["--snr", "5", "inf"], "--snr"), (["--snr", "5", "5"], "--snr"), (["--snr", "abc"], "--snr"),
    (["--train-steps", "0"], "--train-steps"), (["--euler-steps", "-1"], "--euler-steps"),
    (["--eval-n", "0"], "--eval-n"), (["--mi-batch", "1"], "--mi-batch"), (["--sw-samples", "1"], "--sw-samples"),
    (["--workers", "0"], "--workers"), (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"),
    (["--seed", "-1"], "--seed"), (["--no-such-flag"], "no-such-flag"),
    (["--channel", "fading"], "--channel fading: channel: expected one of"), (["--channel", "bec:2"], "--channel"),
    (["--channel", "bsc"], "--channel bsc: method jscgc sends complex symbols and channel 'bsc' carries bits"),
    (["--channel", "bec", "--methods", "necst,cjscc"], "method cjscc"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    assert toy_manifold.main(["--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("toy_manifold: ") and err.count("\n") == 1 and words in err
    assert "Traceback" not in err and not out.exists()


def test_out_under_an_existing_file_or_unwritable_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out, words in ((blocker / "sub" / "out", "is a file"), (blocker, "is a file")):
        assert toy_manifold.main(["--out", str(out), *TINY]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err
    assert blocker.read_text() == "x"
    # as root, permission bits say nothing; a pseudo-filesystem refuses new folders for real
    assert toy_manifold.main(["--out", "/sys/toy_manifold_test", *TINY]) == 2
    assert "cannot write in /sys" in capsys.readouterr().err


def test_finished_results_are_not_overwritten_and_a_killed_run_is_finished(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("old")
    (tmp_path / "complete.json").write_text("{}")
    assert toy_manifold.main(["--out", str(tmp_path), *TINY]) == 2
    assert "finished run" in capsys.readouterr().err and (tmp_path / "results.csv").read_text() == "old"
    (tmp_path / "complete.json").unlink()                            # killed before it finished
    (tmp_path / ".tmp-results.abc123.csv").write_text("half")        # and a half-written file
    assert toy_manifold.main(["--out", str(tmp_path), *TINY]) == 0
    assert "did not finish" in capsys.readouterr().err
    assert (tmp_path / "complete.json").is_file() and (tmp_path / "results.csv").read_text() != "old"
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / ".lock").exists()


# ---- reproducible files --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The same tiny run on 2 worker processes and on 1 (seconds)."""
    outs = [tmp_path_factory.mktemp(f"tiny{w}") for w in (2, 1)]
    for out, w in zip(outs, (2, 1)):
        assert toy_manifold.main(["--out", str(out), "--overwrite", "--workers", str(w), *TINY]) == 0
    return outs


def test_runs_write_byte_identical_files_whatever_the_worker_order(tiny_runs):
    a, b = tiny_runs
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ca, cb = (json.loads((o / "config.json").read_text()) for o in tiny_runs)
    assert {k: v for k, v in ca.items() if k != "workers"} == {k: v for k, v in cb.items() if k != "workers"}
    df = pd.read_csv(a / "results.csv")
    assert list(df.index) == list(df.sort_values(toy_manifold.ORDER["results"]).index)
    assert not any("seconds" in c for c in df.columns)
    assert set(df.channel) == {"awgn"} and ca["channel"] == "awgn"                # the default channel, recorded
    timings = json.loads((a / "timings.json").read_text())
    assert timings["wall_seconds"] > 0 and len(timings["jobs"]) == 8


def test_rerun_with_overwrite_rewrites_the_same_bytes(tiny_runs):
    out = tiny_runs[0]
    before = {name: (out / name).read_bytes() for name in (*FILES, "config.json")}
    assert toy_manifold.main(["--out", str(out), "--overwrite", "--workers", "2", *TINY]) == 0
    assert before == {name: (out / name).read_bytes() for name in before}


def test_failure_causes_classify_from_the_csv_columns():
    df = pd.DataFrame({"decoder": ["cjscc", "cjscc", "jscgc", "jscgc", "map"],
                       "manifold": ["codebook16_S2", "S2", "S4", "S1", "codebook16_S2_map_control"],
                       "paper_bound_holds": [False, False, False, True, False],
                       "delta_star_paper": [0.3, 1.1, 0.2, 0.1, 0.35], "diameter": [2.0] * 5})
    assert failure_causes(df).tolist() == ["discrete source", "δ* ≥ diameter/2", "other"]


# ---- the quick end-to-end run ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    assert toy_manifold.main(["--quick", "--out", str(out)]) == 0
    return out, pd.read_csv(out / "results.csv")


def test_columns_and_rows(quick_run):
    out, df = quick_run
    assert set(COLUMNS) <= set(df.columns)
    learned = df[df.decoder != "map"]
    assert set(learned.decoder) == {"jscgc", "cjscc"}
    assert learned.manifold.nunique() == 4 and learned.d.nunique() >= 3
    assert len(learned) == 4 * 2 * 3 * 3  # sources x decoders x SNRs x p
    for name in ("delta_vs_mi", "distance_vs_snr", "samples_scatter"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
    assert (out / "config.json").exists() and (out / "timings.json").exists()


def test_invariants(quick_run):
    _, df = quick_run
    assert df.bound_holds.all(), df[~df.bound_holds]
    assert (df.mi_bits <= df.capacity_bits + 0.05).all()
    assert (df.delta_emp_ci_low <= df.delta_emp).all() and (df.delta_emp <= df.delta_emp_ci_high).all()
    assert (df.C_rigorous <= df.C_paper * (1 + 1e-12)).all()
    learned = df[(df.decoder != "map") & np.isclose(df.p, 0.1)]
    for _, g in learned.groupby(["manifold", "decoder"]):
        g = g.sort_values("snr_db")
        assert g.delta_emp.iloc[-1] < g.delta_emp.iloc[0]  # δ_emp falls as the SNR rises
        assert g.mi_bits.iloc[-1] > g.mi_bits.iloc[0]
    low = learned[learned.snr_db == learned.snr_db.min()]
    s1 = low[low.manifold == "S1"].set_index("decoder")
    assert s1.dist_to_manifold_median["cjscc"] > s1.dist_to_manifold_median["jscgc"]


def test_trained_mse_decoders_are_never_below_the_exact_mmse(quick_run):
    """The trained CJSCC decoder against the MMSE of its own encoder, on the same ŷ: the paired
    difference MSE − MMSE ≥ −3 SE at every source and SNR; the exact sampler's MSE is 2 · MMSE."""
    _, df = quick_run
    rows = df[(df.decoder == "cjscc") & np.isclose(df.p, 0.1)]
    assert len(rows) == 12 and (rows.mse_gap_reference == "mmse").all()
    assert (rows.mse_on_ref - rows.mmse >= -3 * rows.mse_minus_mmse_se).all(), rows
    both = df[(df.decoder != "map") & np.isclose(df.p, 0.1) & (df.mmse > 1e-3)]
    assert np.allclose(both.sampler_mse, 2 * both.mmse, rtol=0.25)
    spheres = both[~both.manifold.str.startswith("codebook")]
    assert (spheres.snis_ess_median > 50).all() and (spheres.ref_exact == False).all()  # noqa: E712


def test_negative_control(quick_run):
    _, df = quick_run
    ctrl = df[df.decoder == "map"]
    assert len(ctrl) == 3 and (ctrl.delta_emp == 0).all()
    assert np.allclose(ctrl.delta_star_paper, 0.354, atol=2e-3)
    assert not ctrl.paper_bound_holds.any() and ctrl.bound_holds.all()


def test_report_counts_come_from_the_csv(quick_run):
    out, df = quick_run
    text = report(out)
    learned = df[df.decoder != "map"]
    assert f"**{int(learned.bound_holds.sum())}/{len(learned)}**" in text
    assert f"**{int(learned.paper_bound_holds.sum())}/{len(learned)}**" in text
    assert text.count("\n| S1 |") == 2 * 3  # the on-manifold and the reference tables, 3 SNRs each
