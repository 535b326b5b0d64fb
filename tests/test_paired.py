"""Paired differences and the plain table against closed forms and an independent numpy computation."""
import numpy as np
import pandas as pd
import pytest

from jscgc import paired as P

IMAGES = [f"kodim{i:02d}" for i in range(1, 7)]


def frame(offsets: dict, snrs=(0.0, 10.0), samples=None, seed=0) -> pd.DataFrame:
    """Rows of metrics.csv: psnr = base(image, snr) + offset[method] (+ sample noise that cancels in
    the sample mean when ``samples`` is given), lpips all NaN (weights missing)."""
    rng = np.random.default_rng(seed)
    base = {(img, snr): rng.normal(25, 3) for img in IMAGES for snr in snrs}
    rows = []
    for method, off in offsets.items():
        for snr in snrs:
            for img in IMAGES:
                noise = [0.0] if samples is None else [-samples, samples]   # mean 0 over the two samples
                for s, eps in enumerate(noise):
                    rows.append({"method": method, "snr_db": snr, "image": img, "sample": s,
                                 "psnr": base[img, snr] + off + eps, "lpips": np.nan})
    return pd.DataFrame(rows)


def test_constant_offsets_give_the_offset_with_zero_se():
    df = frame({"mse": 0.0, "flow": -1.5, "diffjscc": 2.0}, samples=0.7)
    out = P.paired_differences(df, "mse")
    assert list(out.columns) == ["method", "reference", "snr_db", "metric", "diff", "se", "n"]
    assert out.attrs["skipped"] == ["lpips"] and set(out["metric"]) == {"psnr"}
    assert list(zip(out["method"], out["snr_db"])) == [("flow", 0.0), ("flow", 10.0), ("diffjscc", 0.0),
                                                       ("diffjscc", 10.0)]
    assert np.allclose(out["diff"], [-1.5, -1.5, 2.0, 2.0], atol=1e-12)
    assert np.allclose(out["se"], 0, atol=1e-12) and (out["n"] == len(IMAGES)).all()
    plain = P.summary(df)                                   # the scene spread stays in the plain table
    assert (plain["se"] > 0.5).all() and (plain["n"] == len(IMAGES)).all()


def _numpy_reference(df, reference, metric):
    """Independent computation: dict (method, snr) -> (diff, se, n), with numpy and plain loops."""
    result = {}
    methods = [m for m in dict.fromkeys(df["method"]) if m != reference]
    for method in methods:
        for snr in sorted(set(df["snr_db"])):
            d = []
            for img in sorted(set(df["image"])):
                pick = lambda m: df[(df.method == m) & (df.snr_db == snr) & (df.image == img)][metric]  # noqa: E731
                d.append(np.mean(pick(method).to_numpy()) - np.mean(pick(reference).to_numpy()))
            d = np.array(d)
            result[method, snr] = (d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d))
    return result


def test_random_frame_matches_numpy():
    rng = np.random.default_rng(3)
    rows = [{"method": m, "snr_db": snr, "image": img, "sample": s, "ms_ssim": rng.uniform(0.5, 1),
             "psnr": rng.normal(20, 4)}
            for m, n_samples in (("ref", 1), ("a", 3), ("b", 2)) for snr in (-5.0, 5.0)
            for img in IMAGES for s in range(n_samples)]
    df = pd.DataFrame(rows).sample(frac=1, random_state=0)               # row order must not matter
    out = P.paired_differences(df, "ref")
    for metric in ("ms_ssim", "psnr"):
        expect = _numpy_reference(df, "ref", metric)
        got = out[out.metric == metric].set_index(["method", "snr_db"])
        assert len(got) == len(expect) == 4
        for key, (d, se, n) in expect.items():
            assert got.loc[key, "diff"] == pytest.approx(d, rel=1e-12, abs=1e-12)
            assert got.loc[key, "se"] == pytest.approx(se, rel=1e-10) and got.loc[key, "n"] == n
    plain = P.summary(df, ["psnr"]).set_index(["method", "snr_db"])
    sel = df[(df.method == "a") & (df.snr_db == 5.0)].groupby("image")["psnr"].mean().to_numpy()
    assert plain.loc[("a", 5.0), "mean"] == pytest.approx(sel.mean(), rel=1e-12)
    assert plain.loc[("a", 5.0), "se"] == pytest.approx(sel.std(ddof=1) / np.sqrt(6), rel=1e-10)
    assert list(plain.index.get_level_values(0).unique()) == list(pd.unique(df["method"]))


def test_refusals():
    df = frame({"mse": 0.0, "flow": 1.0})
    with pytest.raises(ValueError, match="reference method 'zimage' is not in the frame"):
        P.paired_differences(df, "zimage")
    fewer = df[~((df.method == "flow") & (df.snr_db == 10.0) & (df.image == "kodim03"))]
    with pytest.raises(ValueError, match=r"images differ.*'flow' at 10.0 dB.*only in 'mse' \['kodim03'\]"):
        P.paired_differences(fewer, "mse")
    extra_snr = pd.concat([df, df[df.method == "flow"].assign(snr_db=20.0)])
    with pytest.raises(ValueError, match="'flow' at 20.0 dB"):
        P.paired_differences(extra_snr, "mse")
    with pytest.raises(ValueError, match="lacks the key column"):
        P.summary(df.drop(columns="image"))


def test_missing_values_are_skipped_and_counted():
    df = frame({"mse": 0.0, "flow": 1.0})
    df["dino"] = np.where(df.method == "flow", 0.5, np.nan)              # reference has no dino
    df.loc[(df.method == "flow") & (df.image == "kodim02"), "psnr"] = np.nan
    out = P.paired_differences(df, "mse", ["psnr", "dino", "rfid"])
    assert out.attrs["skipped"] == ["rfid"] and set(out.metric) == {"psnr"}   # dino: no pair has both
    assert (out["n"] == len(IMAGES) - 1).all() and np.allclose(out["diff"], 1.0)
    plain = P.summary(df, ["psnr", "dino"])
    assert set(plain[plain.method == "mse"].metric) == {"psnr"}
    assert plain.set_index(["method", "snr_db", "metric"]).loc[("flow", 0.0, "dino"), "se"] == 0


def test_markdown_rendering():
    df = frame({"mse": 0.0, "flow": -1.25}, snrs=(0.0,))
    text = P.to_markdown(P.paired_differences(df, "mse"), digits=2)
    assert text.splitlines() == ["| method | SNR (dB) | n | Δ psnr |", "|---|---|---|---|",
                                 "| flow | 0 | 6 | -1.25 ± 0.00 |"]
    plain = P.summary(df)
    lines = P.to_markdown(plain, digits=1).splitlines()
    m = plain.iloc[0]
    assert lines[0] == "| method | SNR (dB) | n | psnr |" and len(lines) == 4
    assert lines[2] == f"| mse | 0 | 6 | {m['mean']:.1f} ± {m['se']:.1f} |"
