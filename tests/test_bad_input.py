"""Bad or unusual images: each gets a clear error or a correct result."""
import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from preprocessors import HintError, canny, inference_hint, load_image, random_strokes, user_strokes


def saved(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def test_wrong_dtype_says_what_is_accepted():
    with pytest.raises(HintError, match="int32.*uint8, uint16 or float"):
        canny(np.zeros((8, 8), np.int32))


def test_wrong_channel_count_says_the_shape():
    with pytest.raises(HintError, match=r"\(8, 8, 5\).*RGBA"):
        canny(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(HintError, match="shape"):
        user_strokes(np.zeros((2, 8, 8, 4), np.uint8))


def test_nan_and_inf_are_refused():
    image = np.zeros((8, 8, 3), np.float32)
    image[1, 1, 1] = np.nan
    with pytest.raises(HintError, match="NaN or inf"):
        canny(image)
    image[1, 1, 1] = np.inf
    with pytest.raises(HintError, match="NaN or inf"):
        random_strokes(image, np.random.default_rng(0))


def test_float_out_of_range_explains_the_scale():
    for build in (canny, lambda image: random_strokes(image, np.random.default_rng(0)), user_strokes):
        with pytest.raises(HintError, match="divide 0-255 data by 255"):
            build(np.full((8, 8, 4), 200.0, np.float32))


def test_tiny_image_is_refused():
    with pytest.raises(HintError, match="at least 2x2"):
        canny(np.zeros((1, 8), np.uint8))


def test_16_bit_png(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    array = load_image(saved(Image.fromarray(ramp), tmp_path / "deep.png"))
    assert array.dtype == np.uint16 and array.max() == ramp.max()
    hint = inference_hint(array)
    assert hint.shape == (5, 64, 64)


def test_grey_and_palette_images(tmp_path):
    grey = np.full((32, 32), 255, np.uint8)
    grey[10:20, 15] = 0
    from_grey = load_image(saved(Image.fromarray(grey), tmp_path / "grey.png"))
    palette = Image.fromarray(np.stack([grey] * 3, -1)).convert("P", palette=Image.Palette.ADAPTIVE)
    from_palette = load_image(saved(palette, tmp_path / "palette.png"))
    assert from_palette.shape == (32, 32, 3)
    np.testing.assert_array_equal(canny(from_grey), canny(from_palette))


def test_palette_with_transparency_becomes_a_stroke_layer(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:8, 4:8] = (200, 20, 20, 255)
    palette = Image.fromarray(rgba, "RGBA").convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    layer = user_strokes(load_image(saved(palette, tmp_path / "p.png", transparency=palette.getpixel((0, 0)))))
    assert layer[..., 3].sum() == 16 and layer[5, 5, 0] > 0.7


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    array = load_image(saved(cmyk, tmp_path / "c.jpg"))
    assert array.shape == (16, 16, 3) and array[8, 8, 0] > 200 and array[8, 8, 1] < 60


def test_truncated_and_missing_files_name_the_file(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:60])
    with pytest.raises(HintError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(HintError, match="does not exist"):
        load_image(tmp_path / "nowhere.png")


def test_8k_drawing_without_memory_blow_up():
    side = 8192
    drawing = np.full((side, side, 3), 255, np.uint8)
    drawing[::512, :] = 0
    tracemalloc.start()
    hint = inference_hint(drawing)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hint_bytes = hint.nbytes
    assert hint.shape == (5, side, side) and hint[0].max() == 1
    assert peak < 1.6 * hint_bytes, f"peak {peak / 2**30:.2f} GiB for a {hint_bytes / 2**30:.2f} GiB hint"
