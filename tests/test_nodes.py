"""The ComfyUI nodes' host-free parts: batches -> hints, hint checks for a model, the overlay.

The repo is imported as a package (as ComfyUI does), so that the nodes' relative imports work.
"""
import pathlib
import sys
import types

import numpy as np
import pytest
import torch

from tests.helpers import comfy_module as sub

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pp():
    return sub("preprocessors")


@pytest.fixture(scope="module")
def hb():
    return sub("nodes.hint_tensors")


def example(name):
    return sub("preprocessors").load_image(ROOT / "example_workflows" / name)


def as_image(array):
    """uint8 HxWxC -> ComfyUI IMAGE 1xHxWxC float."""
    return torch.from_numpy(array.astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def drawing():
    return example("lineart.png")


@pytest.fixture(scope="module")
def layer():
    return example("strokes.png")  # RGBA, alpha marks the strokes


def loadimage(rgba):
    """What ComfyUI's LoadImage gives for an RGBA PNG: IMAGE (RGB) and MASK = 1 - alpha."""
    image = as_image(rgba)
    return image[..., :3], 1.0 - image[..., 3]


# --- the node classes ---------------------------------------------------------------------------

def test_mappings_name_five_nodes_in_our_categories_with_tooltips():
    nodes = sub("nodes")
    assert set(nodes.NODE_CLASS_MAPPINGS) == set(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    assert len(nodes.NODE_CLASS_MAPPINGS) == 5
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        image_node = name == "ColorStrokeLineartOverlay"
        assert cls.CATEGORY == ("image/color stroke" if image_node else "conditioning/color stroke")
        assert callable(getattr(cls, cls.FUNCTION))
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        if name in ("LoadColorStrokeControlNet", "ColorStrokePainter"):
            continue  # their INPUT_TYPES list ComfyUI's folders: tested in test_comfy_host.py
        for group in cls.INPUT_TYPES().values():
            for input_name, spec in group.items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_a_5_channel_hint_never_comes_out_as_an_image():
    nodes = sub("nodes")
    assert nodes.NODE_CLASS_MAPPINGS["ColorStrokeCanny"].RETURN_TYPES == ("STROKE_HINT", "IMAGE")
    assert nodes.NODE_CLASS_MAPPINGS["ApplyColorStrokeControlNet"].INPUT_TYPES()["required"]["hint"][0] == "STROKE_HINT"


def test_preprocessor_node_equals_the_contract_function(drawing, layer, pp):
    node = sub("nodes").NODE_CLASS_MAPPINGS["ColorStrokeCanny"]()
    rgb, mask = loadimage(layer)
    hint, preview = node.build(as_image(drawing), "canny", 100, 200, "no_stroke", "#FFFFFF", strokes=rgb,
                               strokes_mask=mask)
    expected = pp.inference_hint(drawing, layer, fill=True)  # the node fills by default
    assert hint.dtype == torch.float32 and hint.shape == (1, 5, 512, 512)
    np.testing.assert_allclose(hint[0].numpy(), expected, atol=1.5 / 255)
    assert preview.shape == (1, 512, 512, 3) and preview.dtype == torch.float32
    np.testing.assert_allclose(preview[0].numpy(), pp.hint_preview(expected) / 255.0, atol=1.5 / 255)


# --- reading strokes the ComfyUI ways -----------------------------------------------------------

def test_mask_marks_reads_loadimage_mask_and_painted_mask_alike(drawing, layer, hb):
    rgb, loadimage_mask = loadimage(layer)
    from_alpha, _ = hb.build_hints(as_image(drawing), rgb, loadimage_mask, mask_marks="no_stroke")
    from_painted, _ = hb.build_hints(as_image(drawing), rgb, 1.0 - loadimage_mask, mask_marks="stroke")
    rgba, _ = hb.build_hints(as_image(drawing), as_image(layer))  # 4-channel IMAGE: its alpha
    torch.testing.assert_close(from_alpha, from_painted)
    torch.testing.assert_close(from_alpha, rgba, atol=1e-6, rtol=0)
    assert from_alpha[0, 4].sum() == pytest.approx(layer[..., 3].astype(np.float64).sum() / 255, rel=1e-4)


def test_rgb_strokes_without_mask_are_read_against_the_background_colour(drawing, hb):
    canvas = np.full((512, 512, 3), 255, np.uint8)
    canvas[100:140, 200:300] = (200, 30, 10)
    hint, _ = hb.build_hints(as_image(drawing), as_image(canvas), background=0xFFFFFF)
    alpha = hint[0, 4].numpy()
    assert alpha[100:140, 200:300].min() == 1 and alpha.sum() == 40 * 100
    np.testing.assert_allclose(hint[0, 1:4, 120, 250].numpy(), np.array([200, 30, 10]) / 255, atol=1e-6)
    black, _ = hb.build_hints(as_image(drawing), as_image(255 - canvas), background=0x000000)
    assert black[0, 4].sum() == 40 * 100


def test_loadimage_placeholder_mask_of_an_opaque_png_is_ignored(drawing, hb):
    canvas = np.full((512, 512, 3), 255, np.uint8)
    canvas[10:20, 10:20] = (0, 0, 255)
    placeholder = torch.zeros(1, 64, 64)  # LoadImage's MASK for an image without alpha
    hint, _ = hb.build_hints(as_image(drawing), as_image(canvas), placeholder, mask_marks="no_stroke")
    assert hint[0, 4].sum() == 100


def test_no_strokes_gives_edges_only(drawing, pp, hb):
    hint, preview = hb.build_hints(as_image(drawing))
    assert hint[0, 1:].abs().sum() == 0
    np.testing.assert_array_equal(hint[0, 0].numpy(), pp.canny(drawing, 100, 200))
    lineart, _ = hb.build_hints(as_image(drawing), edge_source="lineart")
    np.testing.assert_allclose(lineart[0, 0].numpy(), pp.lineart_edges(drawing), atol=1e-6)


def test_a_transparent_drawing_joined_with_its_alpha_counts_as_on_white_paper(drawing, hb):
    """LoadImage drops alpha from IMAGE; Join Image with Alpha (IMAGE + LoadImage's MASK) gives RGBA back."""
    lines = 1.0 - as_image(drawing)[..., :1]  # ink amount
    rgba = torch.cat([torch.zeros(1, 512, 512, 3), lines], dim=-1)  # black ink on transparent black
    for source in ("canny", "lineart"):
        expected, _ = hb.build_hints(as_image(drawing), edge_source=source)
        got, _ = hb.build_hints(rgba, edge_source=source)
        assert (got != expected).float().mean() < 0.002, source


def test_a_mask_without_strokes_is_an_error(drawing, hb, pp):
    with pytest.raises(pp.HintError, match="strokes_mask is connected but strokes is not"):
        hb.build_hints(as_image(drawing), None, torch.zeros(1, 512, 512))


def test_bad_thresholds_and_modes_say_what_to_do(drawing, layer, hb, pp):
    rgb, mask = loadimage(layer)
    with pytest.raises(pp.HintError, match="low <= high"):
        hb.build_hints(as_image(drawing), low=200, high=100)
    with pytest.raises(pp.HintError, match="mask_marks"):
        hb.build_hints(as_image(drawing), rgb, mask, mask_marks="alpha")
    for wrong in (-1, 0x1000000, "white", "#FFF"):
        with pytest.raises(pp.HintError, match="#RRGGBB"):
            hb.build_hints(as_image(drawing), rgb, background=wrong)


# --- batches and sizes --------------------------------------------------------------------------

def test_n_drawings_share_one_stroke_layer(drawing, layer, hb):
    rgb, mask = loadimage(layer)
    drawings = torch.cat([as_image(drawing), as_image(255 - drawing)])
    hints, previews = hb.build_hints(drawings, rgb, mask)
    assert hints.shape == (2, 5, 512, 512) and previews.shape == (2, 512, 512, 3)
    torch.testing.assert_close(hints[0, 1:], hints[1, 1:])
    single, _ = hb.build_hints(as_image(255 - drawing), rgb, mask)
    torch.testing.assert_close(hints[1], single[0])


def test_matching_batches_pair_up_and_mismatched_ones_are_refused(drawing, layer, hb, pp):
    rgb, mask = loadimage(layer)
    strokes = torch.cat([rgb, rgb.flip(1)])
    masks = torch.cat([mask, mask.flip(1)])
    hints, _ = hb.build_hints(as_image(drawing).expand(2, -1, -1, -1), strokes, masks)
    torch.testing.assert_close(hints[1, 1:], hints[0, 1:].flip(1))
    with pytest.raises(pp.HintError, match="batch sizes do not pair up"):
        hb.build_hints(torch.cat([as_image(drawing)] * 3), strokes, masks)


def test_strokes_of_another_size_are_stretched_with_a_warning(drawing, layer, hb, pp, caplog):
    small = layer[::2, ::2]
    rgb, mask = loadimage(small)
    with caplog.at_level("WARNING", logger="color_stroke"):
        hint, _ = hb.build_hints(as_image(drawing), rgb, mask)
    assert "the strokes were scaled to the drawing" in caplog.text
    expected = pp.inference_hint(drawing, small)
    np.testing.assert_allclose(hint[0].numpy(), expected, atol=1.5 / 255)


def test_a_mask_of_another_size_is_stretched_to_the_strokes_with_a_warning(drawing, layer, hb, caplog):
    rgb, mask = loadimage(layer)
    with caplog.at_level("WARNING", logger="color_stroke"):
        hint, _ = hb.build_hints(as_image(drawing), rgb, mask[:, ::2, ::2])
    assert "stretching the mask" in caplog.text
    assert hint.shape == (1, 5, 512, 512) and 0.5 < hint[0, 4].mean() / (layer[..., 3].mean() / 255) < 1.5


def test_a_2d_mask_is_one_mask(drawing, layer, hb):
    rgb, mask = loadimage(layer)
    torch.testing.assert_close(hb.build_hints(as_image(drawing), rgb, mask[0])[0],
                               hb.build_hints(as_image(drawing), rgb, mask)[0])


def test_non_batch_inputs_are_refused_clearly(drawing, hb, pp):
    with pytest.raises(pp.HintError, match="BxHxWxC"):
        hb.build_hints(as_image(drawing)[0])


# --- the hint for a loaded model ----------------------------------------------------------------

def fake_control_net(channels=5, polarity=None):
    """An object shaped like comfy.controlnet.ControlNet as far as the apply node looks."""
    block = [torch.nn.Conv2d(channels, 16, 3)]
    net = types.SimpleNamespace(control_model=types.SimpleNamespace(input_hint_block=block))
    if polarity is not None:
        net.color_stroke_edge_polarity = polarity
    return net


def test_hint_goes_to_the_model_as_an_image_in_its_polarity(hb, drawing, pp):
    mh = sub("nodes.hint_tensors")
    hint, _ = hb.build_hints(as_image(drawing))
    same = mh.hint_for_model(hint, fake_control_net(polarity="white_on_black"))
    assert same.shape == (1, 512, 512, 5)
    torch.testing.assert_close(same.movedim(-1, 1), hint)
    flipped = mh.hint_for_model(hint, fake_control_net(polarity="black_on_white"))
    torch.testing.assert_close(flipped[..., 0], 1.0 - hint[:, 0])
    torch.testing.assert_close(flipped[..., 1:], hint[:, 1:].movedim(1, -1))
    assert hint[0, 0].max() == 1  # the input is not changed


def test_a_control_net_without_recorded_polarity_is_taken_as_black_on_white_with_a_warning(caplog):
    mh = sub("nodes.hint_tensors")
    hint = torch.rand(1, 5, 16, 16)
    with caplog.at_level("WARNING", logger="color_stroke"):
        out = mh.hint_for_model(hint, fake_control_net())
    assert "not loaded by Load Color Stroke ControlNet" in caplog.text and "assuming black_on_white" in caplog.text
    torch.testing.assert_close(out[..., 0], 1.0 - hint[:, 0])
    torch.testing.assert_close(out[..., 1:], hint[:, 1:].movedim(1, -1))


def header_only_controlnet(path, metadata=None):
    """A file with the two tensors ``inspect_checkpoint`` reads of a 5-channel SD 1.5 ControlNet."""
    from safetensors.torch import save_file

    save_file({"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 5, 3, 3),
               "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": torch.zeros(640, 768)},
              str(path), metadata=metadata)
    return str(path)


def test_the_loader_says_once_per_file_which_polarity_a_file_without_one_gets(tmp_path, caplog):
    ck = sub("nodes.comfy_host")
    ck._told.clear()
    plain = header_only_controlnet(tmp_path / "original_colorstroke.safetensors")
    recorded = header_only_controlnet(tmp_path / "ours.safetensors", {"colorstroke.edge_polarity": "white_on_black"})
    with caplog.at_level("INFO", logger="color_stroke"):
        for _ in range(2):
            ck.tell_once(ck.polarity_note(ck.check_file(plain, "black_on_white"), "original_colorstroke.safetensors"))
        ck.tell_once(ck.polarity_note(ck.check_file(plain, "white_on_black"), "original_colorstroke.safetensors"))
        assert ck.polarity_note(ck.check_file(recorded, "black_on_white"), "ours.safetensors") is None
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].getMessage() == (
        "color stroke: no edge polarity recorded in 'original_colorstroke.safetensors'; assuming black_on_white (the "
        "original colour-stroke model); set polarity_if_unknown to white_on_black if your model was trained with "
        "white-on-black edges")
    assert "using white_on_black as polarity_if_unknown says" in caplog.text
    assert ck.check_file(recorded, "black_on_white").edge_polarity == "white_on_black", "the file's polarity wins"


def test_a_3_channel_control_net_is_refused_before_sampling(pp):
    mh = sub("nodes.hint_tensors")
    with pytest.raises(pp.HintError, match="takes a 3-channel hint.*stock Apply ControlNet"):
        mh.hint_for_model(torch.rand(1, 5, 16, 16), fake_control_net(3))
    with pytest.raises(pp.HintError, match="not a ControlNet with an image hint"):
        mh.hint_for_model(torch.rand(1, 5, 16, 16), types.SimpleNamespace(t2i_model=None))
    with pytest.raises(pp.HintError, match="Bx5xHxW"):
        mh.hint_for_model(torch.rand(1, 3, 16, 16), fake_control_net())


def test_apply_at_strength_0_returns_the_inputs_and_needs_no_comfyui():
    node = sub("nodes").NODE_CLASS_MAPPINGS["ApplyColorStrokeControlNet"]()
    positive, negative = [[torch.zeros(1, 77, 768), {}]], [[torch.zeros(1, 77, 768), {}]]
    out = node.apply(positive, negative, fake_control_net(3), torch.rand(1, 5, 8, 8), 0.0, 0.0, 1.0)
    assert out[0] is positive and out[1] is negative


def test_apply_outside_comfyui_says_so(monkeypatch):
    monkeypatch.delitem(sys.modules, "nodes", raising=False)
    node = sub("nodes").NODE_CLASS_MAPPINGS["ApplyColorStrokeControlNet"]()
    with pytest.raises(RuntimeError, match="inside ComfyUI"):
        node.apply([], [], fake_control_net(), torch.rand(1, 5, 8, 8), 1.0, 0.0, 1.0)


# --- overlay ------------------------------------------------------------------------------------

def test_overlay_multiplies_lines_with_opacity(drawing):
    ov = sub("nodes.hint_tensors")
    image = torch.rand(2, 512, 512, 3)
    lines = ov.line_layer(as_image(drawing))
    out = ov.multiply_lines(image, lines, 1.0)
    torch.testing.assert_close(out, image * lines)
    torch.testing.assert_close(ov.multiply_lines(image, lines, 0.0), image)
    half = ov.multiply_lines(image, lines, 0.5)
    torch.testing.assert_close(half, image * (0.5 + 0.5 * lines))


def test_overlay_line_layer_handles_alpha_grey_and_inversion():
    ov = sub("nodes.hint_tensors")
    rgba = torch.zeros(1, 4, 4, 4)  # fully transparent -> white
    torch.testing.assert_close(ov.line_layer(rgba), torch.ones(1, 4, 4, 3))
    grey = torch.full((1, 4, 4, 1), 0.25)
    torch.testing.assert_close(ov.line_layer(grey, invert=True), torch.full((1, 4, 4, 3), 0.75))


def test_overlay_refuses_mismatches(pp):
    ov = sub("nodes.hint_tensors")
    with pytest.raises(pp.HintError, match="opacity"):
        ov.multiply_lines(torch.rand(1, 4, 4, 3), torch.rand(1, 4, 4, 3), 1.5)
    with pytest.raises(pp.HintError, match="1 drawing or one per image"):
        ov.multiply_lines(torch.rand(3, 4, 4, 3), torch.rand(2, 4, 4, 3), 1.0)
    with pytest.raises(pp.HintError, match="line layer is"):
        ov.multiply_lines(torch.rand(1, 4, 4, 3), torch.rand(1, 8, 4, 3), 1.0)


# --- what a person gets wrong is named, not misread ----------------------------------------------------

def test_background_colour_reads_hex_and_the_old_number_box(hb):
    assert hb.parse_colour("#FF8000") == hb.parse_colour("ff8000") == (1.0, 128 / 255, 0.0)
    assert hb.parse_colour(0xFFFFFF) == hb.parse_colour("16777215") == (1.0, 1.0, 1.0)


def test_a_transparent_layer_without_its_mask_is_refused_with_the_wire_to_connect(drawing, layer, hb, pp):
    rgb, mask = loadimage(layer)  # transparent pixels are black in the IMAGE: all of it differs from white
    with pytest.raises(pp.HintError, match="connect that Load Image's MASK to strokes_mask"):
        hb.build_hints(as_image(drawing), rgb)
    with pytest.raises(pp.HintError, match="set mask_marks to stroke "):
        hb.build_hints(as_image(drawing), rgb, 1.0 - mask, mask_marks="no_stroke")
    with pytest.raises(pp.HintError, match="set mask_marks to no_stroke"):
        hb.build_hints(as_image(drawing), rgb, mask, mask_marks="stroke")
    opaque = torch.cat([rgb, torch.ones_like(rgb[..., :1])], dim=-1)  # one alpha everywhere: read as RGB is
    with pytest.raises(pp.HintError, match="differs from background '#FFFFFF'.*connect that Load Image's MASK"):
        hb.build_hints(as_image(drawing), opaque)
    mostly = as_image(layer).clone()
    mostly[..., 3] = 1.0
    mostly[0, :8, :8, 3] = 0.0  # an alpha that tells strokes apart, opaque nearly everywhere
    with pytest.raises(pp.HintError, match="opaque over 100% of the picture.*transparent wherever nothing is painted"):
        hb.build_hints(as_image(drawing), mostly)
    hint, _ = hb.build_hints(as_image(drawing), rgb, mask)  # wired right: read
    assert 0 < float(hint[0, 4].mean()) < 0.5


def test_the_drawing_wired_as_strokes_is_refused_and_the_painter_named(drawing, hb, pp):
    image = as_image(drawing)
    with pytest.raises(pp.HintError, match="line drawing itself.*Color Stroke Painter"):
        hb.build_hints(image, image.clone())


def test_resolution_scales_the_drawing_and_its_strokes(drawing, layer, hb, pp):
    rgb, mask = loadimage(layer)
    full, _ = hb.build_hints(as_image(drawing), rgb, mask)
    half, preview = hb.build_hints(as_image(drawing), rgb, mask, resolution=256)
    assert half.shape == (1, 5, 256, 256) and preview.shape == (1, 256, 256, 3)
    expected = pp.inference_hint(pp.resize_drawing(drawing[..., :3], 256), layer)
    np.testing.assert_allclose(half[0].numpy(), expected, atol=1.5 / 255)
    assert full.shape == (1, 5, 512, 512)
    assert pp.short_side_size((300, 600), 512) == (512, 1024)
    with pytest.raises(pp.HintError, match="use 0 to keep"):
        pp.short_side_size((300, 600), 1)


# --- the painter's files ------------------------------------------------------------------------------

@pytest.fixture
def input_dir(tmp_path, drawing, layer):
    """An input folder as ComfyUI's, with a drawing, a canvas layer and a Mask Editor save."""
    from PIL import Image

    Image.fromarray(drawing[..., :3]).save(tmp_path / "drawing.png")
    (tmp_path / "colorstroke").mkdir()
    Image.fromarray(layer).save(tmp_path / "colorstroke" / "strokes-a.png")
    clip = tmp_path / "clipspace"
    clip.mkdir()
    masked = np.dstack([drawing[..., :3], np.full(drawing.shape[:2], 255, np.uint8)])
    Image.fromarray(masked).save(clip / "clipspace-mask-123.png")
    paint = np.zeros((512, 512, 4), np.uint8)
    paint[10:50, 10:60] = (0, 200, 0, 255)
    Image.fromarray(paint).save(clip / "clipspace-paint-123.png")
    burnt = drawing[..., :3].copy()
    burnt[10:50, 10:60] = (0, 200, 0)
    Image.fromarray(burnt).save(clip / "clipspace-painted-masked-123.png")
    return tmp_path


def test_painter_outputs_feed_the_preprocessor_as_the_layer_file_itself(input_dir, drawing, layer, hb, pp):
    files = sub("nodes.painter_files")
    picture, rgb, mask = files.read_painting(str(input_dir), "drawing.png", "colorstroke/strokes-a.png")
    assert picture.shape == (1, 512, 512, 3) and rgb.shape == (1, 512, 512, 3) and mask.shape == (1, 512, 512)
    hint, _ = hb.build_hints(picture, rgb, mask)
    np.testing.assert_allclose(hint[0].numpy(), pp.inference_hint(drawing, layer), atol=1.5 / 255)
    _, empty_rgb, empty_mask = files.read_painting(str(input_dir), "drawing.png", "")
    assert empty_mask.shape == (1, 512, 512) and bool((empty_mask == 1).all()) and not empty_rgb.any()
    # a drawing wired in: an empty layer takes its size (no stretch warning), the file is not read
    none, wired_rgb, wired_mask = files.read_painting(str(input_dir), "drawing.png", "", (300, 700))
    assert none is None and wired_rgb.shape == (1, 300, 700, 3) and wired_mask.shape == (1, 300, 700)


def test_painter_reads_a_mask_editor_save_as_drawing_plus_paint_layer(input_dir, drawing, hb):
    files = sub("nodes.painter_files")
    name = "clipspace/clipspace-painted-masked-123.png [input]"
    assert files.mask_editor_layers(name) == ("clipspace/clipspace-mask-123.png", "clipspace/clipspace-paint-123.png")
    assert files.mask_editor_layers("clipspace/other.png") is None
    picture, rgb, mask = files.read_painting(str(input_dir), name, "")
    np.testing.assert_allclose(picture[0].numpy(), drawing[..., :3] / 255.0, atol=1e-6)  # the paint is not burnt in
    assert bool((mask[0, 10:50, 10:60] == 0).all()) and float(mask.mean()) > 0.99
    np.testing.assert_allclose(rgb[0, 20, 20].numpy(), [0, 200 / 255, 0], atol=1e-6)
    hint, _ = hb.build_hints(picture, rgb, mask)
    assert float(hint[0, 4, 20, 20]) == 1.0 and float(hint[0, 4].mean()) < 0.01
    # the frontend hands the paint layer to the canvas (the widget after image); the canvas' layer then wins
    _, canvas_rgb, canvas_mask = files.read_painting(str(input_dir), name, "colorstroke/strokes-a.png")
    _, alone_rgb, alone_mask = files.read_painting(str(input_dir), "drawing.png", "colorstroke/strokes-a.png")
    assert torch.equal(canvas_mask, alone_mask) and torch.equal(canvas_rgb, alone_rgb)


def test_painter_names_a_missing_or_outside_file(input_dir, pp):
    files = sub("nodes.painter_files")
    with pytest.raises(pp.HintError, match="'colorstroke/gone.png' is not in ComfyUI's input folder"):
        files.files_read(str(input_dir), "drawing.png", "colorstroke/gone.png")
    with pytest.raises(pp.HintError, match="outside ComfyUI's input folder"):
        files.files_read(str(input_dir), "../drawing.png", "")


def test_painter_puts_the_example_files_in_the_input_folder(tmp_path):
    files = sub("nodes.painter_files")
    files.put_examples(str(tmp_path))
    for source, name in files.EXAMPLE_FILES.items():
        assert (tmp_path / name).read_bytes() == (ROOT / "example_workflows" / source).read_bytes()


def test_the_drawings_own_mask_wired_as_strokes_mask_is_refused(drawing, layer, hb, pp):
    lines = as_image(drawing)[..., :3]
    alpha = 1.0 - lines.mean(dim=-1)  # a drawing saved as lines on transparency: alpha on the lines
    rgb, _ = loadimage(layer)
    with pytest.raises(pp.HintError, match="lie on the drawing's lines .*strokes_mask"):
        hb.build_hints(lines, rgb, 1.0 - alpha)  # its Load Image MASK, wired to strokes_mask
    hint, _ = hb.build_hints(lines, *loadimage(layer))
    assert sub("preprocessors.stroke_layer").share_on_the_lines(hint[0].numpy()) < 0.5  # painted strokes are regions


def test_the_loader_names_a_broken_file_by_its_name_in_models_controlnet(tmp_path):
    ck = sub("nodes.comfy_host")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(sub("model").CheckpointError) as caught:
        ck.check_file(str(broken), "black_on_white", "sub/broken.safetensors")
    assert "sub/broken.safetensors (in models/controlnet)" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_the_fill_lays_flats_in_the_hint_and_preview_and_the_apply_node_says_when_the_model_lacks_it(
        hb, drawing, layer, caplog):
    sparse, sparse_preview = hb.build_hints(as_image(drawing), as_image(layer))
    filled, filled_preview = hb.build_hints(as_image(drawing), as_image(layer), fill=True)
    painted = sparse[0, 4] > 0.99
    assert float((filled[0, 4] > 0).float().mean()) > 3 * float((sparse[0, 4] > 0).float().mean())
    torch.testing.assert_close(filled[0, :, painted], sparse[0, :, painted], atol=0.01, rtol=0)  # paint kept
    assert float(((filled[0, 4] - 0.5).abs() < 1e-6).float().mean()) > 0.1  # flats at the fill's alpha
    assert not torch.equal(filled_preview, sparse_preview)  # the preview shows the flats
    trained = fake_control_net(polarity="white_on_black")
    trained.color_stroke_trained_fill = {"probability": 0.5, "gap": 6, "alpha": 0.5}
    untrained = fake_control_net(polarity="white_on_black")
    with caplog.at_level("WARNING", logger="color_stroke"):
        hb.hint_for_model(filled, trained)
        assert "untested" not in caplog.text and "turn fill on" not in caplog.text
        hb.hint_for_model(filled, untrained)
        assert "trained without filled strokes" in caplog.text and "untested" in caplog.text
        hb.hint_for_model(sparse, trained)
        assert "turn fill on" in caplog.text


def test_the_preprocessor_node_fills_by_default():
    nc = sub("nodes.node_classes")
    optional = nc.ColorStrokeCanny.INPUT_TYPES()["optional"]
    assert optional["fill"][1]["default"] is True and optional["fill_gap"][1]["default"] == 0
    image = np.full((64, 64, 3), 255, np.uint8)
    image[[8, 56], 8:57] = 0
    image[8:57, [8, 56]] = 0
    strokes = np.zeros((64, 64, 4), np.float32)
    strokes[28:34, 28:34] = (1.0, 0.0, 0.0, 1.0)
    hint, _ = nc.ColorStrokeCanny().build(as_image(image), "canny", 100, 200, "no_stroke", "#FFFFFF",
                                          strokes=torch.from_numpy(strokes)[None])
    assert hint.color_stroke_filled and float(hint[0, 4, 14:50, 14:50].min()) >= 0.5
