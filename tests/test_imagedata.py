"""Image loading: conversions, clear errors for bad files, the data root, Kodak and folder crops."""
import numpy as np
import pytest
import torch
from PIL import Image

from jscgc.imagedata import FolderCrops, ImageError, data_root, kodak, load_image


def test_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    x = load_image(tmp_path / "rgb.png")
    assert x.shape == (3, 6, 5) and torch.allclose(x, torch.from_numpy(rgb).permute(2, 0, 1) / 255.0)

    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")              # grey -> RGB copies
    g = load_image(tmp_path / "grey.png")
    assert g.shape == (3, 6, 5) and torch.equal(g[0], g[2])

    rgba = np.concatenate([rgb, np.zeros((6, 5, 1), np.uint8)], axis=2)   # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.equal(load_image(tmp_path / "rgba.png"), torch.ones(3, 6, 5))  # onto white

    deep = (np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000)           # 16-bit grey
    Image.fromarray(deep).save(tmp_path / "deep.png")
    d = load_image(tmp_path / "deep.png")
    assert torch.allclose(d[1], torch.from_numpy(deep / 65535.0).float(), atol=1e-6)


def test_bad_files_give_one_clear_error(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match="text.png"):
        load_image(tmp_path / "text.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_folder_crops(tmp_path):
    rng = np.random.default_rng(1)
    for i, size in enumerate([(40, 50), (60, 33)]):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    data = FolderCrops(tmp_path, crop=32)
    batch = data(5, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    again = data(5, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)
    with pytest.raises(ImageError, match="smaller than the crop"):
        FolderCrops(tmp_path, crop=34)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        FolderCrops(tmp_path / "empty", crop=8)


def test_data_root_errors_name_the_folder(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data_root(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="kodak"):
        data_root(tmp_path, need="kodak")
    monkeypatch.setenv("JSCGC_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_kodak_orientations_and_crop(tmp_path):
    try:
        root = data_root(need="kodak")
    except FileNotFoundError:
        pytest.skip("../shared/data/kodak is absent; set JSCGC_DATA")
    images = dict(kodak(root, names=["kodim01", "kodim04"]))
    assert images["kodim01"].shape == (3, 512, 768) and images["kodim04"].shape == (3, 768, 512)
    turned = dict(kodak(root, names=["kodim04"], landscape=True))["kodim04"]
    assert turned.shape == (3, 512, 768)
    assert dict(kodak(root, names=["kodim04"], crop=256))["kodim04"].shape == (3, 256, 256)
    assert len(kodak(root)) == 24


def test_val_grid_turns_portraits_and_crops_to_the_kodak_half_grid(tmp_path):
    """BSDS500-shaped images (481x321 and 321x481) become (3, 256, 384) centre crops, portraits turned a quarter
    clockwise as Kodak's are; a too-small image is an error naming it."""
    from PIL import Image

    from jscgc.imagedata import ImageError, TEST_GRID, to_landscape, val_grid

    folder = tmp_path / "bsds500" / "val"
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    arrays = {"a": torch.randint(0, 256, (321, 481, 3), generator=g, dtype=torch.uint8),
              "b": torch.randint(0, 256, (481, 321, 3), generator=g, dtype=torch.uint8)}
    for name, arr in arrays.items():
        Image.fromarray(arr.numpy()).save(folder / f"{name}.png")
    got = dict(val_grid(tmp_path))
    assert TEST_GRID == (256, 384) and all(x.shape == (3, 256, 384) for x in got.values())
    for name, arr in arrays.items():
        whole = to_landscape(arr.permute(2, 0, 1).float() / 255)          # (3, 321, 481)
        top, left = (321 - 256) // 2, (481 - 384) // 2
        assert torch.equal(got[name], whole[:, top:top + 256, left:left + 384]), name
    assert [n for n, _ in val_grid(tmp_path, count=1)] == ["a"]
    Image.fromarray(arrays["a"][:200].numpy()).save(folder / "c.png")       # 200x481: too small
    with pytest.raises(ImageError, match="c.png"):
        val_grid(tmp_path)
