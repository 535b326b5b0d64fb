"""End-to-end run of experiments/toy_manifold.py --quick: columns, invariants, figures."""
import numpy as np
import pandas as pd
import pytest

from experiments import toy_manifold

COLUMNS = ["manifold", "d", "m", "snr_db", "decoder", "mi_bits", "mi_bits_low", "mi_bits_high",
           "capacity_bits", "p", "delta_emp", "delta_emp_ci_low", "delta_emp_ci_high",
           "delta_star_paper", "delta_star_rigorous", "bound_holds", "dist_to_manifold_median", "mse"]


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
    assert (out / "config.json").exists()


def test_invariants(quick_run):
    _, df = quick_run
    assert df.bound_holds.all(), df[~df.bound_holds]
    assert (df.mi_bits <= df.capacity_bits + 0.05).all()
    assert (df.delta_emp_ci_low <= df.delta_emp).all() and (df.delta_emp <= df.delta_emp_ci_high).all()
    learned = df[(df.decoder != "map") & np.isclose(df.p, 0.1)]
    for _, g in learned.groupby(["manifold", "decoder"]):
        g = g.sort_values("snr_db")
        assert g.delta_emp.iloc[-1] < g.delta_emp.iloc[0]  # δ_emp falls as the SNR rises
        assert g.mi_bits.iloc[-1] > g.mi_bits.iloc[0]
    low = learned[learned.snr_db == learned.snr_db.min()]
    s1 = low[low.manifold == "S1"].set_index("decoder")
    assert s1.dist_to_manifold_median["cjscc"] > s1.dist_to_manifold_median["jscgc"]


def test_negative_control(quick_run):
    _, df = quick_run
    ctrl = df[df.decoder == "map"]
    assert len(ctrl) == 3 and (ctrl.delta_emp == 0).all()
    assert np.allclose(ctrl.delta_star_paper, 0.354, atol=2e-3)
    assert not ctrl.paper_bound_holds.any() and ctrl.bound_holds.all()


def test_rerun_refuses_to_overwrite(quick_run, capsys):
    out, _ = quick_run
    assert toy_manifold.main(["--quick", "--out", str(out), "--no-figures"]) == 2
    assert "exists" in capsys.readouterr().err


def test_bad_method_is_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        toy_manifold.main(["--methods", "jscgc,nope"])
    assert "--methods" in capsys.readouterr().err
