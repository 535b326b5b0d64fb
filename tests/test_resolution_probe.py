"""experiments/resolution_probe.py: the tiling is exact and row-major, and bad inputs stop first."""
import torch

from experiments import resolution_probe as rp


def test_tiles_are_the_64_pixel_blocks_row_major_and_stitch_back_exactly():
    x = torch.rand(1, 3, *rp.SIZE, generator=torch.Generator().manual_seed(0))
    tiles = rp.to_tiles(x)
    assert tiles.shape == (6, 3, 64, 64)
    assert torch.equal(tiles[1], x[0, :, :64, 64:128])          # row 0, column 1
    assert torch.equal(tiles[3], x[0, :, 64:, :64])             # row 1, column 0
    assert torch.equal(rp.from_tiles(tiles, *rp.SIZE), x)


def test_landscape_turns_portraits_only():
    portrait, wide = torch.rand(3, 5, 3), torch.rand(3, 3, 5)
    assert rp.landscape(portrait).shape == (3, 3, 5) and rp.landscape(wide) is wide


def test_missing_checkpoint_and_existing_out_stop_with_one_line(tmp_path, capsys):
    assert rp.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "new")]) == 2
    assert "has no trained jscgc" in capsys.readouterr().err
    assert rp.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
