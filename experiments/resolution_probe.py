"""Does a receiver trained on 64² crops fail on larger images because of their size? (BSDS500 `val`.)

On Kodak ÷2 (384×256) the `small` JSCGC's output is as blurred as the MSE decoder's (HF ratio ≈ 0.09),
while on 128² `val` crops the same recipe had 0.81 (docs/kodak_small.md). This probe separates image
size from image content: each `val` image, turned to landscape, box-downscaled ÷2 like Kodak and
centre-cropped to 192×128, is sent and received two ways with the same trained system and the same channel uses:

* ``whole``: one 192×128 image (a 12×8 grid of encoder tokens; the backbone sees 12×8 patch tokens
  of the 24×16 latent) — larger than anything seen in training;
* ``tiles``: six 64×64 tiles sent and received as a batch (4×4 encoder tokens each, the training
  size) and stitched back.

Both use 96 encoder tokens (the same channel uses), but they are not the same transmission: each tile
is power-normalised on its own and its TAEF2 latent is encoded and decoded without its neighbours.

Per image: PSNR, PSNR ÷16 and HF ratio of the receivers' outputs, the HF ratio as the mean over the six
64² tiles of both images (so the stitched seams add no Laplacian energy); per receiver, the paired
difference tiles − whole with its standard error. Kodak is not read here.

    python experiments/resolution_probe.py --checkpoint results/kodak_small_v2 --out results/resolution_probe

Every input is checked first (``resolution_probe: …``, exit 2, nothing written): known --methods, each
``<checkpoint>/<method>/train`` a finished, readable checkpoint of --preset's model, ``--images`` >= 1, finite
SNRs, a new and writable ``--out``, the BSDS500 `val` folder and its images.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from jscgc import checks
from jscgc.checkpoints import check_checkpoint, latest_checkpoint, load_trained
from jscgc.checks import UsageError
from jscgc.evaluation import score, view
from jscgc.imagedata import center_crop, folder_images
from jscgc.io import DamagedFile, atomic_write_json, atomic_write_text, source_version
from jscgc.latents import TAEF2
from jscgc.methods import METHODS, build_method
from jscgc.metrics import available_metrics, hf_ratio

#: scored on the whole picture (the tiled reception reassembled); the HF ratio is the mean over the 64² tiles
SCORED = ["psnr", "psnr_lp16", "detail_match", "lpips_alex", "lpips_vgg", "dists"]
from jscgc.presets import PRESETS, get_preset
from jscgc.types import Dial

SIZE = (128, 192)     # (H, W) of the probe images: 2 × 3 tiles of 64²
TILE = 64


def to_tiles(x: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) -> (H/64 · W/64, 3, 64, 64), row-major."""
    _, c, h, w = x.shape
    return x.reshape(c, h // TILE, TILE, w // TILE, TILE).permute(1, 3, 0, 2, 4).reshape(-1, c, TILE, TILE)


def from_tiles(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`to_tiles`: (n, 3, 64, 64) -> (1, 3, h, w)."""
    c = t.shape[1]
    return t.reshape(h // TILE, w // TILE, c, TILE, TILE).permute(2, 0, 3, 1, 4).reshape(1, c, h, w)


def landscape(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) turned a quarter so that W ≥ H (BSDS500 has both 481×321 and 321×481)."""
    return image.transpose(1, 2).flip(2) if image.shape[1] > image.shape[2] else image


@dataclass(frozen=True)
class ProbeConfig:
    """One probe, as the command line asked for it (see ``python experiments/resolution_probe.py --help``)."""
    checkpoint: str                  # a kodak.py --out, as given
    methods: tuple[str, ...]         # known, distinct names of jscgc.methods.METHODS
    preset: str
    images: int                      # the first N images of BSDS500 val, >= 1
    snrs: tuple[float, ...]          # finite, in dB
    seed: int
    data: str | None
    out: str                         # --out as given (a new folder)

    def recorded(self) -> dict:
        """The settings as config.json records them (one key per flag, named as the flag)."""
        kept = dataclasses.asdict(self)
        return {**{k: v for k, v in kept.items() if k != "snrs"}, "methods": ",".join(self.methods),
                "snr": list(self.snrs)}


def parse_args(argv):
    p = checks.Parser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a kodak.py --out with trained <method>/train folders")
    p.add_argument("--methods", default="jscgc,mambajscc", help=f"comma list of {','.join(METHODS)}")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="the preset the methods were trained at")
    p.add_argument("--images", type=int, default=24, help="the first N images of BSDS500 val")
    p.add_argument("--snr", type=float, nargs="+", default=[5.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def _table(df) -> list[str]:
    """Markdown lines: per method, receiver, SNR and metric the whole and tiled means and their paired
    difference ± s.e. over images."""
    scored = [m for m in SCORED + ["hf_ratio"] if m in df]
    wide = df.pivot_table(index=["method", "receiver", "snr_db", "image"], columns="how", values=scored)
    lines = ["| method | receiver | SNR | metric | whole | tiles | tiles − whole (± s.e.) |", "|---|---|---|---|---|---|---|"]
    for (m, f, s), grp in wide.groupby(level=[0, 1, 2]):
        for metric in scored:
            d = grp[(metric, "tiles")] - grp[(metric, "whole")]
            lines.append(f"| {m} | {f} | {s:g} | {metric} | {grp[(metric, 'whole')].mean():.3f} | "
                         f"{grp[(metric, 'tiles')].mean():.3f} | {d.mean():+.3f} ± {d.std(ddof=1) / math.sqrt(len(d)):.3f} |")
    return lines


def configure(argv) -> ProbeConfig:
    """argv -> the checked :class:`ProbeConfig` (UsageError on an unknown method or a bad number); nothing
    is read or written."""
    args = parse_args(argv)
    methods = checks.names("--methods", args.methods, METHODS)
    checks.positive_int("--images", args.images)
    snrs = checks.finite_all("--snr", args.snr, what="SNRs in dB")
    checks.nonnegative_int("--seed", args.seed)
    return ProbeConfig(checkpoint=args.checkpoint, methods=tuple(methods), preset=args.preset, images=args.images,
                       snrs=tuple(snrs), seed=args.seed, data=args.data, out=args.out)


def _checkpoint_files(config: ProbeConfig, name: str) -> None:
    """``<checkpoint>/<name>/train`` holds a checkpoint whose files all read (a damaged one is named)."""
    folder = Path(config.checkpoint) / name / "train"
    if latest_checkpoint(folder) is None:
        raise UsageError(f"--checkpoint {config.checkpoint} has no trained {name} (no checkpoint under {folder})")
    try:
        check_checkpoint(latest_checkpoint(folder))
    except DamagedFile as err:
        raise UsageError(f"--checkpoint: {err}") from None


def _trained(config: ProbeConfig, name: str, preset, extractor):
    """The method built at --preset with its finished checkpoint loaded (another model, an unfinished run:
    one line)."""
    system = build_method(name, preset, extractor).eval()
    try:
        load_trained(system, Path(config.checkpoint) / name / "train")
    except (ValueError, FileNotFoundError) as err:                  # DamagedFile is a ValueError
        raise UsageError(f"--checkpoint (--preset {preset.name}, {name}): {err}") from None
    return system


def check_inputs(config: ProbeConfig) -> tuple[list, dict]:
    """The folders, checkpoints and images of ``config``, before any transmission (raises UsageError);
    returns the images ((3, 128, 192) each, with their names) and the trained systems."""
    checks.new_folder("--out", config.out)
    val = checks.data_folder("--data", config.data, need="bsds500/val") / "bsds500" / "val"
    for name in config.methods:
        _checkpoint_files(config, name)
    try:
        images = [(n, center_crop(torch.nn.functional.avg_pool2d(landscape(im)[None], 2)[0], SIZE))
                  for n, im in folder_images(val, config.images)]
    except (FileNotFoundError, ValueError) as err:                  # ImageError is a ValueError
        raise UsageError(f"--data: {err}") from None
    extractor, preset = TAEF2(), get_preset(config.preset).updated(recipe={"window": 0})   # whole grid vs tiles
    return images, {name: _trained(config, name, preset, extractor) for name in config.methods}


def main(argv=None) -> int:
    """Check every input (one line, exit 2, nothing written), then run the probe and write its results."""
    def check():
        config = configure(argv)
        return (config, *check_inputs(config))

    return checks.run_main("resolution_probe", check, lambda checked: _probe(*checked))


def _probe(config: ProbeConfig, images: list, systems: dict) -> int:
    from tqdm.auto import tqdm

    out, rows, t0 = Path(config.out), [], time.time()
    ready, unavailable = available_metrics(SCORED)
    bar = tqdm(total=len(systems) * len(config.snrs) * len(images), desc="probe")
    for name, system in systems.items():
        for snr in config.snrs:
            for k, (img, x) in enumerate(images):
                x = x[None]
                x_tiles, got = to_tiles(x), {}
                for how, batch in (("whole", x), ("tiles", x_tiles)):
                    g = torch.Generator().manual_seed(1000 * config.seed + k)
                    with torch.no_grad():
                        r = system.receive(system.transmit(batch, snr, g), Dial(), g, tuple(batch.shape))
                    for f in ("output", "sample", "estimate"):
                        y = view(r, f)
                        if y is None or (f != "output" and not name.startswith("jscgc")):
                            continue                      # μ(ŷ) only where computed; sample only for the generators
                        y = y.clamp(0, 1)
                        got[how, f] = (y, to_tiles(y)) if how == "whole" else (from_tiles(y, *SIZE), y)
                for (how, f), (y, y_tiles) in got.items():
                    rows.append({"method": name, "receiver": f, "how": how, "snr_db": snr, "image": img,
                                 **score(x, y, ready),
                                 "hf_ratio": float(hf_ratio(x_tiles, y_tiles).mean())})
                bar.update(1)
    bar.close()
    import pandas as pd

    df = pd.DataFrame(rows)
    lines = _table(df)
    out.mkdir(parents=True)
    atomic_write_text(out / "probe.csv", df.to_csv(index=False))
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "config.json", {**config.recorded(), "size": SIZE, "tile": TILE, "n_images": len(images),
                                            "unavailable_metrics": unavailable,
                                            "wall_s": time.time() - t0, "torch": torch.__version__,
                                            "source": source_version()})
    print("\n".join(lines))
    print(f"resolution_probe: wrote {out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
