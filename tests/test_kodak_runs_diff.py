"""paper_figures/kodak_runs_diff.py: paired run-against-run differences with known answers."""
import numpy as np
import pandas as pd

from paper_figures.kodak_runs_diff import main, metric_columns, runs_diff


def _run(shift: float = 0.0, methods=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"method": m, "snr_db": s, "image": f"im{i}", "sample": 0, "psnr": 20 + rng.normal(),
             "lpips_alex": 0.5 + 0.01 * rng.normal(), "dists": 0.3} for m in methods for s in (0.0, 10.0)
            for i in range(6)]
    frame = pd.DataFrame(rows)
    frame.loc[frame.method == "b", "psnr"] += shift * (1 + frame.loc[frame.method == "b", "snr_db"] / 10)
    return frame


def test_identical_runs_differ_by_nothing_and_a_shift_is_recovered():
    same = runs_diff(_run(), _run())
    assert (same[["psnr", "lpips_alex", "dists", "max_abs"]] == 0).all().all() and list(same.n) == [6, 6]
    moved = runs_diff(_run(0.5), _run(), metrics=["psnr", "dists"]).set_index("method")
    # +0.5 dB at 0 dB and +1.0 dB at 10 dB: +0.75 per image after the mean over SNRs, no spread, largest 1.0
    assert np.isclose(moved.loc["b", "psnr"], 0.75) and np.isclose(moved.loc["b", "psnr_se"], 0, atol=1e-12)
    assert np.isclose(moved.loc["b", "max_abs"], 1.0) and moved.loc["a", "psnr"] == 0


def test_only_receivers_of_both_runs_and_a_bad_file_is_one_line(tmp_path, capsys):
    assert list(runs_diff(_run(methods=("a", "b")), _run(methods=("b", "c"))).method) == ["b"]
    _run().to_csv(tmp_path / "metrics.csv", index=False)
    assert main(["--a", str(tmp_path / "metrics.csv"), "--b", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_all_metrics_takes_every_shared_metric_column(tmp_path, capsys):
    a, b = _run(0.5), _run()
    a["hf_ratio"], b["hf_ratio"] = 1.0, 0.75
    assert metric_columns(a, b) == ["psnr", "lpips_alex", "dists", "hf_ratio"]
    for name, frame in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "metrics.csv", index=False)
    argv = ["--a", str(tmp_path / "a" / "metrics.csv"), "--b", str(tmp_path / "b" / "metrics.csv")]
    capsys.readouterr()
    assert main([*argv, "--metrics", "all"]) == 0 and "hf_ratio" in capsys.readouterr().out
    assert main([*argv, "--metrics", "psnr,nosuch"]) == 2 and "nosuch" in capsys.readouterr().err
