"""Load an image into the RGB PIL form qwen_omni_utils' ``fetch_image`` starts from.

Only decoding and colour handling happen here; the resize to the model's pixel budget stays
in qwen's ``fetch_image`` so there is a single source of truth for it.
"""

from __future__ import annotations

import os

import numpy as np
import PIL.Image
import torch
from qwen_omni_utils.v2_5.vision_process import to_rgb

from omni_rag.errors import MediaError
from omni_rag.media.fetch import local_file

ImageSource = str | os.PathLike[str] | PIL.Image.Image | np.ndarray | torch.Tensor


def _describe(x: np.ndarray | torch.Tensor) -> str:
    dtype = str(x.dtype).removeprefix("torch.")
    return f"shape {tuple(x.shape)} {dtype}"


def _from_array(arr: np.ndarray) -> PIL.Image.Image:
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise MediaError(
            f"expected HWC uint8 array with 1, 3 or 4 channels (or HW grayscale), got {_describe(arr)}"
        )
    if 0 in arr.shape:
        raise MediaError(f"empty image array, got {_describe(arr)}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return PIL.Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _from_tensor(t: torch.Tensor) -> PIL.Image.Image:
    if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise MediaError(
            f"expected CHW uint8 tensor with 1, 3 or 4 channels, got {_describe(t)}"
            + (
                "; convert float images with (t * 255).round().to(torch.uint8)"
                if t.is_floating_point()
                else ""
            )
        )
    return _from_array(t.detach().cpu().permute(1, 2, 0).numpy())


def _open_file(src: str | os.PathLike[str]) -> PIL.Image.Image:
    with local_file(src) as path:
        try:
            with PIL.Image.open(path) as img:
                img.load()  # decode now, while the (maybe temporary) file exists; catches truncation
                return _to_rgb(img)
        except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
            raise MediaError(f"cannot decode image {src}: {e}") from e


def _to_rgb(img: PIL.Image.Image) -> PIL.Image.Image:
    out: PIL.Image.Image = to_rgb(img)
    return out


def load_image(src: ImageSource) -> PIL.Image.Image:
    """Return ``src`` as an RGB PIL image at its original size.

    Colour conversion is qwen's own ``to_rgb``: RGBA is flattened onto white, every other mode
    (including LA and palette transparency) goes through ``convert("RGB")``. EXIF orientation
    is *not* applied, because qwen's ``fetch_image`` does not apply it either and the
    embeddings must match the model card's pipeline. For animated images the first frame is used.

    Args:
        src: Path, ``file://``/``http(s)://``/``data:`` URI, PIL image, HWC (or HW) uint8
            ndarray, or CHW uint8 tensor. Float arrays are rejected rather than guessed at:
            [0, 1], [0, 255] and mean/std-normalised floats all occur in the wild.

    Raises:
        MediaError: unsupported type, wrong shape/dtype, missing or undecodable file.
    """
    if isinstance(src, PIL.Image.Image):
        return _to_rgb(src)
    if isinstance(src, np.ndarray):
        return _to_rgb(_from_array(src))
    if isinstance(src, torch.Tensor):
        return _to_rgb(_from_tensor(src))
    if isinstance(src, str | os.PathLike):
        return _open_file(src)
    raise MediaError(f"unsupported image type {type(src).__name__}")
