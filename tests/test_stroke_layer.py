"""preprocessors.read_stroke_layer and its misread guards, and both hosts reading a set of pictures alike.

The hosts: ComfyUI's Color Stroke + Canny node (``nodes.hint_tensors.build_hints``, the repo imported as
ComfyUI imports it) and the WebUIs' stroke store with the hint their preprocessors build
(``scripts.colorstroke_lib``), both host-free.
"""
import base64
import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from preprocessors import (
    HintError,
    StrokeMisread,
    check_not_the_drawing,
    check_off_the_lines,
    inference_hint,
    read_stroke_layer,
    user_strokes,
)
from preprocessors.stroke_layer import BACKGROUND_TOLERANCE, plain_border
from scripts.colorstroke_lib import hints, store
from tests.helpers import comfy_module, png_base64

HEIGHT, WIDTH = 96, 128


def drawing() -> np.ndarray:
    """Dark lines on white, HxWx3 uint8: a rectangle, a circle and a diagonal."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    cv2.rectangle(image, (20, 16), (76, 60), (0, 0, 0), 2)
    cv2.circle(image, (88, 64), 20, (0, 0, 0), 2)
    cv2.line(image, (8, 88), (120, 8), (0, 0, 0), 1)
    return image


def strokes_on(background) -> np.ndarray:
    """Strokes painted on a plain background, HxWx3 uint8: a red blob running off the top border, a blue
    blob and a pale one (a stroke, though near white)."""
    picture = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    picture[:] = background
    cv2.circle(picture, (40, 4), 14, (230, 40, 30), -1)
    cv2.circle(picture, (90, 60), 12, (20, 60, 220), -1)
    cv2.rectangle(picture, (20, 70), (40, 85), (190, 210, 250), -1)
    return picture


def transparent_strokes() -> np.ndarray:
    """The strokes of ``strokes_on`` on a transparent layer with soft (antialiased) edges, HxWx4 uint8."""
    rgb = strokes_on((0, 0, 0))
    painted = (rgb.max(axis=2) > 0).astype(np.float32)
    alpha = np.clip(cv2.GaussianBlur(painted, (0, 0), 1.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


def mostly_painted() -> np.ndarray:
    """Colours over nearly all of a white picture (its 2-pixel white border left bare), HxWx3 uint8."""
    picture = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    picture[2:-2, 2:WIDTH // 2] = (200, 60, 40)
    picture[2:-2, WIDTH // 2:-2] = (40, 160, 60)
    return picture


def jpeg(picture: np.ndarray, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


# ---------------------------------------------------------------- the reader

def test_a_mask_wins_over_the_alpha_and_the_colours():
    picture = transparent_strokes()
    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    mask[10:20, 10:30] = 1.0
    reading = read_stroke_layer(picture, mask=mask, background=(1.0, 1.0, 1.0))
    assert reading.read_from == "mask" and reading.background is None and reading.warnings == ()
    np.testing.assert_array_equal(reading.layer, user_strokes(picture[..., :3], mask=mask))
    assert reading.painted == pytest.approx(200 / (HEIGHT * WIDTH))


def test_an_alpha_that_tells_strokes_apart_is_read_premultiplied():
    picture = transparent_strokes()
    reading = read_stroke_layer(picture, background=(1.0, 1.0, 1.0))  # a colour given is not needed here
    assert reading.read_from == "alpha" and reading.background is None and reading.warnings == ()
    np.testing.assert_array_equal(reading.layer, user_strokes(picture))
    soft = (picture[..., 3] > 0) & (picture[..., 3] < 255)
    assert soft.any() and (reading.layer[..., :3] <= reading.layer[..., 3:] + 1e-6).all()
    assert reading.painted == pytest.approx(np.count_nonzero(picture[..., 3]) / picture[..., 3].size)
    assert reading.picture is picture and reading.layer.dtype == np.float32


def test_a_fully_transparent_layer_has_no_strokes():
    reading = read_stroke_layer(np.zeros((8, 8, 4), np.uint8))
    assert reading.read_from == "alpha" and reading.painted == 0.0 and reading.layer.max() == 0.0


@pytest.mark.parametrize("alpha", [None, 255, 128])
def test_an_opaque_picture_is_read_by_its_plain_border(alpha):
    rgb = strokes_on((255, 255, 255))
    picture = rgb if alpha is None else np.dstack([rgb, np.full((HEIGHT, WIDTH), alpha, np.uint8)])
    reading = read_stroke_layer(picture)
    painted = rgb.min(axis=2) < 255
    assert reading.read_from == "background" and reading.background == (255, 255, 255)
    np.testing.assert_array_equal(reading.layer[..., 3], painted.astype(np.float32))
    np.testing.assert_allclose(reading.layer[60, 90, :3], np.array([20, 60, 220]) / 255.0, atol=1e-6)
    assert reading.layer[75, 30, 3] == 1.0, "the pale stroke stays a stroke"
    assert reading.warnings == ("the stroke layer has no transparency: its plain background #ffffff counted as no "
                                "stroke",)


def test_floats_uint16_and_grey_read_as_their_uint8_picture():
    rgb = strokes_on((255, 255, 255))
    expected = read_stroke_layer(rgb)
    for form in (rgb.astype(np.float32) / 255.0, rgb.astype(np.uint16) * 257):
        reading = read_stroke_layer(form)
        assert reading.background == (255, 255, 255)
        np.testing.assert_allclose(reading.layer, expected.layer, atol=1e-6)
    grey = read_stroke_layer(np.where(rgb.min(axis=2) < 255, 0, 255).astype(np.uint8))
    assert grey.background == (255, 255, 255) and grey.painted == expected.painted


def test_a_given_colour_is_measured_on_a_plain_border_near_it_and_used_as_given_otherwise():
    paper = strokes_on((250, 248, 244))  # off-white paper
    found, given = read_stroke_layer(paper), read_stroke_layer(paper, background=(1.0, 1.0, 1.0))
    assert found.background == given.background == (250, 248, 244)
    np.testing.assert_array_equal(found.layer, given.layer)
    assert found.warnings == given.warnings
    on_black = strokes_on((0, 0, 0))
    with pytest.raises(StrokeMisread, match="differs from its background #ffffff") as caught:
        read_stroke_layer(on_black, background=(1.0, 1.0, 1.0))  # the person's colour, far from the border's
    assert caught.value.reason == "most_of_the_picture" and caught.value.read_from == "background"
    assert caught.value.share > 0.9


def test_an_opaque_picture_without_a_plain_border_is_refused():
    photo = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    split = strokes_on((255, 255, 255))
    split[:, WIDTH // 2:] = (0, 120, 0)  # four colours share the border, none half of it
    split[HEIGHT // 2:, :WIDTH // 2] = (120, 0, 0)
    split[HEIGHT // 2:, WIDTH // 2:] = (0, 0, 120)
    assert plain_border(split) is None
    for picture in (photo, split):
        with pytest.raises(StrokeMisread, match="no transparent pixels and no plain background") as caught:
            read_stroke_layer(picture)
        assert caught.value.reason == "no_background" and caught.value.read_from is None


def test_strokes_over_most_of_the_picture_are_refused_however_read():
    with pytest.raises(StrokeMisread, match="9[0-9]% of the picture") as caught:
        read_stroke_layer(mostly_painted())
    assert caught.value.reason == "most_of_the_picture" and caught.value.read_from == "background"
    with pytest.raises(StrokeMisread, match="the stroke mask marks 100% of the picture") as caught:
        read_stroke_layer(strokes_on((255, 255, 255)), mask=np.ones((HEIGHT, WIDTH), np.float32))
    assert caught.value.read_from == "mask" and caught.value.share == 1.0
    layer = transparent_strokes()
    layer[..., 3] = 255
    layer[:4, :4, 3] = 0
    with pytest.raises(StrokeMisread, match="opaque over 100% of the picture") as caught:
        read_stroke_layer(layer)
    assert caught.value.read_from == "alpha"


@pytest.mark.parametrize("background", [(255, 255, 255), (1.0, 1.0), "#FFFFFF", (1.0, 1.0, float("nan"))])
def test_a_background_that_is_no_colour_in_0_1_is_refused(background):
    with pytest.raises(HintError, match=r"background must be an RGB colour \(r, g, b\) in \[0, 1\]"):
        read_stroke_layer(strokes_on((255, 255, 255)), background=background)


def test_the_tolerance_reads_jpeg_noise_as_background_and_pale_strokes_as_strokes():
    picture = decoded(jpeg(strokes_on((255, 255, 255))))
    reading = read_stroke_layer(picture)
    painted = strokes_on((255, 255, 255)).min(axis=2) < 255
    assert reading.background[0] >= 250 and np.mean((reading.layer[..., 3] > 0.5) == painted) > 0.97
    assert reading.layer[72:84, 22:38, 3].min() == 1.0, "the pale stroke stays a stroke"
    assert BACKGROUND_TOLERANCE * 255 < 255 - 210, "the pale stroke lies outside the tolerance"


def test_the_drawing_as_its_own_stroke_layer_is_refused():
    lines = drawing()
    with pytest.raises(StrokeMisread, match="the line drawing itself") as caught:
        check_not_the_drawing(lines, lines.copy())
    assert caught.value.reason == "the_drawing"
    check_not_the_drawing(strokes_on((255, 255, 255)), lines)
    check_not_the_drawing(lines[:48], lines)  # another size: another picture
    near = lines.astype(np.float32) / 255.0 + 0.5 / 255.0  # the drawing as a float IMAGE, rounded differently
    with pytest.raises(StrokeMisread):
        check_not_the_drawing(np.dstack([near, np.ones((HEIGHT, WIDTH, 1), np.float32)]), lines)


def test_strokes_on_the_drawings_lines_are_refused_and_painted_regions_are_not():
    lines = drawing()
    edges = inference_hint(lines)[0]
    own_alpha = np.dstack([np.zeros((HEIGHT, WIDTH, 3), np.uint8), (edges > 0.5).astype(np.uint8) * 255])
    reading = read_stroke_layer(own_alpha)
    with pytest.raises(StrokeMisread, match="100% of the strokes lie on the drawing's lines") as caught:
        check_off_the_lines(reading, inference_hint(lines, reading))
    assert caught.value.reason == "on_the_lines" and caught.value.read_from == "alpha"
    painted = read_stroke_layer(transparent_strokes())
    check_off_the_lines(painted, inference_hint(lines, painted))


def test_the_hint_takes_a_reading_as_it_was_read():
    picture = transparent_strokes()
    reading = read_stroke_layer(picture)
    np.testing.assert_array_equal(inference_hint(drawing(), reading), inference_hint(drawing(), picture))
    small = read_stroke_layer(picture[::2, ::2])
    np.testing.assert_array_equal(inference_hint(drawing(), small), inference_hint(drawing(), picture[::2, ::2]))
    with pytest.raises(HintError, match="with a StrokeReading"):
        inference_hint(drawing(), reading, mask=np.ones((HEIGHT, WIDTH), np.float32))


# ---------------------------------------------------------------- both hosts, one set of pictures

def as_image(array: np.ndarray):
    """uint8 HxWxC -> ComfyUI IMAGE 1xHxWxC float, as LoadImage makes it."""
    return torch.from_numpy(array.astype(np.float32) / 255.0)[None]


def comfy_reads(picture: np.ndarray, background: str, caplog):
    """ComfyUI: the node's (hint 5xHxW, warnings told) for the picture as a strokes IMAGE; raises as the node does."""
    node = comfy_module("nodes.hint_tensors")
    caplog.clear()
    with caplog.at_level("WARNING", logger="color_stroke"):
        hint, _ = node.build_hints(as_image(drawing()), as_image(picture), background=background)
    told = [r.getMessage().removeprefix("color stroke: ") for r in caplog.records if r.levelname == "WARNING"]
    return hint[0].numpy(), told


def webui_reads(value):
    """A1111 / Forge: the store's reading of the value as the UI or API gives it, and the unit's hint."""
    reading = store.read_layer(value)
    return hints.build_hint(hints.Drawing(drawing()), reading), list(reading.warnings)


JPEG_STROKES = jpeg(strokes_on((255, 255, 255)))
# name -> (the picture ComfyUI's Load Image gives, what the WebUI gets, ComfyUI's background widget)
PICTURES = {
    "painted on white": (strokes_on((255, 255, 255)), png_base64(strokes_on((255, 255, 255))), "#FFFFFF"),
    "painted on black": (strokes_on((0, 0, 0)), png_base64(strokes_on((0, 0, 0))), "#000000"),
    "painted on transparent": (transparent_strokes(), png_base64(transparent_strokes()), "#FFFFFF"),
    "gradio's RGBA of an RGB upload": (np.dstack([strokes_on((255, 255, 255)), np.full((HEIGHT, WIDTH), 255,
                                                                                         np.uint8)]),
                                       np.dstack([strokes_on((255, 255, 255)), np.full((HEIGHT, WIDTH), 255,
                                                                                         np.uint8)]), "#FFFFFF"),
    "a JPEG with noise": (decoded(JPEG_STROKES), base64.b64encode(JPEG_STROKES).decode(), "#FFFFFF"),
}


@pytest.mark.parametrize("name", PICTURES)
def test_both_hosts_read_a_picture_into_the_same_layer_with_the_same_warnings(name, caplog):
    comfy_picture, webui_value, background = PICTURES[name]
    comfy_hint, comfy_told = comfy_reads(comfy_picture, background, caplog)
    webui_hint, webui_told = webui_reads(webui_value)
    np.testing.assert_array_equal(comfy_hint, webui_hint)
    assert comfy_hint[4].max() == 1.0 and comfy_hint[4].mean() < 0.3
    assert comfy_told == webui_told
    assert bool(webui_told) == (name not in ("painted on transparent",)), "an opaque picture says how it was read"


def test_comfyui_reads_a_transparent_layer_with_its_mask_as_the_webui_reads_its_alpha():
    layer = transparent_strokes()
    node = comfy_module("nodes.hint_tensors")
    image = as_image(layer)
    hint, _ = node.build_hints(as_image(drawing()), image[..., :3], 1.0 - image[..., 3])  # Load Image's IMAGE + MASK
    webui_hint, _ = webui_reads(png_base64(layer))
    np.testing.assert_allclose(hint[0].numpy(), webui_hint, atol=1e-6)


@pytest.mark.parametrize("name, picture, reason", [
    ("mostly painted", mostly_painted(), "most_of_the_picture"),
    ("equal to the drawing", drawing(), "the_drawing"),
])
def test_both_hosts_refuse_a_misread_picture_for_the_same_reason(name, picture, reason, caplog):
    node = comfy_module("nodes.hint_tensors")
    with pytest.raises(StrokeMisread) as webui:
        webui_reads(png_base64(picture))
    assert webui.value.reason == reason
    with pytest.raises(comfy_module("preprocessors").HintError) as comfy:
        comfy_reads(picture, "#FFFFFF", caplog)
    assert str(comfy.value) == node.node_message(webui.value, "no_stroke", "#FFFFFF"), "the node's words for it"


def test_comfyui_keeps_its_colour_where_the_webui_finds_the_border(caplog):
    """ComfyUI's widget is the person's choice: strokes on black read against the default white are refused with
    what to set, where the WebUIs, which have no such setting, find the black border."""
    on_black = strokes_on((0, 0, 0))
    with pytest.raises(comfy_module("preprocessors").HintError,
                       match="differs from background '#FFFFFF'.*set background to that colour"):
        comfy_reads(on_black, "#FFFFFF", caplog)
    hint, told = webui_reads(png_base64(on_black))
    assert told == ["the stroke layer has no transparency: its plain background #000000 counted as no stroke"]
