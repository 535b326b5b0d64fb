"""paper_figures.kodak_report: the README's headline table, read from metrics.csv frames with known means."""
import pandas as pd

from paper_figures.kodak_report import _train_seconds, headline


def _frame(offset: float) -> pd.DataFrame:
    """Two receivers at 0, 5 and 10 dB; image "a" has two samples, image "b" four, so the mean over images of
    per-image means differs from the mean over rows. Every metric is a known function."""
    rows = []
    for snr in (0.0, 5.0, 10.0):
        for k, method in enumerate(["jscgc", "mambajscc"]):
            for i, image in enumerate(["a", "b"]):
                for sample in range(2 + 2 * i):
                    rows.append({"method": method, "snr_db": snr, "image": image, "sample": sample,
                                 "lpips_alex": 0.1 * k + 0.2 * i + 0.1 * (sample % 2) + 0.3 * (sample // 2) + offset,
                                 "dists": 0.5 - 0.1 * i, "psnr": 15 + snr / 10 + k + 2 * i})
    return pd.DataFrame(rows)


def test_the_headline_has_each_seed_s_mean_over_images_of_the_per_image_sample_means():
    text = headline([(0, _frame(0.0)), (1, _frame(0.5))])
    lines = text.strip().split("\n")
    assert lines[0] == ("| receiver | LPIPS-alex @ 0 dB | LPIPS-alex @ 10 dB | DISTS @ 0 dB | DISTS @ 10 dB "
                        "| PSNR @ 0 dB | PSNR @ 10 dB |")
    # jscgc LPIPS: image a (0, 0.1) → 0.05, image b (0.2, 0.3, 0.5, 0.6) → 0.40; over images 0.225 (over rows
    # it would be 0.283), seed 1 +0.5; DISTS 0.45 (rows: 0.433); PSNR 16.0 at 0 dB, 17.0 at 10 dB (rows: 16.33)
    assert lines[2] == ("| jscgc | 0.225 / 0.725 | 0.225 / 0.725 | 0.450 / 0.450 | 0.450 / 0.450 "
                        "| 16.00 / 16.00 | 17.00 / 17.00 |")
    assert lines[3].startswith("| mambajscc | 0.325 / 0.825 |")
    assert lines[3].endswith("| 17.00 / 17.00 | 18.00 / 18.00 |")
    assert len(lines) == 4                                   # 5 dB is not a headline column


def test_a_receiver_missing_from_a_seed_shows_nan_there():
    second = _frame(0.0)
    text = headline([(0, _frame(0.0)), (1, second[second.method != "mambajscc"])])
    assert "| mambajscc | 0.325 / nan |" in text


def test_a_metric_missing_from_a_run_shows_nan_there():
    text = headline([(0, _frame(0.0).drop(columns="dists"))])
    assert "| jscgc | 0.225 | 0.225 | nan | nan | 16.00 | 17.00 |" in text


def test_the_budgets_table_says_when_a_training_was_loaded_or_resumed():
    assert _train_seconds({"steps": 1600, "resumed_from_step": 0}, 412.4) == "412"
    assert _train_seconds({"steps": 1600}, 412.4) == "412"                       # a config.json from before
    assert _train_seconds({"steps": 1600, "resumed_from_step": 1600}, 0.04) == "loaded (0)"
    assert _train_seconds({"steps": 1600, "resumed_from_step": 800}, 203.0) == "203 (from step 800)"
    assert _train_seconds({"loaded": "run/jscgc/train/checkpoints/step_1600"}, 0.0) == "loaded (0)"
