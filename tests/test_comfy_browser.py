"""The Color Stroke Painter used as a person uses it: a real ComfyUI page in headless Chromium.

Opens the example workflow from ComfyUI's template browser, paints a stroke on the painter's canvas with
mouse events, queues the hint part of the workflow and checks that the preprocessor's preview has the painted
colour where it was painted and nowhere else, and its flat (the example fills between the lines) in the area it
was painted in and not in another; then reloads the page and the saved workflow and checks that
the strokes are still on the canvas. Runs where COMFYUI_DIR is set, Playwright is installed and a Chromium
executable exists (CHROMIUM, else Debian's /usr/bin/chromium); skips with the reason otherwise.
Set COLORSTROKE_SCREENSHOTS to a folder to keep the screenshots (docs/comfyui/ holds the committed ones).
"""
import io
import os
import pathlib
import shutil
import urllib.parse
import urllib.request

import numpy as np
import pytest

from preprocessors import DEFAULT_FILL_ALPHA
from tests.comfy_server import COMFYUI_DIR, EXAMPLE, FOLDER, comfyui_server, http, run_prompt

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PAINTED = (0x1E, 0x90, 0xFF)  # the brush colour the test picks (dodger blue)
STROKE_ROW, STROKE_COLUMNS = 470, (40, 150)  # drawing pixels: a stroke along the bottom, away from the lines
BRUSH = 16  # drawing pixels
EXAMPLE_STROKE = (42, 180)  # a pixel of the example's stroke layer (drawing pixels x, y)
MASK_EDITOR_ROW, MASK_EDITOR_COLUMNS = 440, (190, 310)  # a stroke of the Mask Editor's paint brush, inside the box
BACKGROUND_FAR, INSIDE_FACE = (40, 480), (150, 258)  # preview pixels (row, column): the top right, the forehead

pytestmark = [
    pytest.mark.host,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (set CHROMIUM)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the browser test drives it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_browser")
    with comfyui_server(base, inputs=()) as url:
        assert http(url + "/settings/Comfy.TutorialCompleted", True)[0] == 200  # no first-run template dialog
        yield url, base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("COLORSTROKE_SCREENSHOTS")
    path = pathlib.Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, url):
    """The ComfyUI page, loaded; errors thrown by our extension are collected in ``page.errors`` (the frontend
    throws one of its own on a new user's first load, from its settings store)."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.errors = []
    ours = f"/extensions/{FOLDER}/"
    page.on("pageerror", lambda error: ours in (error.stack or "") and page.errors.append(f"{error}\n{error.stack}"))
    page.goto(url, wait_until="networkidle")
    page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
    return page


def wait_for_painter(page):
    page.wait_for_function("""() => { const node = window.app.graph.findNodesByType('ColorStrokePainter')[0];
        return node && node.colorStrokeCanvas && node.colorStrokeCanvas.drawing; }""", timeout=30_000)


def open_example_from_the_template_browser(page, shots):
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.locator(".p-dialog").get_by_text(FOLDER, exact=True).first.click()
    card = page.locator(".p-dialog").get_by_text(EXAMPLE, exact=True)
    card.wait_for()
    page.wait_for_timeout(500)  # the thumbnail
    page.screenshot(path=str(shots / "template-browser.png"))
    card.click()
    wait_for_painter(page)


def painter(page, expression):
    """Evaluate ``expression`` with ``canvas`` bound to the painter's StrokeCanvas."""
    return page.evaluate(f"""async () => {{
        const canvas = window.app.graph.findNodesByType('ColorStrokePainter')[0].colorStrokeCanvas;
        return {expression};
    }}""")


def screen_point(page, x, y):
    """Drawing pixel (x, y) -> page coordinates on the painter's view."""
    box = page.locator("canvas.color-stroke-view").bounding_box()
    width, height = painter(page, "[canvas.layer.width, canvas.layer.height]")
    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height


def wait_for_layer_alpha(page, point, alpha):
    page.wait_for_function(f"""() => window.app.graph.findNodesByType('ColorStrokePainter')[0].colorStrokeCanvas
        .layer.getContext('2d').getImageData({point[0]}, {point[1]}, 1, 1).data[3] === {alpha}""", timeout=30_000)


def layer_pixel(page, x, y):
    return painter(page, f"Array.from(canvas.layer.getContext('2d').getImageData({x}, {y}, 1, 1).data)")


def test_paint_on_the_canvas_queue_and_reopen(server, browser, shots):
    url, base = server
    page = open_page(browser, url)
    open_example_from_the_template_browser(page, shots)
    assert painter(page, "canvas.value") == "colorstroke/color_stroke_example_strokes.png"
    wait_for_layer_alpha(page, EXAMPLE_STROKE, 255)  # the example's blue stroke on the left
    page.screenshot(path=str(shots / "painter-example.png"))

    page.locator(".color-stroke-painter").get_by_role("button", name="Clear", exact=True).click()
    page.wait_for_function("""() => window.app.graph.findNodesByType('ColorStrokePainter')[0]
        .colorStrokeCanvas.value === ''""")
    painter(page, "(canvas.colour.value = '#%02x%02x%02x', canvas.size.value = %d, 0)" % (*PAINTED, BRUSH))
    page.mouse.move(*screen_point(page, STROKE_COLUMNS[0], STROKE_ROW))
    page.mouse.down()
    for x in range(STROKE_COLUMNS[0], STROKE_COLUMNS[1] + 1, 10):
        page.mouse.move(*screen_point(page, x, STROKE_ROW))
    page.mouse.up()
    painter(page, "canvas.saving")
    middle = (sum(STROKE_COLUMNS) // 2, STROKE_ROW)
    assert layer_pixel(page, *middle) == [*PAINTED, 255]
    buttons = page.locator(".color-stroke-painter")
    buttons.get_by_role("button", name="Undo", exact=True).click()
    painter(page, "canvas.saving")
    assert layer_pixel(page, *middle)[3] == 0 and painter(page, "canvas.value") == ""  # nothing painted: no file
    buttons.get_by_role("button", name="Redo", exact=True).click()
    painter(page, "canvas.saving")
    assert layer_pixel(page, *middle) == [*PAINTED, 255]
    name = painter(page, "canvas.value")
    assert name.startswith("colorstroke/strokes-") and name.endswith(".png")
    assert (base / "input" / name).is_file()
    page.screenshot(path=str(shots / "painter-painted.png"))

    # a prompt made right after a stroke names a file that already holds it (the widget's serializeValue
    # waits for the upload), even when the upload is slow
    page.evaluate("""() => { const api = window.comfyAPI.api.api; const fetchApi = api.fetchApi.bind(api);
        api.fetchApi = async (route, options) => {
            if (route === '/upload/image') await new Promise(done => setTimeout(done, 1500));
            return fetchApi(route, options); }; }""")
    page.mouse.move(*screen_point(page, 300, 30))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 320, 30))
    page.mouse.up()
    name, alpha = page.evaluate("""async () => {
        const prompt = (await window.app.graphToPrompt()).output;
        const name = Object.values(prompt).find(node => node.class_type === 'ColorStrokePainter').inputs.strokes;
        const [subfolder, filename] = name.split('/');
        const image = new Image();
        image.src = `/api/view?type=input&subfolder=${subfolder}&filename=${filename}&rand=${Math.random()}`;
        await image.decode();
        const probe = document.createElement('canvas');
        probe.width = image.naturalWidth; probe.height = image.naturalHeight;
        const context = probe.getContext('2d');
        context.drawImage(image, 0, 0);
        return [name, context.getImageData(310, 30, 1, 1).data[3]]; }""")
    assert name == painter(page, "canvas.value") and alpha == 255

    first_layer = name
    paint_in_the_mask_editor(page, shots)  # the paint layer lands on the canvas, over the stroke painted there
    name = painter(page, "canvas.value")
    assert name.startswith("colorstroke/strokes-") and name != first_layer  # both layers, in a file of ours
    assert page.evaluate("""() => window.app.graph.findNodesByType('ColorStrokePainter')[0].widgets
        .find(w => w.name === 'image').value""").startswith("clipspace/clipspace-painted-masked-")

    prompt = page.evaluate("async () => (await window.app.graphToPrompt()).output")
    painter_id = next(key for key, node in prompt.items() if node["class_type"] == "ColorStrokePainter")
    assert prompt[painter_id]["inputs"]["strokes"] == name
    hint_part = {key: node for key, node in prompt.items()
                 if node["class_type"] in ("ColorStrokePainter", "ColorStrokeCanny", "PreviewImage")}
    hint_part["drawing"] = {"class_type": "PreviewImage", "inputs": {"images": [painter_id, 0]}}
    entry = run_prompt(url, hint_part)
    assert entry["status"]["status_str"] == "success", entry["status"]
    preview_id = next(key for key, node in hint_part.items() if node["class_type"] == "ColorStrokeCanny")
    preview_id = next(key for key, node in hint_part.items()
                      if node["class_type"] == "PreviewImage" and node["inputs"]["images"] == [preview_id, 1])
    preview = read_output_image(url, entry["outputs"][preview_id]["images"][0])
    assert preview.shape == (512, 512, 3)
    row = preview[STROKE_ROW, STROKE_COLUMNS[0] + BRUSH:STROKE_COLUMNS[1] - BRUSH].astype(int)
    assert np.abs(row - PAINTED).max() <= 2, row[:3]  # the painted colour, where it was painted
    red = preview[MASK_EDITOR_ROW, MASK_EDITOR_COLUMNS[0] + 10:MASK_EDITOR_COLUMNS[1] - 10].astype(int)
    assert (red[:, 0] > 100).all() and (red[:, 1:] < 40).all(), red[:3]  # the Mask Editor's red paint
    untouched = preview[60:300, 60:450].reshape(-1, 3).astype(int)
    assert not (np.abs(untouched - PAINTED).max(axis=1) <= 2).any()  # and nowhere else (the example was cleared)
    # the example fills between the lines (its fill is on): the stroke's area, the background, shows its flat at
    # half alpha far from the stroke; the face, which no stroke touches, stays empty
    flat = np.round(np.array(PAINTED) * DEFAULT_FILL_ALPHA)
    assert np.abs(preview[BACKGROUND_FAR].astype(int) - flat).max() <= 3, preview[BACKGROUND_FAR]
    assert (preview[INSIDE_FACE] <= 3).all(), preview[INSIDE_FACE]
    drawing = read_output_image(url, entry["outputs"]["drawing"]["images"][0])
    assert (drawing[MASK_EDITOR_ROW, MASK_EDITOR_COLUMNS[0]:MASK_EDITOR_COLUMNS[1]] >= 250).all()  # paint not burnt in

    saved = page.evaluate("async () => JSON.stringify((await window.app.graphToPrompt()).workflow)")  # as Save writes
    page.close()
    page = open_page(browser, url)  # a fresh page: only the saved workflow and the server's files
    page.evaluate("workflow => window.app.loadGraphData(JSON.parse(workflow))", saved)
    wait_for_painter(page)
    assert painter(page, "canvas.value") == name
    wait_for_layer_alpha(page, (sum(STROKE_COLUMNS) // 2, STROKE_ROW), 255)
    assert layer_pixel(page, sum(STROKE_COLUMNS) // 2, STROKE_ROW)[:3] == list(PAINTED)
    assert layer_pixel(page, sum(MASK_EDITOR_COLUMNS) // 2, MASK_EDITOR_ROW)[3] > 0
    assert layer_pixel(page, *EXAMPLE_STROKE)[3] == 0
    page.screenshot(path=str(shots / "painter-reopened.png"))

    # a warning the server gives while running reaches the page as a toast
    stretched = {
        "1": {"class_type": "ColorStrokePainter", "inputs": {"image": "color_stroke_example.png", "strokes": name}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "area", "width": 256,
                                                     "height": 320, "crop": "disabled"}},
        "3": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["2", 0], "strokes": ["1", 1], "strokes_mask": ["1", 2], "edge_source": "canny", "low": 100,
            "high": 200, "mask_marks": "no_stroke", "background": "#FFFFFF", "resolution": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}},
    }
    assert run_prompt(url, stretched)["status"]["status_str"] == "success"
    toast = page.locator(".p-toast-message").filter(has_text="the strokes were stretched to the drawing's aspect")
    toast.wait_for(timeout=15_000)
    assert page.locator(".p-toast-message").count() == 1, page.locator(".p-toast-message").all_inner_texts()
    page.screenshot(path=str(shots / "warning-toast.png"))
    assert not page.errors, page.errors
    page.close()


def paint_in_the_mask_editor(page, shots):
    """Right-click the painter, Open in MaskEditor, paint with its paint brush, Save; wait until the canvas has
    saved its layer with the paint on it."""
    before = painter(page, "canvas.value")
    title = page.evaluate("""() => { const node = window.app.graph.findNodesByType('ColorStrokePainter')[0];
        const [x, y] = window.app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 80, node.pos[1] - 15]);
        const box = window.app.canvas.canvas.getBoundingClientRect(); return [box.left + x, box.top + y]; }""")
    page.mouse.click(*title, button="right")
    page.get_by_text("Open in MaskEditor").first.click()
    page.locator("#maskEditor .maskEditor_toolPanelContainer").nth(1).click()  # the paint brush
    box = page.locator("#imageCanvas").bounding_box()
    y = box["y"] + MASK_EDITOR_ROW * box["height"] / 512
    page.mouse.move(box["x"] + MASK_EDITOR_COLUMNS[0] * box["width"] / 512, y)
    page.mouse.down()
    for x in range(MASK_EDITOR_COLUMNS[0], MASK_EDITOR_COLUMNS[1] + 1, 10):
        page.mouse.move(box["x"] + x * box["width"] / 512, y)
    page.mouse.up()
    page.screenshot(path=str(shots / "mask-editor-paint.png"))
    page.locator("#maskEditor").get_by_role("button", name="Save", exact=True).click()
    page.locator("#maskEditor").wait_for(state="detached", timeout=30_000)
    page.wait_for_function("""() => { const canvas = window.app.graph.findNodesByType('ColorStrokePainter')[0]
        .colorStrokeCanvas; return canvas.value.startsWith('colorstroke/strokes-') && canvas.value !== '%s'; }"""
                           % before)
    painter(page, "canvas.saving")
    page.screenshot(path=str(shots / "mask-editor-back-in-the-painter.png"))


def read_output_image(url, reference):
    from PIL import Image

    query = urllib.parse.urlencode({key: reference[key] for key in ("filename", "subfolder", "type")})
    with urllib.request.urlopen(f"{url}/view?{query}") as answer:
        return np.asarray(Image.open(io.BytesIO(answer.read())).convert("RGB"))
