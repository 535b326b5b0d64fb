"""experiments/toy_frontier.py: inputs checked first, a tiny run's CSV obeys the frontier's closed forms
and is identical on a rerun."""
import pandas as pd
import pytest

from experiments import toy_frontier as tf

TINY = ["--train-steps", "20", "--n", "32", "--snr", "5", "--steps", "1,2", "--samples", "1,2", "--workers", "1",
        "--no-figures"]


@pytest.mark.parametrize("argv,message", [
    (["--n", "40"], "--n 40: expected a multiple of 16"),
    (["--steps", "0,2"], "--steps '0,2'"),
    (["--samples", "2,2"], "--samples '2,2'"),
    (["--snr", "nan"], "expected distinct finite SNRs"),
    (["--workers", "0"], "--workers 0"),
])
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert tf.main(["--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toy_frontier: ") and message in err and "\n" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf") / "run"
    assert tf.main(["--out", str(out), *TINY]) == 0
    return out


def test_tiny_run_obeys_the_frontier(tiny):
    df = pd.read_csv(tiny / "frontier.csv")
    assert set(df.manifold) == {"S1", "S2", "S4", "codebook16_S2"}
    front = df[df.kind == "frontier"]
    assert (front.D >= front.mmse - 1e-12).all()
    at_zero = front[front.P == 0]
    assert ((at_zero.D - (at_zero.mmse + at_zero.w2_star ** 2)).abs() < 1e-9).all()
    book = df[(df.manifold == "codebook16_S2") & (df.receiver == "transport T(X*)")]
    assert (book.P.abs() < 1e-6).all()                             # mapped onto the codebook's law exactly
    dial = df[df.kind == "dial"]
    assert len(dial) == 4 * 2 * 2 and dial.diversity[dial.samples == 1].isna().all()
    assert (dial.diversity[dial.samples == 2] > 0).all()
    assert set(df[df.kind == "point"].method_encoder) == {"cjscc", "diffjscc"}


def test_rerun_writes_the_same_csv_and_refuses_to_overwrite(tiny, tmp_path, capsys):
    assert tf.main(["--out", str(tiny), *TINY]) == 2
    assert "complete.json exists); pass --overwrite" in capsys.readouterr().err
    again = tmp_path / "again"
    assert tf.main(["--out", str(again), *TINY]) == 0
    assert (again / "frontier.csv").read_bytes() == (tiny / "frontier.csv").read_bytes()


def test_a_killed_run_is_run_again_and_a_busy_folder_refused(tiny, tmp_path, capsys):
    from jscgc.io import FolderLock

    out = tmp_path / "killed"
    out.mkdir()
    (out / "frontier.csv").write_text("half")                      # killed before complete.json
    (out / ".tmp-config.x1y2z3.json").write_text("{")
    with FolderLock(out):
        assert tf.main(["--out", str(out), *TINY]) == 2
        assert "in use by another run" in capsys.readouterr().err
    assert tf.main(["--out", str(out), *TINY]) == 0
    assert "did not finish" in capsys.readouterr().err and (out / "complete.json").is_file()
    assert (out / "frontier.csv").read_bytes() == (tiny / "frontier.csv").read_bytes()
    assert not list(out.glob(".tmp-*")) and not (out / ".lock").exists()
