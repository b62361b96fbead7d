"""The live check of the A1111 / Forge extension: API cases against a running WebUI, and screenshots.

Needs a WebUI started with ``--api`` and this repository installed as an extension, with the models of
``make_models.py`` (see ``tests/live/README.md``). Every case states its expected outcome and is checked;
the figures (mean absolute pixel differences, 0-255) and the outcome of each case go to OUT/cases.json,
the screenshots of the ControlNet unit and the Color Stroke section (``ui_checks``) to OUT/*.png.

    python tests/live/webui_cases.py --url http://127.0.0.1:7861 --host forge --out docs/live/forge

Exit status 1 when a case did not behave as stated.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIZE = 256
STEPS = 2
# The random text encoder of make_models.py can overflow on some prompts, which makes every image NaN (black) and
# every "the image differs" case fail: "a cat" did on the 2026-12-07 draw, the empty prompt never has.
PROMPT = ""
RED, BLUE = (230, 40, 30), (20, 60, 220)
# headless Chromium on a machine without network: no sandbox (root), no background connections
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def png64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def image_of(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text.split(",", 1)[-1]))).convert("RGB"))


def drawing(height=SIZE, width=SIZE) -> np.ndarray:
    """A line drawing: black lines on white."""
    image = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(image, (width // 5, height // 5), (width * 3 // 5, height * 3 // 5), (0, 0, 0), 2)
    cv2.circle(image, (width * 2 // 3, height * 2 // 3), min(height, width) // 6, (0, 0, 0), 2)
    return image


def strokes(height=SIZE, width=SIZE, colours=(RED, BLUE)) -> np.ndarray:
    """A transparent stroke layer with two blobs, inside the two shapes of ``drawing``."""
    layer = np.zeros((height, width, 4), np.uint8)
    cv2.circle(layer, (width * 2 // 5, height * 2 // 5), min(height, width) // 10, (*colours[0], 255), -1)
    cv2.circle(layer, (width * 2 // 3, height * 2 // 3), min(height, width) // 12, (*colours[1], 255), -1)
    return layer


def photo() -> np.ndarray:
    """An opaque picture with no plain background: it cannot say where strokes are."""
    return np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


class WebUI:
    def __init__(self, url: str, host: str):
        self.url, self.host = url.rstrip("/"), host

    def call(self, path: str, payload=None):
        """(HTTP status, JSON body) of a GET (payload None) or POST."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=1800) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, {"raw": body.decode(errors="replace")}

    def model(self, stem: str) -> str | None:
        """The full model name ("name [hash]") the host lists for a file stem; None when it lists none."""
        _, body = self.call("/controlnet/model_list")
        return next((name for name in body["model_list"] if name.split(" [")[0] == stem), None)

    def checkpoint(self, stem: str) -> str | None:
        """The title the host lists for a checkpoint file stem; None when it lists none."""
        _, body = self.call("/sdapi/v1/sd-models")
        return next((m["title"] for m in body if m["model_name"] == stem), None)

    def txt2img(self, units=(), layer=None, section=(), **extra):
        """section: the Color Stroke section's args after the layer (fill, fill gap, ...); none = its defaults."""
        scripts = {}
        if units:
            scripts["controlnet"] = {"args": list(units)}
        if layer is not None:
            scripts["Color Stroke"] = {"args": [png64(layer), *section]}
        payload = {"prompt": PROMPT, "steps": STEPS, "width": SIZE, "height": SIZE, "sampler_name": "Euler",
                   "seed": 1, "alwayson_scripts": scripts, **extra}
        return self.call("/sdapi/v1/txt2img", payload)


def unit(model: str, module="colorstroke_canny", image=None, **extra) -> dict:
    return {"enabled": True, "module": module, "model": model, "image": png64(drawing() if image is None else image),
            "weight": 1.0, "resize_mode": "Crop and Resize", "processor_res": 512, "threshold_a": 100,
            "threshold_b": 200, "pixel_perfect": False, **extra}


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def error_text(body: dict) -> str:
    return " ".join(str(body.get(key, "")) for key in ("error", "detail", "errors", "message", "raw"))


def shows_strokes(detected_map: np.ndarray) -> bool:
    """True when the returned map shows the red blob in red at its place (strokes over edges)."""
    y, x = SIZE * 2 // 5, SIZE * 2 // 5
    r, g, b = detected_map[y, x].astype(int)
    return r > 150 and g < 100 and b < 100


def shows_flats(detected_map: np.ndarray) -> bool:
    """True when the returned map shows the red blob's flat: its shape (``drawing``'s rectangle), away from the
    blob, in a dimmer red (filled pixels have alpha 0.5)."""
    r, g, b = detected_map[SIZE // 5 + 8, SIZE // 5 + 8].astype(int)
    return r > 60 and g < 60 and b < 60


def generation_info(status: int, body: dict) -> str:
    """What the generation info says of Color Stroke (its extra parameter and the infotexts)."""
    info = json.loads(body.get("info", "{}")) if status == 200 else {}
    return str(info.get("extra_generation_params", {}).get("Color Stroke", "")) + str(info.get("infotexts", ""))


class Cases:
    """The results of a run of cases (``case``: one outcome; ``refused``: one that must stop with an HTTP error
    naming ``phrases``), each printed as it comes."""

    def __init__(self):
        self.results = []

    def case(self, name: str, expected: str, passed: bool, **figures):
        self.results.append({"case": name, "expected": expected, "passed": bool(passed), **figures})
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {expected} {figures or ''}", flush=True)

    def refused(self, name: str, status: int, body: dict, *phrases: str):
        text = error_text(body)
        self.case(name, f"HTTP 500, the message names: {' / '.join(phrases)}",
                  status >= 400 and all(p in text for p in phrases), status=status, message=text[:400])


def run_cases(webui: WebUI) -> list[dict]:
    ours, canny = webui.model("control_colorstroke_sd15"), webui.model("control_v11p_sd15_canny")
    cases = Cases()
    results, case, refused = cases.results, cases.case, cases.refused

    _, body = webui.call("/controlnet/control_types")
    default = body.get("control_types", {}).get("ColorStroke", {}).get("default_option")
    case("default preprocessor", "Control Type ColorStroke preselects colorstroke_canny",
         default == "colorstroke_canny", default_option=default)
    _, modules = webui.call("/controlnet/module_list")
    case("preprocessors listed", "both of ours in /controlnet/module_list",
         {"colorstroke_canny", "colorstroke_canny_white_on_black"} <= set(modules.get("module_list", [])))

    status, plain = webui.txt2img()
    base = image_of(plain["images"][0])
    case("no ControlNet", "HTTP 200", status == 200)
    status, body = webui.txt2img([unit(ours)], strokes())
    with_strokes, maps = image_of(body["images"][0]), [image_of(i) for i in body["images"][1:]]
    case("ColorStroke unit with strokes", "HTTP 200; image differs from no ControlNet; returned map shows the strokes",
         status == 200 and difference(with_strokes, base) > 1 and any(shows_strokes(m) for m in maps),
         vs_no_controlnet=difference(with_strokes, base), maps=len(maps))
    status, body = webui.txt2img([unit(ours)])
    without = image_of(body["images"][0])
    case("strokes reach the model", "HTTP 200; with vs without strokes differ",
         status == 200 and difference(with_strokes, without) > 0.5, with_vs_without=difference(with_strokes, without))
    status, body = webui.txt2img([unit(ours)], strokes(colours=(BLUE, RED)))
    recoloured = image_of(body["images"][0])
    case("stroke colours reach the model", "HTTP 200; recoloured strokes change the image",
         status == 200 and difference(with_strokes, recoloured) > 0.5, recoloured=difference(with_strokes, recoloured))
    status, body = webui.txt2img([unit(ours)], strokes(), enable_hr=True, hr_scale=1.5, hr_upscaler="Latent",
                                 denoising_strength=0.5, hr_second_pass_steps=STEPS, hr_additional_modules=[])
    case("hires fix", "HTTP 200 at 1.5x", status == 200 and image_of(body["images"][0]).shape[0] == SIZE * 3 // 2)

    status, body = webui.txt2img([unit(ours)], strokes(), section=[False, 0])
    sparse, sparse_maps = image_of(body["images"][0]), [image_of(i) for i in body["images"][1:]]
    case("fill between the lines", "HTTP 200 both ways; the returned map shows the flats with fill on (the "
         "default) and not with it off; the image differs",
         status == 200 and any(shows_flats(m) for m in maps) and not any(shows_flats(m) for m in sparse_maps)
         and difference(with_strokes, sparse) > 0.5, filled_vs_sparse=difference(with_strokes, sparse))
    status, body = webui.txt2img([unit(ours)], strokes())
    said = generation_info(status, body)
    case("a model trained without fill", "HTTP 200; the generation info says the fill is untested for it",
         status == 200 and "trained without filled strokes" in said, info=said[:300])
    status, body = webui.txt2img([unit(ours)], strokes(), section=[png64(strokes())])  # a layer where the fill goes
    refused("fill options out of order", status, body, "the section's args are [stroke layer, fill")

    if webui.host == "forge":
        stroke_guidance_cases(webui, case, ours, with_strokes)

    status, body = webui.txt2img([unit(canny)], strokes())
    refused("3-channel model for colorstroke_canny", status, body, "ControlNet Unit 0", "3-channel",
            "own preprocessor")
    status, body = webui.txt2img([unit(ours.split(" [")[0])], strokes())
    if webui.host == "forge":  # Forge knows models only by "name [hash]"
        refused("model name without its hash", status, body, "no ControlNet model is named", "did you mean")
    else:  # sd-webui-controlnet finds a model by its bare name
        case("model name without its hash", "HTTP 200 (sd-webui-controlnet finds it)", status == 200)
    status, body = webui.txt2img([unit("no_such_model")], strokes())
    refused("unknown model", status, body, "no ControlNet model is named 'no_such_model'")
    status, body = webui.txt2img([unit(ours, module="canny")], strokes())
    refused("Color Stroke model with another preprocessor", status, body, "is a Color Stroke ControlNet")
    sdxl = webui.model("control_colorstroke_sdxl")  # make_models.py --sdxl
    if sdxl is not None:
        status, body = webui.txt2img([unit(sdxl)], strokes())
        refused("SDXL Color Stroke model on the SD 1.5 checkpoint", status, body,
                "control_colorstroke_sdxl.safetensors is an SDXL ControlNet, but the checkpoint",
                "random_sd15.safetensors' is SD 1.5: use an SD 1.5 Color Stroke ControlNet with it, or this ControlNet "
                "with an SDXL checkpoint")
    status, body = webui.txt2img([unit(ours)], photo())
    refused("unusable stroke layer", status, body, "Color Stroke: the stroke layer has no transparent pixels")

    status, body = webui.txt2img([unit(ours)], strokes(SIZE // 2, SIZE))
    said = generation_info(status, body)
    case("stretched stroke layer", "HTTP 200; the generation info says the layer was stretched",
         status == 200 and "stretched" in said, info=said[:300])
    status, body = webui.txt2img([], strokes())
    said = generation_info(status, body)
    case("strokes without a Color Stroke unit", "HTTP 200; the generation info says they were not used",
         status == 200 and "not used" in said, info=said[:300])
    return results


def stroke_guidance_cases(webui: WebUI, case, ours: str, unguided: np.ndarray) -> None:
    """Forge's stroke guidance (section args [layer, fill, fill gap, stroke guidance]); ``unguided``: the image of
    ``unit(ours)`` with ``strokes()`` at the API's default CFG scale (7), guidance off."""
    status, body = webui.txt2img([unit(ours)], strokes(), section=[True, 0, True])
    guided, said = image_of(body["images"][0]) if status == 200 else None, generation_info(status, body)
    case("stroke guidance", "HTTP 200; the image differs from the unguided one; the generation info says it was on",
         status == 200 and difference(guided, unguided) > 0.5 and "stroke guidance" in said,
         guided_vs_unguided=None if guided is None else difference(guided, unguided), info=said[:300])
    # "ControlNet is more important": Forge gives the unconditional side no ControlNet, so guidance has nothing to do
    images = []
    for guidance in (False, True):
        status, body = webui.txt2img([unit(ours, control_mode="ControlNet is more important")], strokes(),
                                     section=[True, 0, guidance])
        images.append(image_of(body["images"][0]) if status == 200 else None)
    case("stroke guidance with 'ControlNet is more important'", "HTTP 200; the same image as without guidance (the "
         "unconditional side has no ControlNet in that mode)",
         all(image is not None for image in images) and difference(*images) == 0,
         difference=difference(*images) if all(image is not None for image in images) else None)
    status, body = webui.txt2img([unit(ours)], strokes(), section=[True, 0, True], cfg_scale=1)
    said = generation_info(status, body)
    case("stroke guidance at CFG scale 1", "HTTP 200; the generation info says it does nothing there",
         status == 200 and "does nothing at CFG scale 1" in said, info=said[:300])
    status, body = webui.txt2img([unit(ours)], strokes(), section=[True, 0, png64(strokes())])
    text = error_text(body)
    case("stroke guidance out of order", "HTTP 500 naming the section's args",
         status >= 400 and "stroke guidance must be true or false" in text, status=status, message=text[:300])


def run_sdxl_cases(webui: WebUI) -> list[dict]:
    """The cases of the SDXL checkpoint of make_models.py --sdxl, on a WebUI started with it (``start_webui.sh``
    with WEBUI_CKPT=random_sdxl: on a CPU machine of 24 GB the WebUI cannot hold the SD 1.5 model beside it)."""
    cases = Cases()
    sdxl_cases(webui, cases.case, cases.refused, webui.model("control_colorstroke_sd15"),
               webui.model("control_colorstroke_sdxl"))
    return cases.results


def sdxl_cases(webui: WebUI, case, refused, sd15_model: str, sdxl_model: str) -> None:
    """On the SDXL checkpoint of make_models.py --sdxl (the host loads it for these calls, then its own again)."""
    # live previews off: their SDXL approximation (vaeapprox-sdxl.pt) is downloaded on first use, and this is offline
    on_sdxl = {"override_settings": {"sd_model_checkpoint": webui.checkpoint("random_sdxl"),
                                     "live_previews_enable": False}}
    status, body = webui.txt2img(**on_sdxl)
    base = image_of(body["images"][0]) if status == 200 else None
    case("SDXL checkpoint without ControlNet", "HTTP 200", status == 200, status=status)
    status, body = webui.txt2img([unit(sdxl_model)], strokes(), **on_sdxl)
    ok = status == 200 and base is not None
    image, maps = (image_of(body["images"][0]), [image_of(i) for i in body["images"][1:]]) if ok else (None, [])
    case("SDXL Color Stroke unit on the SDXL checkpoint", "HTTP 200; the image differs from no ControlNet; the "
         "returned map shows the strokes", ok and difference(image, base) > 1 and any(shows_strokes(m) for m in maps),
         vs_no_controlnet=difference(image, base) if ok else None, status=status)
    status, body = webui.txt2img([unit(sd15_model)], strokes(), **on_sdxl)
    refused("SD 1.5 Color Stroke model on the SDXL checkpoint", status, body,
            "control_colorstroke_sd15.safetensors is an SD 1.5 ControlNet, but the checkpoint",
            "random_sdxl.safetensors' is SDXL: use an SDXL Color Stroke ControlNet with it")


def run_control_lora_cases(webui: WebUI) -> list[dict]:
    """The control-LoRA pair of make_models.py in a ColorStroke unit: the host loads the control-LoRA as its own
    control-LoRA type, rebuilt on the checkpoint being sampled, and its image equals the merged full model's."""
    cases = Cases()
    lora = webui.model("control_colorstroke_sd15_control_lora_rank8")
    merged = webui.model("control_colorstroke_sd15_merged")
    status, plain = webui.txt2img()
    base = image_of(plain["images"][0]) if status == 200 else None
    status, body = webui.txt2img([unit(lora)], strokes()) if lora else (0, {})
    ok = status == 200 and base is not None
    image = image_of(body["images"][0]) if ok else None
    merged_status, merged_body = webui.txt2img([unit(merged)], strokes()) if merged else (0, {})
    full = image_of(merged_body["images"][0]) if merged_status == 200 else None
    cases.case("SD 1.5 control-LoRA in a ColorStroke unit", "HTTP 200; the image equals the merged full model's and "
               "differs from no ControlNet", ok and full is not None and difference(image, full) < 0.5
               and difference(image, base) > 1, status=status, model=lora,
               vs_merged=difference(image, full) if ok and full is not None else None,
               vs_no_controlnet=difference(image, base) if ok else None)
    return cases.results


ADJACENT_JS = """() => {
  const cn = document.querySelector('#txt2img_controlnet'), ours = document.querySelector('#txt2img_colorstroke');
  let parent = ours; while (parent && !parent.contains(cn)) parent = parent.parentElement;
  const kids = Array.from(parent.children);
  const a = kids.findIndex(k => k.contains(cn)), b = kids.findIndex(k => k.contains(ours));
  return kids.slice(Math.min(a, b) + 1, Math.max(a, b))
    .map(k => (k.innerText || '').trim().split('\\n')[0]).filter(t => t);
}"""


def set_number(page, element_id: str, value: int) -> None:
    field = page.locator(f"#{element_id} input[type=number]").first
    field.fill(str(value))
    field.press("Enter")


def generate_in_page(page, inputs: Path, out: Path, results: list) -> None:
    """Generate from the page with the ControlNet unit enabled on the drawing, the strokes uploaded in the
    Color Stroke section (by the caller): the gallery shows the image and the map with the strokes
    (generated.png); then with an unusable layer, the page shows why it stopped (refused.png)."""
    for element_id, value in (("txt2img_steps", STEPS), ("txt2img_width", SIZE), ("txt2img_height", SIZE)):
        set_number(page, element_id, value)
    unit = page.locator("#txt2img_controlnet")
    unit.locator("input[type=file]").first.set_input_files(str(inputs / "drawing.png"))
    # the unit sizes its mask canvas to the image a moment after the upload (sd-webui-controlnet refuses a
    # mask of the canvas's initial 300x150)
    page.wait_for_timeout(6000)
    unit.get_by_label("Enable", exact=True).first.check()  # uploading may have enabled it already
    page.wait_for_timeout(1000)
    page.locator("#txt2img_generate").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('#html_info_txt2img'))"
                           ".some(e => /Steps:|Error/.test(e.innerText))", timeout=600_000)
    page.wait_for_timeout(2000)
    info = page.locator("#html_info_txt2img").last.inner_text()
    page.locator("#txt2img_results").screenshot(path=str(out / "generated.png"))
    results.append({"case": "generate in the page", "expected": "generated with the ColorStroke unit (its infotext)",
                    "passed": "colorstroke_canny" in info and "not used" not in info, "info": info[:400]})
    page.locator("#txt2img_colorstroke_strokes input[type=file]").set_input_files(str(inputs / "photo.png"))
    page.wait_for_timeout(3000)
    page.locator("#txt2img_generate").click()
    message = page.get_by_text("Color Stroke: the stroke layer has no transparent pixels", exact=False).first
    try:
        message.wait_for(timeout=300_000)
        shown = True
    except Exception:  # playwright's TimeoutError: the page never said it
        shown = False
    page.locator("#txt2img_results").screenshot(path=str(out / "refused.png"))
    results.append({"case": "refused in the page", "expected": "the page says why the generation stopped",
                    "passed": shown})


def paint_on_forge_canvas(page, inputs: Path, out: Path) -> dict:
    """Forge: the drawing dropped into the section's canvas, one stroke dragged over it at the default brush;
    the canvas hands the paint to the section's input (canvas_painted.png)."""
    section = page.locator("#txt2img_colorstroke")
    section.locator("input[type=file][id^=imageInput_]").set_input_files(str(inputs / "drawing.png"))
    page.wait_for_timeout(3000)
    box = section.locator("canvas[id^=drawingCanvas_]").bounding_box()
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 13):  # as a hand moves: the canvas draws on pointer events between frames
        page.mouse.move(x + step * box["width"] * 0.025, y + step * 2)
        page.wait_for_timeout(30)
    page.mouse.up()
    page.wait_for_timeout(1500)
    painted = section.locator(".logical_image_foreground textarea").evaluate_all(
        "(areas) => areas.map(a => a.value.length)")
    section.screenshot(path=str(out / "canvas_painted.png"))
    return {"case": "paint on Forge's canvas", "expected": "a stroke over the drawing reaches the section's input",
            "passed": any(length > 0 for length in painted), "canvas_png_chars": max(painted, default=0)}


def ui_checks(url: str, out: Path, chromium: str, host: str) -> list[dict]:
    """In Chromium: the ControlNet unit on Control Type ColorStroke, the Color Stroke section right after the
    ControlNet one, a stroke layer uploaded (its status line), a generation from the page and one refused
    (``generate_in_page``), on Forge strokes painted on the canvas over the drawing. Screenshots:
    controlnet_unit.png, color_stroke_section.png, generated.png, refused.png, canvas_painted.png (Forge)."""
    from playwright.sync_api import sync_playwright

    results = []
    inputs = Path(tempfile.mkdtemp())
    for name, image in (("drawing", drawing(512, 512)), ("strokes", strokes(512, 384)), ("photo", photo())):
        (inputs / f"{name}.png").write_bytes(base64.b64decode(png64(image)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2400})
        page.goto(url, timeout=600_000)
        page.wait_for_selector("#txt2img_colorstroke", timeout=600_000)
        between = page.evaluate(ADJACENT_JS)
        results.append({"case": "section placement", "expected": "Color Stroke comes right after ControlNet",
                        "passed": between == [], "between": between})
        page.locator("#txt2img_controlnet .label-wrap").first.click()
        page.wait_for_timeout(1500)
        page.locator("#txt2img_controlnet").get_by_text("ColorStroke", exact=True).first.click()
        page.wait_for_timeout(3000)
        page.locator("#txt2img_controlnet").screenshot(path=str(out / "controlnet_unit.png"))
        page.locator("#txt2img_colorstroke .label-wrap").first.click()
        page.wait_for_timeout(1500)
        page.locator("#txt2img_colorstroke_strokes input[type=file]").set_input_files(str(inputs / "strokes.png"))
        page.wait_for_timeout(4000)
        status = page.locator("#txt2img_colorstroke_status").first.inner_text()
        results.append({"case": "status line", "expected": "an uploaded layer is described with its size",
                        "passed": "384x512" in status, "status": status})
        fill = page.locator("#txt2img_colorstroke_fill input[type=checkbox]").first.is_checked()
        gap = page.locator("#txt2img_colorstroke_fill_gap input[type=number]").first.input_value()
        results.append({"case": "fill options", "expected": "Fill between the lines ticked, Fill gap 0, by default",
                        "passed": fill and gap == "0", "fill": fill, "fill_gap": gap})
        page.locator("#txt2img_colorstroke").screenshot(path=str(out / "color_stroke_section.png"))
        if host == "forge":
            results.append(paint_on_forge_canvas(page, inputs, out))
        generate_in_page(page, inputs, out, results)
        browser.close()
    for result in results:
        print(f"{'PASS' if result['passed'] else 'FAIL'}  {result['case']}: {result['expected']}", flush=True)
    return results


def broken_controlnet_checks(webui: WebUI, url: str, out: Path, chromium: str) -> list[dict]:
    """A1111 whose sd-webui-controlnet script failed to load: the section says so, our preprocessors are not
    offered, and a generation still runs (section.png)."""
    from playwright.sync_api import sync_playwright

    _, modules = webui.call("/controlnet/module_list")
    offered = "colorstroke_canny" in modules.get("module_list", [])
    status, _ = webui.txt2img([], strokes())
    results = [{"case": "no preprocessors offered", "expected": "ours not in /controlnet/module_list",
                "passed": not offered},
               {"case": "generation still runs", "expected": "HTTP 200", "passed": status == 200, "status": status}]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2400})
        page.goto(url, timeout=600_000)
        page.wait_for_selector("#txt2img_colorstroke", timeout=600_000)
        page.locator("#txt2img_colorstroke .label-wrap").first.click()
        page.wait_for_timeout(1500)
        text = page.locator("#txt2img_colorstroke").inner_text()
        page.locator("#txt2img_colorstroke").screenshot(path=str(out / "section.png"))
        browser.close()
    results.append({"case": "the section says so", "expected": "sd-webui-controlnet ... its script did not load",
                    "passed": "its script did not load" in text})
    for result in results:
        print(f"{'PASS' if result['passed'] else 'FAIL'}  {result['case']}: {result['expected']}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", choices=["forge", "a1111"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--no-browser", action="store_true", help="the API cases only")
    parser.add_argument("--no-api", action="store_true", help="the page checks only")
    parser.add_argument("--sdxl", action="store_true",
                        help="the SDXL cases only (the WebUI started on random_sdxl; results in sdxl_cases.json)")
    parser.add_argument("--control-lora", action="store_true",
                        help="the control-LoRA case only (make_models.py's pair; results in control_lora_cases.json)")
    parser.add_argument("--broken-controlnet", action="store_true",
                        help="A1111 whose sd-webui-controlnet script failed to load (see tests/live/README.md)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if args.broken_controlnet:
        results = broken_controlnet_checks(WebUI(args.url, args.host), args.url, args.out, args.chromium)
    elif args.sdxl:
        results = run_sdxl_cases(WebUI(args.url, args.host))
    elif args.control_lora:
        results = run_control_lora_cases(WebUI(args.url, args.host))
    else:
        results = [] if args.no_api else run_cases(WebUI(args.url, args.host))
        if not args.no_browser:
            results += ui_checks(args.url, args.out, args.chromium, args.host)
        if args.no_api and (args.out / "cases.json").exists():  # keep the API cases of the last full run
            redone = {result["case"] for result in results}
            earlier = json.loads((args.out / "cases.json").read_text())["cases"]
            results = [result for result in earlier if result["case"] not in redone] + results
    report = {"host": args.host, "size": SIZE, "steps": STEPS, "seconds": round(time.time() - started),
              "cases": results}
    name = "sdxl_cases.json" if args.sdxl else "control_lora_cases.json" if args.control_lora else "cases.json"
    (args.out / name).write_text(json.dumps(report, indent=1) + "\n")
    failed = [r["case"] for r in results if not r["passed"]]
    print(f"{len(results) - len(failed)} of {len(results)} cases as stated" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
