"""The nodes' tensor work (host-free: torch, numpy, OpenCV): ComfyUI IMAGE/MASK batches -> a STROKE_HINT batch
and its IMAGE preview, a STROKE_HINT made ready for one loaded ControlNet, and the lineart overlay.

ComfyUI's types: IMAGE is BxHxWxC float in [0, 1] (C = 3, or 4 from JoinImageWithAlpha), MASK is
BxHxW (or HxW) float in [0, 1]. LoadImage's MASK is 1 - alpha: 1 where the PNG is transparent.
Every stroke picture is read by ``preprocessors.read_stroke_layer`` (the rules and misread guards the WebUIs
share) and every hint built by ``preprocessors.inference_hint``; this module pairs up batches, reads the mask
the right way round, words a misread in the node's terms, and converts between torch and numpy.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import torch
import torch.nn.functional as F

from ..model import fill_note
from ..preprocessors import (
    DEFAULT_CANNY,
    HINT_CHANNELS,
    UNRECORDED_EDGE_POLARITY,
    HintError,
    StrokeMisread,
    check_not_the_drawing,
    check_off_the_lines,
    check_polarity,
    hint_preview,
    inference_hint,
    read_stroke_layer,
    resize_drawing,
    stretch_note,
    to_model_polarity,
)
from .names import (
    DEFAULT_BACKGROUND,
    FILLED_ATTR,
    MASK_MARKS,
    POLARITY_ATTR,
    TRAINED_FILL_ATTR,
    tell,
)

# --- IMAGE/MASK batches -> STROKE_HINT -------------------------------------------------------------------

LOADIMAGE_PLACEHOLDER = (64, 64)  # LoadImage's all-zero MASK for an image without alpha
LINE_SOURCES = {"mask": "strokes_mask", "alpha": "the strokes image's alpha", "background": "its colours"}
PAINTER_REMEDY = ("To paint strokes inside ComfyUI, use Color Stroke Painter (it also reads a drawing painted "
                  "over in the Mask Editor when the Mask Editor is opened on the painter node).")


def parse_colour(value) -> tuple[float, float, float]:
    """A colour as the node's background widget holds it -> (r, g, b) in [0, 1].

    "#RRGGBB" or "RRGGBB" (the widget, with its colour picker), or 0xRRGGBB as an int (workflows saved
    when the widget was a number box, and API prompts that send one).
    """
    text = str(value).strip()
    if isinstance(value, int) or text.isdigit():
        number = int(text)
    elif re.fullmatch(r"#?[0-9a-fA-F]{6}", text):
        number = int(text.lstrip("#"), 16)
    else:
        number = -1
    if not 0 <= number <= 0xFFFFFF:
        raise HintError(f"background {value!r} is not a colour; write it as #RRGGBB, e.g. #FFFFFF for white")
    return ((number >> 16) / 255.0, ((number >> 8) & 0xFF) / 255.0, (number & 0xFF) / 255.0)


def batch_size(name: str, tensor, expected_ndim: int) -> int:
    """Check that ``tensor`` has ``expected_ndim`` dimensions and return its batch size."""
    if tensor.ndim != expected_ndim:
        layout = "BxHxWxC" if expected_ndim == 4 else "BxHxW"
        raise HintError(f"{name} must be a {layout} batch, got shape {tuple(tensor.shape)}")
    return int(tensor.shape[0])


def common_batch(sizes: dict[str, int]) -> int:
    """The batch size all inputs broadcast to: every input holds 1 item or the same N."""
    n = max(sizes.values())
    wrong = {name: size for name, size in sizes.items() if size not in (1, n)}
    if wrong:
        listed = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise HintError(f"batch sizes do not pair up ({listed}); give each input either 1 item or the same number")
    return n


def stroke_alpha(mask, strokes_size: tuple[int, int], mask_marks: str):
    """A MASK batch -> Bx1xHxW stroke alpha at the stroke layer's size, or None to ignore the mask.

    mask_marks: "no_stroke" (1 = transparent, LoadImage's MASK of a PNG layer) or "stroke" (1 = stroke).
    """
    if mask_marks not in MASK_MARKS:
        raise HintError(f"mask_marks must be one of {MASK_MARKS}, got {mask_marks!r}")
    mask = mask[None] if mask.ndim == 2 else mask
    batch_size("strokes_mask", mask, 3)
    size = tuple(mask.shape[-2:])
    if size == LOADIMAGE_PLACEHOLDER and size != strokes_size and not mask.any():
        tell("strokes_mask is LoadImage's empty mask of an image without transparency; ignoring it and reading "
             "strokes by the background colour", logging.INFO)
        return None
    mask = mask.float()[:, None]
    if size != strokes_size:
        tell(f"strokes_mask is {size[1]}x{size[0]} but the strokes image is {strokes_size[1]}x{strokes_size[0]}; "
             "stretching the mask")
        mask = F.interpolate(mask, size=strokes_size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return 1.0 - mask if mask_marks == "no_stroke" else mask


def misread_message(coverage: float, read_from: str, mask_marks: str, background) -> str:
    """What to change when strokes were read over ``coverage`` (a fraction) of the picture.

    read_from: "mask" (strokes_mask), "alpha" (a 4-channel strokes IMAGE) or "background" (the colour)."""
    share = f"{coverage:.0%} of the picture"
    if read_from == "mask":
        other = "stroke" if mask_marks == "no_stroke" else "no_stroke"
        return (f"strokes_mask marks {share} as strokes (read with mask_marks = {mask_marks}), so the strokes would "
                f"hide the drawing. If the mask is the other way round, set mask_marks to {other} (Load Image's MASK "
                "of a transparent PNG needs no_stroke); if it is not the stroke layer's mask, connect the MASK of the "
                "Load Image that holds the strokes")
    if read_from == "alpha":
        return (f"the strokes image is opaque over {share}, so the strokes would hide the drawing; a stroke layer "
                "is transparent wherever nothing is painted")
    return (f"{coverage:.0%} of the strokes image differs from background {background!r}, so the strokes would "
            "hide the drawing. If the strokes image is a transparent PNG from Load Image, connect that Load Image's "
            "MASK to strokes_mask; if the strokes are painted on another colour, set background to that colour")


def node_message(error: StrokeMisread, mask_marks: str, background) -> str:
    """A misread ``preprocessors`` found, in the node's terms: which input to connect or set."""
    if error.reason == "most_of_the_picture":
        return misread_message(error.share, error.read_from, mask_marks, background)
    if error.reason == "on_the_lines":
        return (f"the strokes lie on the drawing's lines (read from {LINE_SOURCES[error.read_from]}), so this is the "
                "drawing's own mask or alpha, not a stroke layer: connect the MASK of the Load Image that holds the "
                "strokes. " + PAINTER_REMEDY)
    if error.reason == "the_drawing":
        return ("the strokes image is the line drawing itself (the same picture is connected to lineart and "
                "strokes); connect the stroke layer to strokes. " + PAINTER_REMEDY)
    return str(error)


def to_uint8(image) -> np.ndarray:
    """BxHxWxC float tensor in [0, 1] -> uint8 numpy, rounded as ``preprocessors`` rounds."""
    return image.detach().float().cpu().mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8).numpy()


def to_numpy(tensor) -> np.ndarray:
    """Float tensor -> float32 numpy on the CPU (no copy when it already is one)."""
    return tensor.detach().cpu().float().numpy()


def build_hints(lineart, strokes=None, strokes_mask=None, low: float = DEFAULT_CANNY.low,
                high: float = DEFAULT_CANNY.high, edge_source: str = "canny", mask_marks: str = "no_stroke",
                background=DEFAULT_BACKGROUND, resolution: int = 0, fill: bool = False, fill_gap: int = 0):
    """Hints for a batch of drawings and stroke layers.

    lineart: IMAGE BxHxWxC. strokes: IMAGE BsxHsxWsxC or None. strokes_mask: MASK or None.
    Each input holds 1 item or the same N; a single item is used for every drawing. Stroke layers of
    another size are stretched to the drawing (with a warning). Each stroke picture is read once by
    ``read_stroke_layer``: from the mask when one is given, else from the alpha of a 4-channel IMAGE that
    tells strokes apart, else as pixels differing from ``background`` (as ``parse_colour`` reads it); its
    warnings are told (toasts), its misreads raised in the node's words. resolution: 0 keeps the drawing's
    size; else the drawing's shorter side is scaled to that many pixels first (the stroke layers follow it).
    fill / fill_gap: fill the strokes between the lines first, as ``inference_hint`` does.
    Returns (hint Bx5xHxW float32 in [0, 1], edges white on black, with ``FILLED_ATTR`` set when strokes were filled;
    preview BxHxWx3 float32).
    """
    sizes = {"lineart": batch_size("lineart", lineart, 4)}
    alpha = None
    if strokes is not None:
        sizes["strokes"] = batch_size("strokes", strokes, 4)
        if strokes_mask is not None:
            alpha = stroke_alpha(strokes_mask, tuple(strokes.shape[1:3]), mask_marks)
        if alpha is not None:
            sizes["strokes_mask"] = alpha.shape[0]
    elif strokes_mask is not None:
        raise HintError("strokes_mask is connected but strokes is not; connect the stroke image too")
    n = common_batch(sizes)

    originals = to_uint8(lineart)
    drawings = [resize_drawing(drawing, resolution) for drawing in originals] if resolution else originals
    layers = None if strokes is None else to_numpy(strokes)
    alphas = None if alpha is None else to_numpy(alpha[:, 0])
    colour = None if layers is None or alphas is not None else parse_colour(background)
    readings, warnings, hints, previews = {}, {}, [], []
    try:
        for i in range(n):
            reading = None
            if layers is not None:
                check_not_the_drawing(layers[i % len(layers)], originals[i % len(originals)])
                pair = (i % len(layers), None if alphas is None else i % len(alphas))
                if pair not in readings:
                    readings[pair] = read_stroke_layer(layers[pair[0]], None if alphas is None else alphas[pair[1]],
                                                       colour)
                reading = readings[pair]
                warnings.update(dict.fromkeys(reading.warnings))
            hint = inference_hint(drawings[i % len(drawings)], reading, low=low, high=high, edge_source=edge_source,
                                  fill=fill, fill_gap=fill_gap)
            if reading is not None:
                check_off_the_lines(reading, hint)
            hints.append(torch.from_numpy(hint))
            previews.append(torch.from_numpy(hint_preview(hint)))
    except StrokeMisread as error:
        raise HintError(node_message(error, mask_marks, background)) from None
    for warning in [*warnings, stretch_note(strokes.shape[1:3], lineart.shape[1:3]) if layers is not None else None]:
        if warning:
            tell(warning)
    batch = stack(hints)
    setattr(batch, FILLED_ATTR, bool(fill) and bool(batch[:, -1].any()))
    return batch, stack(previews).float().div_(255.0)


def stack(items):
    """torch.stack, without its copy for a single item."""
    return items[0][None] if len(items) == 1 else torch.stack(items)


# --- a STROKE_HINT for one loaded ControlNet ------------------------------------------------------------

def model_hint_channels(control_net) -> int:
    """The number of hint channels the ControlNet's first hint convolution takes: a ControlNet's
    ``control_model``, or a control-LoRA's file tensors (ComfyUI's ``ControlLora`` builds its model only as
    sampling starts)."""
    weights = getattr(control_net, "control_weights", None)
    if weights is not None and "input_hint_block.0.weight" in weights:
        return int(weights["input_hint_block.0.weight"].shape[1])
    block = getattr(getattr(control_net, "control_model", None), "input_hint_block", None)
    if block is None:
        raise HintError(
            f"this CONTROL_NET ({type(control_net).__name__}) is not a ControlNet with an image hint; "
            "load the Color Stroke model with Load Color Stroke ControlNet, and use the stock Apply ControlNet "
            "node for other kinds"
        )
    return int(block[0].weight.shape[1])


def model_polarity(control_net) -> str:
    """The edge polarity the loader recorded; if none did, ``UNRECORDED_EDGE_POLARITY`` with a warning (the
    stock loader does not read the file's polarity, as for any file that records none)."""
    polarity = getattr(control_net, POLARITY_ATTR, None)
    if polarity is None:
        tell("this CONTROL_NET was not loaded by Load Color Stroke ControlNet, so its edge polarity is unknown; "
             f"assuming {UNRECORDED_EDGE_POLARITY} (the original colour-stroke model). Load it with Load Color "
             "Stroke ControlNet, which reads the polarity the file records")
        return UNRECORDED_EDGE_POLARITY
    return check_polarity(polarity)


def hint_for_model(hint, control_net):
    """STROKE_HINT Bx5xHxW (edges white on black) -> BxHxWx5 in the model's polarity, as an image for
    ComfyUI's ControlNet apply (which moves channels back first). Raises HintError on a channel mismatch."""
    if hint.ndim != 4 or hint.shape[1] != HINT_CHANNELS:
        raise HintError(f"a STROKE_HINT is Bx{HINT_CHANNELS}xHxW, got shape {tuple(hint.shape)}; "
                        "connect the hint output of Color Stroke + Canny")
    channels = model_hint_channels(control_net)
    if channels != HINT_CHANNELS:
        raise HintError(
            f"this ControlNet takes a {channels}-channel hint but the Color Stroke hint has {HINT_CHANNELS} channels; "
            f"it is not a Color Stroke ControlNet. Use the stock Apply ControlNet node with an IMAGE "
            f"(e.g. from the Canny node) for it, or load a Color Stroke model"
        )
    note = fill_note(getattr(control_net, TRAINED_FILL_ATTR, None), getattr(hint, FILLED_ATTR, False),
                     "this ControlNet")
    if note:
        tell(note)
    return to_model_polarity(hint, model_polarity(control_net)).movedim(1, -1)


# --- the lineart overlay -------------------------------------------------------------------------------

def line_layer(lineart, invert: bool = False):
    """IMAGE BxHxWxC (C = 1, 3, or 4 with alpha composited onto white) -> BxHxWx3 float, lines dark on white."""
    if lineart.ndim != 4 or lineart.shape[-1] not in (1, 3, 4):
        raise HintError(f"lineart must be an IMAGE batch BxHxWxC with C in 1, 3, 4; got shape {tuple(lineart.shape)}")
    lines = lineart.float().clamp(0.0, 1.0)
    if lines.shape[-1] == 4:
        alpha = lines[..., 3:]
        lines = lines[..., :3] * alpha + (1.0 - alpha)
    lines = lines.expand(*lines.shape[:-1], 3) if lines.shape[-1] == 1 else lines
    return 1.0 - lines if invert else lines


def multiply_lines(image, lines, opacity: float):
    """image BxHxWx3 in [0, 1] times the line layer at ``opacity``: image * (1 - opacity * (1 - lines)).

    lines: BlxHxWx3 at the image's size, Bl = 1 or B. opacity in [0, 1]; 0 returns the image unchanged.
    """
    if not 0.0 <= opacity <= 1.0:
        raise HintError(f"opacity must lie in [0, 1], got {opacity}")
    if lines.shape[1:3] != image.shape[1:3]:
        raise HintError(f"the line layer is {tuple(lines.shape[1:3])} but the image is {tuple(image.shape[1:3])}")
    if lines.shape[0] not in (1, image.shape[0]):
        raise HintError(f"{lines.shape[0]} drawings for {image.shape[0]} images; give 1 drawing or one per image")
    factor = torch.lerp(torch.ones((), dtype=lines.dtype), lines.to(image.device), float(opacity))
    return image * factor.to(image.dtype)
