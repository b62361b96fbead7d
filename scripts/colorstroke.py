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
    "Pick the preprocessor **colorstroke_canny** and a Color Stroke model in a ControlNet unit: the unit lists "
    "only models whose file name contains `colorstroke`, such as `control_colorstroke_sd15.safetensors`. A "
    "model that does not record its edge polarity is taken as the original colour-stroke model (black-on-white "
    "edges); pick **colorstroke_canny_white_on_black** for one trained with white-on-black edges. Give the unit "
    "the line drawing, and the colour strokes here as a transparent PNG: transparent pixels mean \"no stroke\". "
    "Strokes on a plain background (e.g. white) also work: that colour then means \"no stroke\". The layer is "
    "stretched to the drawing's size."
)


def detect_host() -> str | None:
    if importlib.util.find_spec("modules_forge") is not None:
        return FORGE
    if importlib.util.find_spec("internal_controlnet") is not None:  # imported by sd-webui-controlnet
        return SD_WEBUI_CONTROLNET
    return None


HOST, glue, problem = detect_host(), None, None
try:
    from preprocessors import HintError
    from scripts.colorstroke_lib import tell_once
    from scripts.colorstroke_lib.store import STROKES, describe

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


def stop_generation(p, error: Exception) -> None:
    """Make the generation ``p`` fail with ``error`` rather than run without the strokes the person gave.

    The hosts catch every exception of a script's hooks (``ScriptRunner.before_process``, ``process``, ...
    in modules/scripts.py report it to the console and go on), so raising in a hook only prints it.
    ``process_images_inner`` calls ``p.init`` unguarded after the scripts' ``process``: replaced on this
    one ``p``, it raises there, so the UI shows the error and an API call answers with it (HTTP 500).
    """
    message = f"Color Stroke: {error}"
    print(f"[Color Stroke] {error}")

    def refuse(*args, **kwargs):
        raise HintError(message)

    p.init = refuse


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
            upload = gr.Image(
                label="Stroke layer (transparent PNG, or strokes on a plain background)", type="numpy",
                image_mode="RGBA", elem_id=f"{tab}_colorstroke_strokes",
            )
            if glue is not None:  # how the layer will be read, or why it cannot be, as soon as it is given
                status = gr.Markdown("", elem_id=f"{tab}_colorstroke_status")
                upload.change(fn=describe, inputs=[upload], outputs=[status])
            controls = [upload]
            canvas = forge_canvas()
            if canvas is not None:
                gr.Markdown("Or paint the strokes here, over your drawing as a guide (only the paint is used):")
                controls.append(canvas.foreground)
            gr.Markdown(HELP)
        return controls

    def before_process(self, p, *values):
        """Store this generation's strokes (the first input that has any) before ControlNet runs.

        A layer that cannot be used (see ``store``) stops the generation with the reason; no layer at
        all generates without strokes. An opaque layer read by its background colour is noted once.
        """
        if glue is None:
            return
        glue.before_generation(p)
        try:
            layer = STROKES.set(*values)
        except HintError as error:
            stop_generation(p, error)
            return
        if layer is not None and layer.background is not None:
            colour = "#{:02x}{:02x}{:02x}".format(*layer.background)
            tell_once(f"the stroke layer has no transparency: its plain background {colour} counts as no stroke")

    def postprocess(self, p, processed, *values):
        if glue is not None:
            STROKES.clear()
