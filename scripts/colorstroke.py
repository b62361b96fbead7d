"""A1111 / Forge entry of the Color Stroke ControlNet: the "Color Stroke" section and the host hooks.

The host loads this file as a standalone module with the extension's root on ``sys.path`` (A1111
only while it loads), so everything is imported here, at load time. The ControlNet work lives in
``colorstroke_lib.forge_glue`` (Forge's built-in ControlNet) or ``colorstroke_lib.cn_glue``
(A1111 + sd-webui-controlnet); this file adds the stroke-layer input and sets the stroke store for
each generation. Without a ControlNet the section says so and the UI works as before.
"""
import importlib.util

import gradio as gr

from modules import script_callbacks, scripts

FORGE, SD_WEBUI_CONTROLNET = "Forge", "sd-webui-controlnet"
HELP = (
    "Pick the preprocessor **colorstroke_canny** (or **colorstroke_canny_black_on_white** for a checkpoint "
    "trained on black-on-white edges that does not say so) and a `*colorstroke*` model in a ControlNet "
    "unit, give it the line drawing, and give the colour strokes here as a transparent PNG: transparent "
    "pixels mean \"no stroke\". The layer is stretched to the drawing's size."
)


def detect_host() -> str | None:
    if importlib.util.find_spec("modules_forge") is not None:
        return FORGE
    if importlib.util.find_spec("internal_controlnet") is not None:  # imported by sd-webui-controlnet
        return SD_WEBUI_CONTROLNET
    return None


HOST, glue, problem = detect_host(), None, None
try:
    from scripts.colorstroke_lib import tell_once
    from scripts.colorstroke_lib.store import STROKES

    if HOST == FORGE:
        from scripts.colorstroke_lib import forge_glue as glue
    elif HOST == SD_WEBUI_CONTROLNET:
        from scripts.colorstroke_lib import cn_glue as glue
    else:
        problem = "sd-webui-controlnet is not installed (or did not load): install it to use Color Stroke ControlNet."
    if glue is not None:
        glue.register()
        script_callbacks.on_script_unloaded(glue.on_unload)
except Exception as error:  # never break the host's UI: report and stay inert
    glue, problem = None, f"Color Stroke ControlNet could not start: {type(error).__name__}: {error}"
    print(f"[Color Stroke] {problem}")
else:
    if problem:
        tell_once(problem)


def forge_canvas():
    """Forge's painting canvas, whose foreground layer keeps the painted colours; None elsewhere."""
    if HOST != FORGE:
        return None
    from modules_forge.forge_canvas.canvas import ForgeCanvas

    return ForgeCanvas(numpy=True, height=512, scribble_color="#ff0000", scribble_width=8)


class ColorStrokeScript(scripts.Script):
    sorting_priority = 11  # Forge orders sections by it: right after its ControlNet (10)

    def title(self):
        return "Color Stroke"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        """Inputs, in API order: [stroke layer (RGBA image / base64 PNG), Forge only: canvas foreground]."""
        tab = "img2img" if is_img2img else "txt2img"
        with gr.Accordion("Color Stroke", open=False, elem_id=f"{tab}_colorstroke"):
            if problem:
                gr.Markdown(f"**{problem}**")
            controls = [
                gr.Image(
                    label="Stroke layer (transparent PNG; transparent = no stroke)", type="numpy",
                    image_mode="RGBA", elem_id=f"{tab}_colorstroke_strokes",
                )
            ]
            canvas = forge_canvas()
            if canvas is not None:
                gr.Markdown("Or paint the strokes here, over your drawing as a guide (only the paint is used):")
                controls.append(canvas.foreground)
            gr.Markdown(HELP)
        return controls

    def before_process(self, p, *values):
        """Store this generation's strokes (the first input that has any) before ControlNet runs."""
        if glue is None:
            return
        glue.before_generation(p)
        layer = STROKES.set(*values)
        if layer is not None and layer[..., 3].min() == layer[..., 3].max():
            tell_once("the stroke layer has no transparent pixels, so all of it counts as strokes; send an RGBA PNG")

    def postprocess(self, p, processed, *values):
        if glue is not None:
            STROKES.clear()
