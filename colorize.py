"""Colorize grayscale photographs with a trained colorizer (Fabbri 2017, Sec. 4):
``python colorize.py ckpt_path=<run>/checkpoints/last.ckpt input=<image file, folder or skimage:camera>``.

Each image is read with Pillow as RGB (palette and gray images are converted; an alpha channel is
dropped); only its lightness L is used, so a colour photograph is treated as its grayscale version.
Images of any size are padded (replicating the border) to the multiple of ``2**depth`` the U-Net needs
and cropped back. Writes ``<name>_color.png`` per image and ``sheet.png`` (gray | colour) atomically.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from utils.bootstrap import bootstrap
from utils.errors import report_input_errors

log = bootstrap()  # at import: the processes ddp_spawn starts import this file again


def input_images(path: Path) -> list[Path]:
    """The image files to colorize: ``path`` itself, or the image files in the folder ``path`` (sorted).

    Raises:
        MissingFileError: if ``path`` does not exist or a folder holds no image file (an
            :class:`~utils.errors.InputError` and a ``FileNotFoundError``: one line from the command).
    """
    from datamodules.image_files import is_image_file
    from utils.errors import MissingFileError

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingFileError(f"input={path} does not exist; give an image file, a folder of images or "
                               "skimage:<photo> (e.g. skimage:camera)")
    files = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise MissingFileError(f"input={path} holds no image files (jpg, png, bmp, webp, gif, tif)")
    return files


def read_inputs(spec: str) -> list[tuple[str, torch.Tensor]]:
    """``(name, uint8 RGB (3, H, W))`` for each input: an image file, a folder of them, or
    ``skimage:<name>`` for a photograph bundled with scikit-image (e.g. ``skimage:camera``, a true
    black-and-white photo).

    Raises:
        MissingFileError: a missing path, or a folder with no image files.
        InputError: an unreadable image (names the file), or an unknown scikit-image photo (names some it
            ships). Both are one line from the command.
    """
    from datamodules.image_files import decode_image
    from utils.errors import InputError

    if spec.startswith("skimage:"):
        import numpy as np
        import skimage.data

        name = spec.split(":", 1)[1]
        loader = getattr(skimage.data, name, None) if not name.startswith("_") else None
        if loader is None or not callable(loader):
            raise InputError(f"input={spec}: scikit-image has no photo named {name!r} (photos it ships: "
                             "skimage:camera, astronaut, coffee, chelsea, rocket, ...)")
        try:
            array = np.asarray(loader())
        except Exception as error:  # noqa: BLE001 - e.g. a dataset skimage must download (no network)
            raise InputError(f"input={spec}: scikit-image could not load {name!r} ({error})") from error
        array = np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]
        return [(name, torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(torch.uint8))]
    images = []
    for path in input_images(Path(spec)):
        try:
            images.append((path.stem, decode_image(path, channels=3)))
        except ValueError as error:  # Pillow could not decode it: the message names the file
            raise InputError(str(error)) from error
    return images


@torch.no_grad()
def colorize_image(model, image: torch.Tensor) -> torch.Tensor:
    """Colorize one RGB image ``(3, H, W)`` in ``[-1, 1]`` of any size; returns ``(3, H, W)`` in ``[-1, 1]``.

    The image is padded (border replicated) up to the generator's multiple (``2**depth`` of a U-Net)
    and the result cropped back to ``H x W``.
    """
    multiple = getattr(model.generator, "multiple", 1)
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    padded = F.pad(image[None], (0, pad_w, 0, pad_h), mode="replicate")
    return model.colorize_rgb(padded)[0, :, :h, :w]


def side_by_side(pairs: list[tuple[torch.Tensor, torch.Tensor]], height: int) -> torch.Tensor:
    """A uint8 sheet ``(3, H, W)``: one row per (gray, colour) pair, each resized to ``height`` pixels high."""
    from datamodules.transforms import to_uint8

    rows = []
    for gray, colour in pairs:
        scale = height / gray.shape[-2]
        size = (height, max(1, round(gray.shape[-1] * scale)))
        resized = [F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
                   for x in (gray, colour)]
        rows.append(torch.cat(resized, dim=-1))
    width = max(r.shape[-1] for r in rows)
    rows = [F.pad(r, (0, width - r.shape[-1]), value=1.0) for r in rows]
    return to_uint8(torch.cat(rows, dim=-2))


def colorize(cfg: DictConfig) -> list[Path]:
    """Colorize ``cfg.input`` with the checkpoint ``cfg.ckpt_path``; returns the written colour PNGs.

    The inputs are read first, so a wrong ``input`` is reported before the model is loaded.

    Raises:
        MissingFileError: a missing checkpoint, run config or input.
        InputError: an unreadable image (names the file), an unknown ``skimage:`` photo; a checkpoint of a method that does not colorize; an unreadable checkpoint; a run
            config naming a ``_target_`` off the allowlist (see :func:`utils.checkpoints.load_run`).
    """
    from datamodules.lab import lab_scaled_to_rgb, rgb_to_lab_scaled
    from datamodules.transforms import to_signed, to_uint8
    from utils.checkpoints import load_run
    from utils.errors import InputError
    from utils.images import save_png

    inputs = read_inputs(str(cfg.input))
    model, _ = load_run(cfg.ckpt_path, cfg.get("run_config"), cfg.get("run"), cfg.paths,
                        trust_run_config=bool(cfg.get("trust_run_config", False)),
                        trusted_packages=cfg.get("trusted_packages", ()))
    if not hasattr(model, "colorize_rgb"):
        raise InputError(f"ckpt_path={cfg.ckpt_path} is a {type(model).__name__}, not a colorizer "
                         "(train one with model=colorizer_*)")
    out_dir = Path(cfg.paths.output_dir)
    written, pairs = [], []
    for name, pixels in inputs:
        rgb = to_signed(pixels)
        lightness, ab = rgb_to_lab_scaled(rgb[None])
        if ab.abs().max() > 0.02:
            log.info(f"{name} is a colour image: colorizing its lightness only")
        colour = colorize_image(model, rgb)
        gray = lab_scaled_to_rgb(lightness, torch.zeros_like(ab))[0]
        written.append(save_png(to_uint8(colour), out_dir / f"{name}_color.png"))
        pairs.append((gray, colour))
    save_png(side_by_side(pairs, cfg.sheet_height), out_dir / "sheet.png")
    log.info(f"wrote {len(written)} colour images and sheet.png to {out_dir}")
    return written


@hydra.main(version_base="1.3", config_path="conf", config_name="colorize")
@report_input_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point of :func:`colorize`."""
    for path in colorize(cfg):
        print(path)


if __name__ == "__main__":
    main()
