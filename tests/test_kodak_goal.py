"""paper_figures.kodak_goal: issue 28's goal read from metrics.csv frames with known answers."""
import numpy as np
import pandas as pd
import pytest

from paper_figures.kodak_goal import goal_markdown, goal_rows

IMAGES = ["a", "b", "c", "d"]


def _frame(values: dict) -> pd.DataFrame:
    """values: method -> (psnr list, lpips list, dists list) over IMAGES, at SNRs 0 and 10 (10 dB: +1 PSNR)."""
    rows = []
    for snr in (0.0, 10.0):
        for method, (psnr, lp, di) in values.items():
            for i, image in enumerate(IMAGES):
                rows.append({"method": method, "snr_db": snr, "image": image, "sample": 0,
                             "psnr": psnr[i] + snr / 10, "lpips_alex": lp[i], "dists": di[i]})
    return pd.DataFrame(rows)


def test_the_goal_rows_have_the_known_differences_and_ignore_jscgc_s_own_views():
    frame = _frame({
        "jscgc": ([17, 18, 19, 20], [0.5, 0.7, 0.5, 0.7], [0.30, 0.31, 0.30, 0.31]),
        "jscgc (sample)": ([15, 16, 17, 18], [0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1]),   # own: not a rival
        "jscgc μ(ŷ)": ([19.5, 20.5, 21.5, 22.0], [0.9, 0.9, 0.9, 0.9], [0.5, 0.5, 0.5, 0.5]),
        "jscgc-paper": ([14, 15, 16, 17], [0.6, 0.6, 0.7, 0.7], [0.29, 0.30, 0.29, 0.30]),   # a rival
        "mambajscc": ([20, 21, 22, 23], [0.8, 0.8, 0.8, 0.8], [0.4, 0.4, 0.4, 0.4]),
    })
    rows = goal_rows(1, frame)
    assert [r["snr_db"] for r in rows] == [0.0, 10.0]
    r = rows[0]
    assert r["lpips_alex_best_rival"] == "jscgc-paper" and r["dists_best_rival"] == "jscgc-paper"
    d = np.array([0.5, 0.7, 0.5, 0.7]) - np.array([0.6, 0.6, 0.7, 0.7])
    assert r["lpips_alex_diff"] == pytest.approx(d.mean()) and r["lpips_alex_se"] == pytest.approx(d.std(ddof=1) / 2)
    assert r["lpips_alex_lowest"] and not r["lpips_alex_established"]        # -0.050 ± 0.065: the interval holds 0
    assert r["dists_diff"] == pytest.approx(0.01) and not r["dists_lowest"]
    assert r["psnr_cost"] == pytest.approx(3.0) and r["psnr_cost_se"] == pytest.approx(0.0)
    assert r["psnr_within"]                                                   # 3.00 ≤ 3.01
    assert r["dial_end"] == "jscgc μ(ŷ)" and r["dial_end_cost"] == pytest.approx(np.mean([0.5, 0.5, 0.5, 1.0]))
    assert r["dial_end_within"]
    text = goal_markdown(pd.DataFrame(rows))
    assert "| 1 | 0 | -0.050 ± 0.065 (jscgc-paper)" in text
    assert "lowest mean LPIPS-alex at 2 (0 with the paired interval below 0), the lowest DISTS at 0 (0)" in text


def test_a_run_without_jscgc_or_mambajscc_is_one_clear_error():
    frame = _frame({"jscgc": ([1] * 4, [0.1] * 4, [0.1] * 4), "diffjscc": ([1] * 4, [0.1] * 4, [0.1] * 4)})
    with pytest.raises(ValueError, match=r"seed 3 lacks \['mambajscc'\]"):
        goal_rows(3, frame)


def test_combined_rows_replace_the_receivers_of_later_files_and_the_cli_writes_their_goal(tmp_path, capsys):
    from paper_figures import kodak_goal

    old = _frame({"jscgc": ([10, 10, 10, 10], [0.9] * 4, [0.9] * 4),
                  "jscgc-paper": ([14, 15, 16, 17], [0.6, 0.6, 0.7, 0.7], [0.29, 0.30, 0.29, 0.30]),
                  "mambajscc": ([20, 21, 22, 23], [0.8] * 4, [0.4] * 4)})
    new = _frame({"jscgc": ([17, 18, 19, 20], [0.5, 0.7, 0.5, 0.7], [0.30, 0.31, 0.30, 0.31])})
    both = kodak_goal.combined([old, new])
    assert len(both) == len(old) and sorted(both.method.unique()) == ["jscgc", "jscgc-paper", "mambajscc"]
    assert both[both.method == "jscgc"].psnr.min() == 17                    # the old jscgc rows are gone
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    argv = ["--seed", "1", "--metrics", str(tmp_path / "old.csv"), str(tmp_path / "new.csv"), "--out"]
    assert kodak_goal.main([*argv, str(tmp_path / "goal.csv")]) == 0
    written = pd.read_csv(tmp_path / "goal.csv")
    assert written.lpips_alex_diff.tolist() == pytest.approx([r["lpips_alex_diff"] for r in goal_rows(1, both)])
    assert written.psnr_cost.tolist() == pytest.approx([3.0, 3.0])
    capsys.readouterr()
    bad = ["--seed", "1", "--metrics", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "g2.csv")]
    assert kodak_goal.main(bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--metrics" in err and not (tmp_path / "g2.csv").exists()
    alone = ["--seed", "1", "--metrics", str(tmp_path / "new.csv"),
             "--out", str(tmp_path / "g3.csv")]
    assert kodak_goal.main(alone) == 2                                       # no mambajscc to compare with
    assert "mambajscc" in capsys.readouterr().err and not (tmp_path / "g3.csv").exists()
