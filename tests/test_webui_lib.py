"""The A1111/Forge extension's host-free parts: resize geometry, stroke store, hints, a unit's model, the units."""
import base64
import enum
import io
import os

import numpy as np
import pytest
from PIL import Image

from preprocessors import (
    BLACK_ON_WHITE,
    WHITE_ON_BLACK,
    HintError,
    StrokeMisread,
    inference_hint,
    read_stroke_layer,
    resize_hint,
    to_model_polarity,
    user_strokes,
)
from scripts.colorstroke_lib import generation, geometry, hints, store, unit_model
from scripts.colorstroke_lib.geometry import CROP_AND_RESIZE, JUST_RESIZE, RESIZE_AND_FILL, fit_hint


class HostResizeMode(enum.Enum):
    """The hosts' ResizeMode enum (both define the same values)."""

    RESIZE = "Just Resize"
    INNER_FIT = "Crop and Resize"
    OUTER_FIT = "Resize and Fill"


def lines_hint(height, width, columns=(), rows=()):
    """A hint with one-pixel edge lines at the given columns/rows and a stroke square in the middle."""
    hint = geometry.empty_hint(height, width)
    for x in columns:
        hint[0, :, x] = 1.0
    for y in rows:
        hint[0, y, :] = 1.0
    cy, cx = height // 2, width // 2
    hint[1:4, cy - 2 : cy + 2, cx - 2 : cx + 2] = np.array([0.9, 0.2, 0.1], np.float32)[:, None, None]
    hint[4, cy - 2 : cy + 2, cx - 2 : cx + 2] = 1.0
    return hint


def edge_columns(hint):
    return np.flatnonzero(hint[0].max(axis=0) > 0.5)


def edge_rows(hint, column=None):
    edges = hint[0]
    if column is not None:
        return np.flatnonzero(edges[:, column] > 0.5)
    return np.flatnonzero(edges.max(axis=1) > 0.5)


@pytest.mark.parametrize(
    "mode, name",
    [
        (HostResizeMode.RESIZE, JUST_RESIZE), (HostResizeMode.INNER_FIT, CROP_AND_RESIZE),
        (HostResizeMode.OUTER_FIT, RESIZE_AND_FILL), ("Crop and Resize", CROP_AND_RESIZE),
        ("Inner Fit (Scale to Fit)", CROP_AND_RESIZE), ("Envelope (Outer Fit)", RESIZE_AND_FILL),
        (0, JUST_RESIZE), (1, CROP_AND_RESIZE), (2, RESIZE_AND_FILL), (3, JUST_RESIZE), (np.int64(2), RESIZE_AND_FILL),
    ],
)
def test_resize_mode_names(mode, name):
    assert geometry.resize_mode_name(mode) == name


@pytest.mark.parametrize("mode", ["Stretch", 4, -1, None, 1.5])
def test_unknown_resize_mode_is_refused(mode):
    with pytest.raises(HintError, match="resize mode"):
        geometry.resize_mode_name(mode)


@pytest.mark.parametrize("mode", geometry.RESIZE_MODES)
@pytest.mark.parametrize(
    "source, target",
    [((512, 512), (512, 512)), ((300, 200), (512, 768)), ((768, 512), (512, 512)), ((512, 384), (1024, 768)),
     ((640, 480), (1216, 832)), ((97, 61), (64, 64)), ((40, 300), (512, 512))],
)
def test_fit_hint_gives_the_target_size_within_the_contract(mode, source, target):
    hint = lines_hint(*source, columns=[source[1] // 3], rows=[source[0] // 4])
    fitted = fit_hint(hint, mode, *target)
    assert fitted.shape == (5,) + target and fitted.dtype == np.float32
    assert fitted.min() >= 0.0 and fitted.max() <= 1.0
    assert (fitted[1:4] <= fitted[4] + 1e-6).all(), "premultiplied colour never exceeds alpha"


def test_just_resize_is_the_contract_resize():
    hint = lines_hint(90, 160, columns=[10, 80], rows=[45])
    np.testing.assert_array_equal(fit_hint(hint, JUST_RESIZE, 64, 48), resize_hint(hint, (64, 48)))


def test_crop_and_resize_keeps_the_centre_at_the_hosts_offsets():
    # 100x200 into 64x64: scale max(0.64, 0.32) = 0.64 -> 64x128, crop columns 32..96
    # source column c lands in scaled column floor(c * 0.64): 50 -> 32, 100 -> 64, 149 -> 95
    hint = lines_hint(100, 200, columns=[50, 100, 149])
    fitted = fit_hint(hint, CROP_AND_RESIZE, 64, 64)
    assert list(edge_columns(fitted)) == [0, 32, 63]
    assert fitted[4, 31:33, 31:33].min() > 0.9, "the centre stroke stays in the centre"


def test_resize_and_fill_centres_on_no_edge_no_stroke():
    # 100x200 into 64x64: scale min(0.64, 0.32) = 0.32 -> 32x64, placed at rows 16..48
    hint = lines_hint(100, 200, columns=[100], rows=[0, 99])
    fitted = fit_hint(hint, RESIZE_AND_FILL, 64, 64)
    assert list(edge_rows(fitted)) == list(range(16, 48)), "the vertical line spans rows 16..47"
    assert list(edge_rows(fitted, column=10)) == [16, 47], "the first and last rows stay at the borders"
    assert list(edge_columns(fitted[:, 20:40])) == [32], "column 100 of 200 lands in column 32 of 64"
    margin = np.concatenate([fitted[:, :16], fitted[:, 48:]], axis=1)
    np.testing.assert_array_equal(margin, 0.0)
    black = to_model_polarity(fitted, BLACK_ON_WHITE)  # as the glue hands it to a black-on-white model
    np.testing.assert_array_equal(np.concatenate([black[0, :16], black[0, 48:]]), 1.0)  # the margin: no edge


@pytest.mark.parametrize("mode", geometry.RESIZE_MODES)
def test_one_pixel_lines_survive_every_mode_when_shrinking(mode):
    hint = lines_hint(1024, 1024, columns=[511], rows=[600])
    fitted = fit_hint(hint, mode, 256, 320)
    assert len(edge_columns(fitted)) >= 1 and len(edge_rows(fitted)) >= 1


def test_fit_hint_refuses_bad_input():
    with pytest.raises(HintError, match="5xHxW"):
        fit_hint(np.zeros((3, 8, 8), np.float32), JUST_RESIZE, 8, 8)
    with pytest.raises(HintError, match="0x8"):
        fit_hint(np.zeros((5, 8, 8), np.float32), JUST_RESIZE, 8, 0)


# ---------------------------------------------------------------- stroke store

def rgba_layer(height=32, width=48):
    layer = np.zeros((height, width, 4), np.uint8)
    layer[5:10, 5:20] = (255, 0, 0, 255)
    return layer


def flat_layer(height=32, width=48, background=(255, 255, 255)):
    """Strokes painted on a plain background and flattened (no alpha): one red, one pale-blue stroke,
    the red one running off the top border."""
    layer = np.empty((height, width, 3), np.uint8)
    layer[:] = background
    layer[0:10, 5:20] = (230, 20, 20)
    layer[20:25, 30:40] = (190, 210, 250)
    return layer


def png_base64(image: Image.Image, format="PNG", **options) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def test_decode_reads_every_form_of_an_rgba_layer():
    layer = rgba_layer()
    encoded = png_base64(Image.fromarray(layer, "RGBA"))
    for value in (layer, Image.fromarray(layer, "RGBA"), encoded, "data:image/png;base64," + encoded):
        decoded = store.decode_image(value)
        assert decoded.shape == (32, 48, 4) and decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, layer)


def test_decode_reads_a_palette_png_with_transparency():
    palette = Image.fromarray(rgba_layer(), "RGBA").convert("P")
    palette.info["transparency"] = 0
    assert store.decode_image(png_base64(palette)).shape == (32, 48, 4)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_decode_of_nothing_is_none(value):
    assert store.decode_image(value) is None
    assert store.read_layer(value) is None and store.describe(value) == ""


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros((8, 8), np.uint8), "HxWx4"),
        (np.zeros((8, 8, 2), np.uint8), "HxWx4"),
        ("not an image!", "base64"),
        (base64.b64encode(b"plain text").decode(), "base64"),
    ],
)
def test_decode_refuses_what_is_not_an_image(value, message):
    with pytest.raises(HintError, match=message):
        store.read_layer(value)


def test_a_transparent_layer_is_read_by_its_alpha():
    layer = store.read_layer(rgba_layer())
    assert layer.background is None and layer.painted == pytest.approx(75 / (32 * 48))
    assert layer.read_from == "alpha" and layer.warnings == ()
    np.testing.assert_array_equal(layer.layer, user_strokes(rgba_layer()))


@pytest.mark.parametrize(
    "form",
    ["gradio RGBA upload", "RGB array", "RGB PNG over the API", "JPEG over the API", "PIL RGB"],
)
def test_an_opaque_layer_on_a_plain_background_is_read_by_that_colour(form):
    flat = flat_layer()
    values = {
        "gradio RGBA upload": np.dstack([flat, np.full(flat.shape[:2], 255, np.uint8)]),  # gradio's RGB -> RGBA
        "RGB array": flat,
        "RGB PNG over the API": "data:image/png;base64," + png_base64(Image.fromarray(flat)),
        "JPEG over the API": png_base64(Image.fromarray(flat), format="JPEG", quality=75),
        "PIL RGB": Image.fromarray(flat),
    }
    layer = store.read_layer(values[form])
    expected = np.abs(flat.astype(int) - 255).max(axis=2) > 0  # where the strokes are
    alpha = layer.layer[..., 3]
    if form == "JPEG over the API":  # JPEG blurs the strokes' borders by a pixel or so
        assert layer.background[0] >= 250 and np.mean((alpha > 0.5) == expected) > 0.97
        assert alpha[2:8, 8:17].min() == 1.0 and alpha[22:23, 33:37].min() == 1.0, "the pale stroke stays a stroke"
        return
    assert layer.background == (255, 255, 255)
    np.testing.assert_array_equal(alpha, expected.astype(np.float32))
    np.testing.assert_allclose(layer.layer[7, 10, :3], np.array([230, 20, 20]) / 255.0, atol=1e-6)
    assert layer.layer[..., :3][~expected].max() == 0.0, "no colour where there is no stroke"
    assert layer.warnings == ("the stroke layer has no transparency: its plain background #ffffff counted as no "
                              "stroke",)
    assert "plain background (#ffffff) counts as no stroke" in store.describe(values[form])


def test_a_dark_plain_background_works_too():
    layer = store.read_layer(flat_layer(background=(1, 1, 1)))
    assert layer.background == (1, 1, 1) and layer.layer[15, 2, 3] == 0.0 and layer.layer[22, 35, 3] == 1.0


def test_an_opaque_layer_without_a_plain_background_is_refused():
    photo = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    split = flat_layer()
    split[:, 30:] = (0, 120, 0)  # two colours share the border, neither half of it: no background
    for value in (photo, split, np.dstack([photo, np.full((32, 48), 255, np.uint8)])):
        with pytest.raises(HintError, match="no transparent pixels and no plain background"):
            store.read_layer(value)
        assert store.describe(value).startswith("**This stroke layer cannot be used:**")


def test_describe_says_how_a_layer_is_read():
    assert store.describe(rgba_layer()) == (
        "Stroke layer: 5% of it painted, transparent elsewhere. It is 48x32: a drawing of another size gets it "
        "scaled, of another aspect stretched (the generation info then says so).")
    assert store.describe(np.zeros((8, 8, 4), np.uint8)) == "The stroke layer is fully transparent: no strokes."


def test_store_keeps_the_first_layer_with_strokes():
    strokes = store.StrokeStore()
    empty = np.zeros((8, 8, 4), np.uint8)
    layer = rgba_layer()
    assert strokes.set(None, True, 0, False, empty, layer, rgba_layer(4, 4)) is not None
    assert strokes.get().picture is layer
    assert strokes.set(empty, True, 0, None) is None and strokes.get() is None
    assert strokes.set(flat_layer()).background == (255, 255, 255) and strokes.get().layer.shape == (32, 48, 4)
    strokes.clear()
    assert strokes.get() is None


def test_store_keeps_nothing_after_a_bad_value():
    strokes = store.StrokeStore()
    strokes.set(rgba_layer())
    with pytest.raises(HintError):
        strokes.set(rgba_layer(), True, 0, None,
                    np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8))
    assert strokes.get() is None


def test_store_keeps_the_fill_options_and_fills_only_strokes():
    strokes = store.StrokeStore()
    assert (strokes.fill, strokes.fill_gap) == (True, 0), "fill is on by default, as in ComfyUI"
    strokes.set(rgba_layer())  # an API call that gives the layer only
    assert (strokes.fill, strokes.fill_gap, strokes.filled) == (True, 0, True)
    strokes.set(rgba_layer(), False, 12.0)  # gradio's slider may give a float
    assert (strokes.fill, strokes.fill_gap, strokes.filled) == (False, 12, False)
    strokes.set(None, True, 3)
    assert strokes.filled is False, "no strokes: nothing was filled"
    strokes.clear()
    assert (strokes.fill, strokes.fill_gap) == (True, 0)


ARGS_MESSAGE = (r"^the section's args are \[stroke layer, fill \(true/false\), fill gap \(0-64 pixels\)\], on Forge "
                r"then stroke guidance \(true/false\) and its canvas layer: ")


@pytest.mark.parametrize("fill, gap, message", [
    ("data:image/png;base64,AAAA", 0, "the fill must be true or false, got 'data:image/png"),
    (1, 0, "the fill must be true or false, got 1"),
    (True, -1, "fill gap must be a whole number of pixels from 0 to 64, got -1"),
    (True, 65, "got 65"), (True, 2.5, "got 2.5"), (True, "6", "got '6'"), (True, True, "got True"),
])
def test_bad_fill_options_are_refused_naming_the_args(fill, gap, message):
    strokes = store.StrokeStore()
    strokes.set(rgba_layer(), False, 3)
    with pytest.raises(HintError, match=ARGS_MESSAGE) as caught:
        strokes.set(rgba_layer(), fill, gap)
    assert message in str(caught.value)
    assert strokes.get() is None and (strokes.fill, strokes.fill_gap) == (True, 0), "nothing of the bad call is kept"


def test_store_keeps_stroke_guidance_and_guides_only_by_strokes():
    strokes = store.StrokeStore()
    assert strokes.stroke_guidance is False, "off by default, as in ComfyUI"
    strokes.set(rgba_layer(), True, 0)  # A1111: the section has no such input
    assert (strokes.stroke_guidance, strokes.guided) == (False, False)
    strokes.set(rgba_layer(), True, 0, True, None)  # Forge: then its canvas layer
    assert (strokes.stroke_guidance, strokes.guided) == (True, True)
    strokes.set(None, True, 0, True)
    assert strokes.guided is False, "no strokes: nothing to guide by"
    strokes.clear()
    assert strokes.stroke_guidance is False


@pytest.mark.parametrize("value", ["data:image/png;base64,AAAA", 1, "true"])
def test_bad_stroke_guidance_is_refused_naming_the_args(value):
    strokes = store.StrokeStore()
    strokes.set(rgba_layer(), True, 0, True)
    with pytest.raises(HintError, match=ARGS_MESSAGE + "stroke guidance must be true or false, got ") as caught:
        strokes.set(rgba_layer(), True, 0, value)  # e.g. an API call that gives Forge's canvas where it goes
    assert str(value)[:20] in str(caught.value)
    assert strokes.get() is None and strokes.stroke_guidance is False, "nothing of the bad call is kept"


def test_a_long_value_is_cut_short_in_the_message():
    with pytest.raises(HintError) as caught:
        store.StrokeStore().set(rgba_layer(), "data:image/png;base64," + "A" * 5000)  # an image where the fill goes
    message = str(caught.value)
    assert message.endswith("got 'data:image/png;base64,AAAAAAAAAAAAAAAAA...") and len(message) < 300


# ---------------------------------------------------------------- hints

def drawing_image(height=64, width=96):
    image = np.full((height, width, 3), 255, np.uint8)
    image[20:44, 30:70] = 0
    return image


def test_thresholds_default_and_order():
    assert hints.thresholds(None, None) == (100.0, 200.0)
    assert hints.thresholds(50, 120) == (50.0, 120.0)
    assert hints.thresholds(220, 80) == (80.0, 220.0)


def test_build_hint_is_the_contract_inference_hint():
    drawing = hints.Drawing(drawing_image(), 80, 160)
    expected = inference_hint(drawing.image, rgba_layer(64, 96), low=80, high=160)
    np.testing.assert_array_equal(hints.build_hint(drawing, read_stroke_layer(rgba_layer(64, 96))), expected)
    np.testing.assert_array_equal(hints.build_hint(drawing, None), inference_hint(drawing.image, low=80, high=160))


def test_build_hint_fills_as_the_contract_inference_hint_does():
    drawing = hints.Drawing(drawing_image(64, 96))
    strokes = read_stroke_layer(rgba_layer(64, 96))
    filled = hints.build_hint(drawing, strokes, True, 3)
    np.testing.assert_array_equal(filled, inference_hint(drawing.image, strokes, fill=True, fill_gap=3))
    assert (filled[4] > 0).sum() > (hints.build_hint(drawing, strokes)[4] > 0).sum(), "the fill adds flats"


def test_build_hint_refuses_the_drawing_and_strokes_on_its_lines():
    drawing = hints.Drawing(drawing_image())
    with pytest.raises(StrokeMisread, match="the line drawing itself") as caught:
        hints.build_hint(drawing, read_stroke_layer(drawing.image))
    assert caught.value.reason == "the_drawing"
    lines = np.zeros((64, 96, 4), np.uint8)
    lines[..., 3] = (inference_hint(drawing.image)[0] > 0.5) * 255  # alpha on the lines: the drawing's own alpha
    with pytest.raises(StrokeMisread, match="lie on the drawing's lines") as caught:
        hints.build_hint(drawing, read_stroke_layer(lines))
    assert caught.value.reason == "on_the_lines"


def test_canny_preview_is_white_on_black():
    hint = hints.build_hint(hints.Drawing(drawing_image()), read_stroke_layer(rgba_layer(64, 96)))
    preview = hints.canny_preview(hint)
    assert preview.shape == (64, 96, 3) and preview.dtype == np.uint8
    assert set(np.unique(preview)) == {0, 255} and (preview[..., 0] == 255).mean() < 0.5


def test_hint_batch_fits_a_units_hints_and_aligns_them_to_the_batch():
    strokes = read_stroke_layer(rgba_layer())
    first = hints.build_hint(hints.Drawing(drawing_image()), strokes)
    second = hints.build_hint(hints.Drawing(255 - drawing_image()), strokes)
    batch = hints.hint_batch([first, second], CROP_AND_RESIZE, 40, 56, batch_size=5)
    assert batch.shape == (5, 5, 40, 56)
    np.testing.assert_array_equal(batch[0], batch[2])
    np.testing.assert_array_equal(batch[1], batch[3])
    np.testing.assert_array_equal(batch[4], fit_hint(first, CROP_AND_RESIZE, 40, 56))
    np.testing.assert_array_equal(batch[1], fit_hint(second, CROP_AND_RESIZE, 40, 56))
    with pytest.raises(ValueError, match="no drawing"):
        hints.hint_batch([], JUST_RESIZE, 8, 8, 1)


# ---------------------------------------------------------------- edge polarity

def test_the_preprocessors_choose_nothing_or_white_on_black():
    assert hints.PREPROCESSORS == {"colorstroke_canny": None, "colorstroke_canny_white_on_black": WHITE_ON_BLACK}


@pytest.mark.parametrize(
    "recorded, chosen, expected, noted",
    [
        (WHITE_ON_BLACK, None, WHITE_ON_BLACK, False),
        (BLACK_ON_WHITE, None, BLACK_ON_WHITE, False),
        (WHITE_ON_BLACK, WHITE_ON_BLACK, WHITE_ON_BLACK, False),
        (BLACK_ON_WHITE, WHITE_ON_BLACK, BLACK_ON_WHITE, True),
        (None, WHITE_ON_BLACK, WHITE_ON_BLACK, False),
        (None, None, BLACK_ON_WHITE, True),
    ],
)
def test_the_recorded_polarity_wins_then_the_choice_then_black_on_white(recorded, chosen, expected, noted):
    polarity_, note = unit_model.choose_polarity(recorded, chosen)
    assert polarity_ == expected and bool(note) == noted


def test_unknown_polarities_are_refused():
    with pytest.raises(HintError):
        unit_model.choose_polarity("grey", None)
    with pytest.raises(HintError):
        unit_model.choose_polarity(None, "sideways")


def checkpoint_file(path, recorded=None, hint_channels=5, cross_attention_dim=768, fill=None, sdxl=False):
    """A header-only stand-in of a ControlNet file: the tensors inspect_checkpoint reads (``sdxl``: SDXL's added
    embedding and text width), and metadata (the recorded edge polarity, the training's fill)."""
    from safetensors.numpy import save_file

    from model.metadata import encode

    cross_attention_dim = 2048 if sdxl else cross_attention_dim
    tensors = {
        "controlnet_cond_embedding.conv_in.weight": np.zeros((16, hint_channels, 3, 3), np.float16),
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": np.zeros((640, cross_attention_dim),
                                                                                      np.float16),
    }
    if sdxl:
        tensors["add_embedding.linear_1.weight"] = np.zeros((1280, 2816), np.float16)
    save_file(tensors, str(path), metadata=encode({"edge_polarity": recorded, "fill": fill}) or None)
    return str(path)


@pytest.fixture
def fresh_cache():
    """No file facts cached and no console note printed yet."""
    from scripts import colorstroke_lib

    unit_model._inspect.cache_clear()
    colorstroke_lib._told.clear()
    yield
    unit_model._inspect.cache_clear()


@pytest.mark.parametrize("recorded", [WHITE_ON_BLACK, BLACK_ON_WHITE])
def test_a_recorded_polarity_overrides_the_choice(tmp_path, recorded, fresh_cache, capsys):
    path = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors", recorded)
    assert unit_model.edge_polarity(path, None) == recorded
    other = BLACK_ON_WHITE if recorded == WHITE_ON_BLACK else WHITE_ON_BLACK
    assert unit_model.edge_polarity(path, other) == recorded
    assert f"control_colorstroke_sd15.safetensors records {recorded}" in capsys.readouterr().out


def test_without_a_recorded_polarity_the_choice_decides_else_black_on_white(tmp_path, fresh_cache, capsys):
    path = checkpoint_file(tmp_path / "original_colorstroke.safetensors")
    assert unit_model.edge_polarity(path, WHITE_ON_BLACK) == WHITE_ON_BLACK
    assert capsys.readouterr().out == "", "the person's choice needs no note"
    assert unit_model.edge_polarity(path, None) == BLACK_ON_WHITE
    assert unit_model.edge_polarity(path, None) == BLACK_ON_WHITE
    assert capsys.readouterr().out == (
        "[Color Stroke] no edge polarity recorded in original_colorstroke.safetensors; assuming black_on_white (the "
        "original colour-stroke model); pick the preprocessor colorstroke_canny_white_on_black if your model was "
        "trained with white-on-black edges\n"), "once per file"
    assert unit_model.edge_polarity(None, None) == BLACK_ON_WHITE, "no model in sight: the same rule, silently"
    assert capsys.readouterr().out == ""
    assert unit_model.edge_polarity(str(tmp_path / "missing.safetensors"), WHITE_ON_BLACK) == WHITE_ON_BLACK


def test_the_file_is_read_once_per_version(tmp_path, fresh_cache):
    path = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors", BLACK_ON_WHITE)
    unit_model.edge_polarity(path, None)
    unit_model.edge_polarity(path, None)
    assert unit_model._inspect.cache_info().misses == 1
    os.utime(path, (1, 1))
    unit_model.edge_polarity(path, None)
    assert unit_model._inspect.cache_info().misses == 2


@pytest.mark.parametrize(
    "channels, cross, message",
    [(3, 768, "3-channel"), (5, 2048, "SDXL|cross-attention"), (4, 768, "4-channel")],
)
def test_a_model_that_is_not_a_color_stroke_controlnet_is_refused(tmp_path, fresh_cache, channels, cross, message):
    from model import CheckpointError

    path = checkpoint_file(tmp_path / "control_v11p_sd15_canny.safetensors", hint_channels=channels,
                           cross_attention_dim=cross)
    with pytest.raises(CheckpointError, match=message):
        unit_model.edge_polarity(path, None)


def control_lora_file(path, recorded=None, sdxl=False, rank=8):
    """A header-only stand-in of a control-LoRA (``model.control_lora``): the marker, the 5-channel hint block and a
    cross-attention layer's low-rank pair under ldm names without ``control_model.``."""
    from safetensors.numpy import save_file

    from model.metadata import encode

    cross = 2048 if sdxl else 768
    tensors = {"lora_controlnet": np.zeros((0,), np.float16),
               "input_hint_block.0.weight": np.zeros((16, 5, 3, 3), np.float16),
               "input_blocks.4.1.transformer_blocks.0.attn2.to_k.up": np.zeros((640, rank), np.float16),
               "input_blocks.4.1.transformer_blocks.0.attn2.to_k.down": np.zeros((rank, cross), np.float16)}
    if sdxl:
        tensors["label_emb.0.0.down"] = np.zeros((rank, 2816), np.float16)
    save_file(tensors, str(path), metadata=encode({"edge_polarity": recorded}) or None)
    return str(path)


def test_a_control_lora_is_checked_as_a_color_stroke_controlnet(tmp_path, fresh_cache):
    from model import CheckpointError

    path = control_lora_file(tmp_path / "colorstroke_control_lora_rank8.safetensors", WHITE_ON_BLACK)
    assert unit_model.edge_polarity(path, BLACK_ON_WHITE) == WHITE_ON_BLACK  # its recorded polarity wins
    info = unit_model.check_model(path, ("sd15", "v1-5.safetensors"))
    assert (info.layout, info.lora_rank, info.family) == ("control_lora", 8, "sd15")
    with pytest.raises(CheckpointError, match="is an SD 1.5 ControlNet.*'sdxl_base.safetensors'.*SDXL"):
        unit_model.check_model(path, ("sdxl", "sdxl_base.safetensors"))
    sdxl = control_lora_file(tmp_path / "colorstroke_xl_control_lora.safetensors", WHITE_ON_BLACK, sdxl=True)
    assert unit_model.check_model(sdxl, ("sdxl", "sdxl_base.safetensors")).family == "sdxl"


def test_an_unreadable_checkpoint_counts_as_recording_none(tmp_path, fresh_cache, capsys):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    assert unit_model.edge_polarity(str(path), WHITE_ON_BLACK) == WHITE_ON_BLACK
    assert "cannot read the metadata" in capsys.readouterr().out
    assert unit_model.edge_polarity(str(path), None) == BLACK_ON_WHITE


def test_import_own_refuses_a_foreign_package():
    from scripts import colorstroke_lib

    assert colorstroke_lib.import_own("preprocessors").__name__ == "preprocessors"
    with pytest.raises(ImportError, match="not from this extension"):
        colorstroke_lib.import_own("json")


# ---------------------------------------------------------------- the generation's units

def unit(module="colorstroke_canny", model="control_colorstroke_sd15 [deadbeef]", index=0):
    return generation.UnitRequest(index, module, model)


@pytest.mark.parametrize("model", [None, "", "None"])
def test_a_color_stroke_unit_without_a_model_is_refused(model):
    with pytest.raises(HintError, match=r"^ControlNet Unit 0 \(colorstroke_canny\) has no model: pick a Color Stroke"):
        generation.check_unit(unit(model=model), None, ["None"])


def test_a_model_name_the_host_does_not_know_is_refused_with_the_name_meant():
    known = ["None", "control_colorstroke_sd15 [deadbeef]", "control_v11p_sd15_canny [12345678]"]
    with pytest.raises(HintError,
                       match=r"did you mean 'control_colorstroke_sd15 \[deadbeef\]'\? Give the model's full"):
        generation.check_unit(unit(model="control_colorstroke_sd15", index=2), None, known)
    with pytest.raises(HintError, match=r"^ControlNet Unit 0 .*no ControlNet model is named 'mine'; put the file"):
        generation.check_unit(unit(model="mine"), None, known)


def test_a_standard_controlnet_for_our_preprocessor_is_refused_in_webui_words(tmp_path, fresh_cache):
    path = checkpoint_file(tmp_path / "control_v11p_sd15_canny.safetensors", hint_channels=3)
    with pytest.raises(HintError, match=r"^ControlNet Unit 0 \(colorstroke_canny\): control_v11p_sd15_canny"
                                        r".*3-channel.*pick that model's own preprocessor \(such as canny\)"):
        generation.check_unit(unit(model="control_v11p_sd15_canny [12345678]"), path, [])


def test_a_color_stroke_model_needs_our_preprocessor(tmp_path, fresh_cache):
    ours = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors")
    generation.check_unit(unit(), ours, [])  # the right pair passes
    with pytest.raises(HintError,
                       match=r"^ControlNet Unit 1 \(canny\): .* is a Color Stroke ControlNet.*colorstroke_canny"):
        generation.check_unit(unit(module="canny", index=1), ours, [])
    other = checkpoint_file(tmp_path / "control_v11p_sd15_canny.safetensors", hint_channels=3)
    generation.check_unit(unit(module="canny", model="control_v11p_sd15_canny"), other, [])  # not ours: no opinion
    generation.check_unit(unit(module="depth", model="None"), None, [])


SD15_BASE, SDXL_BASE = ("sd15", "dreamshaper_8.safetensors"), ("sdxl", "ponyDiffusionV6XL.safetensors")


def test_a_model_of_another_family_than_the_checkpoint_stops_naming_both(tmp_path, fresh_cache):
    sd15 = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors")
    sdxl = checkpoint_file(tmp_path / "control_colorstroke_sdxl.safetensors", sdxl=True)
    generation.check_unit(unit(), sd15, [], SD15_BASE)
    generation.check_unit(unit(model="control_colorstroke_sdxl [0123abcd]"), sdxl, [], SDXL_BASE)
    generation.check_unit(unit(model="control_colorstroke_sdxl [0123abcd]"), sdxl, [], None)  # a preview: its own
    with pytest.raises(HintError, match=r"^ControlNet Unit 0 \(colorstroke_canny\): control_colorstroke_sd15"
                                        r".safetensors is an SD 1.5 ControlNet, but the checkpoint "
                                        r"'ponyDiffusionV6XL.safetensors' is SDXL: use an SDXL Color Stroke ControlNet "
                                        r"with it, or this ControlNet with an SD 1.5 checkpoint"):
        generation.check_unit(unit(), sd15, [], SDXL_BASE)
    with pytest.raises(HintError, match=r"control_colorstroke_sdxl.safetensors is an SDXL ControlNet, but the "
                                        r"checkpoint 'dreamshaper_8.safetensors' is SD 1.5: use an SD 1.5 Color Stroke "
                                        r"ControlNet with it, or this ControlNet with an SDXL checkpoint \(SDXL, "
                                        r"Illustrious, NoobAI, Pony\)"):
        generation.check_unit(unit(model="control_colorstroke_sdxl [0123abcd]"), sdxl, [], SD15_BASE)
    with pytest.raises(HintError, match=r"is SD 2.x, for which there is no Color Stroke ControlNet: use this "
                                        r"ControlNet with an SD 1.5 checkpoint"):
        generation.check_unit(unit(), sd15, [], ("sd2", "v2-1_768-ema-pruned.safetensors"))


def test_the_sampled_checkpoints_family_and_name():
    info = type("Info", (), {"name": "ponyDiffusionV6XL.safetensors"})()
    assert unit_model.sampled_base(type("Model", (), {"is_sdxl": True, "sd_checkpoint_info": info})()) == SDXL_BASE
    assert unit_model.sampled_base(type("Model", (), {"is_sdxl": False, "is_sd2": True})()) == (
        "sd2", "the loaded checkpoint")
    assert unit_model.sampled_base(type("Model", (), {"is_sdxl": False, "is_sd2": False})())[0] == "sd15"
    assert unit_model.sampled_base(None) is None


def test_the_generation_counts_each_delivered_hint_once():
    record = generation.Generation()
    record.start([unit(), unit(module="canny", index=1), unit(index=2)])
    assert [u.index for u in record.expected] == [0, 2]
    first = object()
    record.deliver(first)
    record.deliver(first)  # the same unit's hint again (hires fix)
    assert "1 of 2 reached it" in record.shortfall()
    record.deliver(object())
    assert record.shortfall() is None
    record.note("a")
    record.note("a")
    record.note(None)
    assert record.notes == ["a"]
    record.start(())
    assert record.notes == [] and record.shortfall() is None


def test_the_units_are_read_field_by_field_with_the_hosts_defaults():
    class Unit:  # a UI unit (or a stale one from before a reload): anything with the fields
        def __init__(self, enabled, module, model):
            self.enabled, self.module, self.model = enabled, module, model

    class Image:  # what building the host's unit would decode: never touched
        def __getattr__(self, name):
            raise AssertionError("the unit's image was read")

    defaults = {"enabled": True, "module": "none", "model": "None"}
    args = [{"module": "colorstroke_canny", "model": "m", "image": Image()}, "not a unit",
            Unit(False, "canny", "c"), {"enabled": False, "module": "depth"}, Unit(True, "canny", "c"), {}]
    assert generation.requested_units(args, defaults) == [
        generation.UnitRequest(0, "colorstroke_canny", "m"), generation.UnitRequest(3, "canny", "c"),
        generation.UnitRequest(4, "none", "None")]
    assert generation.requested_units([{"module": "colorstroke_canny"}], {**defaults, "enabled": False}) == []


def test_a_units_polarity_is_resolved_once_per_generation(tmp_path, fresh_cache, monkeypatch):
    path = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors", BLACK_ON_WHITE)
    calls = []
    resolve = unit_model.edge_polarity
    monkeypatch.setattr(unit_model, "edge_polarity", lambda *args: calls.append(args) or resolve(*args))
    record = generation.Generation()
    for _ in range(3):  # a unit's preview, generation pass and hires pass
        assert record.model_polarity(path, WHITE_ON_BLACK) == BLACK_ON_WHITE
    assert record.model_polarity(None, WHITE_ON_BLACK) == WHITE_ON_BLACK
    assert calls == [(path, WHITE_ON_BLACK), (None, WHITE_ON_BLACK)]
    record.start(())
    record.model_polarity(path, WHITE_ON_BLACK)
    assert len(calls) == 3, "a new generation looks at the file again"


def test_a_layer_a_units_hint_refuses_stops_the_generation_with_the_reason():
    record = generation.GENERATION
    record.start([unit()])
    drawing = hints.Drawing(drawing_image())
    strokes = store.StrokeStore()
    strokes.set(drawing.image)
    with pytest.raises(StrokeMisread):
        generation.unit_hint(drawing, strokes)
    assert record.shortfall().startswith("the stroke layer is the line drawing itself")
    record.start([unit()])
    strokes.set(None)
    assert generation.unit_hint(drawing, strokes).shape == (5, 64, 96)
    assert "0 of 1 reached it" in record.shortfall()
    record.start(())


def test_a_units_hint_uses_the_stores_fill_and_notes_a_stretched_layer():
    record = generation.GENERATION
    record.start([unit()])
    drawing = hints.Drawing(drawing_image(64, 96))
    strokes = store.StrokeStore()
    strokes.set(rgba_layer(32, 32), True, 4)
    expected = hints.build_hint(drawing, strokes.get(), True, 4)
    np.testing.assert_array_equal(generation.unit_hint(drawing, strokes), expected)
    assert any("stretched" in note for note in record.notes)
    record.start(())


@pytest.mark.parametrize("trained, filled, expected", [
    ({"probability": 0.5, "gap": 6}, True, None), (None, False, None),
    (None, True, "was trained without filled strokes"), ({"probability": 0.5}, False, "turn fill on"),
])
def test_a_model_trained_with_other_fill_is_noted_beside_the_image(tmp_path, fresh_cache, trained, filled,
                                                                    expected):
    path = checkpoint_file(tmp_path / "control_colorstroke_sd15.safetensors", fill=trained)
    record = generation.Generation()
    record.note_fill(path, filled)
    record.note_fill(None, filled)  # a preview: no model in sight
    if expected is None:
        assert record.notes == []
    else:
        assert len(record.notes) == 1 and expected in record.notes[0]
        assert record.notes[0].startswith("control_colorstroke_sd15.safetensors")
