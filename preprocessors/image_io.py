"""Turning what people and data sets hand us into plain arrays.

Every function here returns HxWxC arrays (C in 1, 3, 4; channels last) and raises ``HintError``
with what came and what is expected when the input cannot be used.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .contract import HintError

_INTEGER_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def as_channels_last(image, name: str = "image") -> np.ndarray:
    """View ``image`` (numpy array or PIL image; HxW or HxWxC with C in 1..4) as HxWxC, C in {1, 3, 4}.

    Two channels are read as grey + alpha and become RGBA. The dtype is kept; NaN/inf and
    unsupported dtypes raise HintError.
    """
    array = _channels_last(image, name)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _non_finite_error(name)
    return array


def _non_finite_error(name: str) -> HintError:
    return HintError(f"{name} holds NaN or inf values; clean the image before passing it")


def _channels_last(image, name: str) -> np.ndarray:
    """``as_channels_last`` without the NaN/inf check (for callers that find them another way)."""
    if isinstance(image, Image.Image):
        image = pil_to_array(image)
    array = np.asarray(image)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype not in _INTEGER_SCALE and array.dtype.kind != "f":
        raise HintError(f"{name} has dtype {array.dtype}; expected uint8, uint16 or float in [0, 1]")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise HintError(f"{name} has shape {array.shape}; expected HxW, HxWx3 (RGB) or HxWx4 (RGBA)")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise HintError(f"{name} is {array.shape[1]}x{array.shape[0]} pixels; it needs at least 2x2")
    if array.shape[2] == 2:
        grey, alpha = array[..., :1], array[..., 1:]
        array = np.concatenate([grey, grey, grey, alpha], axis=2)
    return array


def integer_scale(dtype) -> float:
    """The value that means 1.0 for an image dtype: 255 (uint8), 65535 (uint16), 1 (float)."""
    return _INTEGER_SCALE.get(np.dtype(dtype), 1.0)


def to_float(image, name: str = "image") -> np.ndarray:
    """``as_channels_last`` and then float32 in [0, 1] (uint8 / 255, uint16 / 65535).

    Floats within 1e-3 of [0, 1] are clipped to it; a float32 image already in [0, 1] is returned
    as is (sharing memory with ``image``), other inputs as a new array.
    """
    array = _channels_last(image, name)
    if array.dtype.kind != "f":
        out = array.astype(np.float32)
        out /= _INTEGER_SCALE[array.dtype]
        return out
    # min and max are NaN or infinite exactly when the image holds a NaN or inf
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise _non_finite_error(name)
    if low < -1e-3 or high > 1.0 + 1e-3:
        raise HintError(
            f"{name} is float with values in [{low:.3g}, {high:.3g}]; float images must lie in [0, 1] "
            "(divide 0-255 data by 255)"
        )
    if low < 0.0 or high > 1.0:
        array = np.clip(array, 0.0, 1.0)
    return array.astype(np.float32, copy=False)


def to_uint8(image, name: str = "image") -> np.ndarray:
    """``as_channels_last`` and then uint8 (floats scaled by 255 and rounded, uint16 shifted down)."""
    array = as_channels_last(image, name)
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    return (to_float(array, name) * 255.0 + 0.5).astype(np.uint8)


def composite_on_white(image: np.ndarray) -> np.ndarray:
    """HxWx4 -> HxWx3 with the alpha composited onto white, dtype kept; other inputs returned as is."""
    if image.shape[2] != 4:
        return image
    if image.dtype.kind == "f":
        alpha = image[..., 3:]
        return image[..., :3] * alpha + (1.0 - alpha)
    scale = _INTEGER_SCALE[image.dtype]
    alpha = image[..., 3:].astype(np.float32) / scale
    out = image[..., :3].astype(np.float32) * alpha + scale * (1.0 - alpha)
    return (out + 0.5).astype(image.dtype)


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image as HxW / HxWx3 / HxWx4 array: palette and CMYK become RGB(A), 16-bit stays uint16."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise HintError(f"a {image.mode} image with values outside 0-65535 is not supported")
        return array.astype(np.uint16)
    elif image.mode == "F":
        raise HintError("32-bit float images (PIL mode F) are not supported; save the image as 8 or 16 bit")
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if image.mode in ("PA", "RGBa", "La") else "RGB")
    return np.asarray(image)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into an array as ``pil_to_array`` does; raises HintError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_array(image)
    except FileNotFoundError:
        raise HintError(f"image file {os.fspath(path)!r} does not exist") from None
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise HintError(f"cannot read image {os.fspath(path)!r}: {error}") from error
