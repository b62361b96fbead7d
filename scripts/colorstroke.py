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
    "In a ControlNet unit, pick the Control Type **ColorStroke** (preprocessor **colorstroke_canny**) and a Color "
    "Stroke model: the unit lists only models whose file name contains `colorstroke`, such as "
    "`control_colorstroke_sd15.safetensors`. Give the unit the line drawing: black lines on white or white lines "
    "on black both work, since the preprocessor finds the edges either way (the ControlNet tab's advice to pick "
    "an [invert] preprocessor does not apply here). Give the colour strokes here, as a PNG whose transparent "
    "pixels mean \"no stroke\", or as strokes on a plain (e.g. white) background, which then means \"no "
    "stroke\". Paint them on a layer of the drawing's size: another size is scaled, another aspect stretched "
    "(the generation info says so). A model that does not record its edge polarity is taken as the original "
    "colour-stroke model (black-on-white edges); pick **colorstroke_canny_white_on_black** for one trained with "
    "white-on-black edges. If a unit cannot give the Color Stroke control asked for, the generation stops and "
    "says why, rather than return an image without it."
)
STROKE_GUIDANCE_HELP = (
    "The negative side gets the drawing without the strokes, so CFG amplifies the strokes' colour as it amplifies "
    "the prompt. Needs a CFG scale above 1; the ControlNet runs twice per step. Forge only (docs/webui.md says why "
    "A1111's ControlNet cannot)."
)
FORGE_CANVAS_HELP = (
    "Or paint the strokes on this canvas (only the paint is used): first drop or upload your drawing into it as "
    "a guide, then paint. Sizes are in screen pixels; the brush starts at the smallest."
)


def detect_host() -> str | None:
    if importlib.util.find_spec("modules_forge") is not None:
        return FORGE
    if importlib.util.find_spec("internal_controlnet") is not None:  # imported by sd-webui-controlnet
        return SD_WEBUI_CONTROLNET
    return None


CONTROLNET_FAILED = (
    "sd-webui-controlnet is installed but its script did not load (the console shows why, often a package "
    "version it cannot use): Color Stroke ControlNet needs it. Fix that and restart the WebUI."
)
NO_CONTROLNET = "sd-webui-controlnet is not installed (or did not load): install it to use Color Stroke ControlNet."

HOST, glue, problem = detect_host(), None, None
try:
    from preprocessors import FILL_GAP_HELP, FILL_HELP, MAX_FILL_GAP, HintError
    from scripts.colorstroke_lib import tell_once
    from scripts.colorstroke_lib.generation import GENERATION
    from scripts.colorstroke_lib.hints import DEFAULT_PREPROCESSOR
    from scripts.colorstroke_lib.store import STROKES, describe
    from scripts.colorstroke_lib.unit_model import sampled_base

    if HOST == FORGE:
        from scripts.colorstroke_lib import forge_glue as glue
    elif HOST == SD_WEBUI_CONTROLNET:
        from scripts.colorstroke_lib import cn_glue as glue

        if not glue.controlnet_script_loaded():
            glue, problem = None, CONTROLNET_FAILED
    else:
        problem = NO_CONTROLNET
    if glue is not None:
        glue.register()
        script_callbacks.on_script_unloaded(glue.on_unload)
except Exception as error:  # never break the host's UI: report and stay inert
    glue, problem = None, f"Color Stroke ControlNet could not start: {type(error).__name__}: {error}"
    print(f"[Color Stroke] {problem}")
else:
    if problem:
        tell_once(problem)


def check_before_sampling(p, check) -> None:
    """Make the generation ``p`` fail with the message ``check()`` returns (None: go on) as it starts sampling;
    ``check`` prints what it finds to the console itself.

    The hosts catch every exception of a script's hooks (``ScriptRunner.before_process``, ``process``, ...
    in modules/scripts.py report it to the console and go on), so raising in a hook only prints it.
    ``process_images_inner`` calls ``p.init`` unguarded after every script's ``process`` (ControlNet's
    included): replaced on this one ``p``, it raises there, so the UI shows the error and an API call
    answers with it (HTTP 500).
    """
    original = p.init

    def init(*args, **kwargs):
        message = check()
        if message:
            raise HintError(f"Color Stroke: {message}")
        return original(*args, **kwargs)

    p.init = init


def stop_generation(p, error: Exception) -> None:
    """Make the generation ``p`` fail with ``error`` rather than run without what the person asked for."""
    print(f"[Color Stroke] {error}")
    check_before_sampling(p, lambda: str(error))


def family_mismatch(p, requests) -> str | None:
    """As sampling starts: why a unit's model does not fit the checkpoint being sampled (another base family), or
    None. Checked here and not before the generation: an API call's ``override_settings`` loads its checkpoint
    after the scripts' ``before_process``."""
    base = sampled_base(getattr(p, "sd_model", None))
    for unit in requests or ():
        try:
            glue.check(unit, base)
        except HintError as error:
            print(f"[Color Stroke] {error}")
            return str(error)
    return None


def before_sampling(p) -> str | None:
    """As sampling starts, once ControlNet has run: why the generation must stop (a Color Stroke unit whose
    hint never reached ControlNet), or None after putting this generation's notes in its infotext, which the
    page shows under the image and the API returns in ``info``."""
    shortfall = GENERATION.shortfall()
    if shortfall is not None:
        print(f"[Color Stroke] {shortfall}")
    elif GENERATION.notes:
        p.extra_generation_params["Color Stroke"] = "; ".join(GENERATION.notes)
        for note in GENERATION.notes:
            tell_once(note)
    return shortfall


def forge_canvas():
    """Forge's painting canvas (Forge only), whose foreground layer keeps the painted colours.

    Forge's brush width is ``scribble_width`` x 20 screen pixels: the smallest (1) is the default.
    """
    from modules_forge.forge_canvas.canvas import ForgeCanvas

    return ForgeCanvas(numpy=True, height=512, scribble_color="#ff0000", scribble_width=1)


def option_controls(tab: str) -> list:
    """The fill checkbox and gap slider (``store.fill_options`` reads them); on Forge the stroke guidance checkbox
    (``store.guidance_option``)."""
    controls = [
        gr.Checkbox(label="Fill between the lines", value=True, info=FILL_HELP, elem_id=f"{tab}_colorstroke_fill"),
        gr.Slider(label="Fill gap (pixels, 0 = by the drawing's size)", minimum=0, maximum=MAX_FILL_GAP, step=1,
                  value=0, info=FILL_GAP_HELP, elem_id=f"{tab}_colorstroke_fill_gap"),
    ]
    if HOST == FORGE:
        controls.append(gr.Checkbox(label="Stroke guidance", value=False, info=STROKE_GUIDANCE_HELP,
                                    elem_id=f"{tab}_colorstroke_stroke_guidance"))
    return controls


def note_guidance(p) -> None:
    """Say beside the image that this generation uses stroke guidance, and when its CFG scale leaves it nothing
    to do."""
    GENERATION.note("stroke guidance (the negative side has the drawing without strokes)")
    if getattr(p, "cfg_scale", 7.0) <= 1:
        GENERATION.note(f"stroke guidance does nothing at CFG scale {p.cfg_scale:g}: it works through CFG, raise it "
                        "above 1")


class ColorStrokeScript(scripts.Script):
    # Forge orders sections by it: right after its ControlNet (10), before its next built-in (11)
    sorting_priority = 10.5

    def title(self):
        return "Color Stroke"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        """Inputs, in API order (``store.ARGS``): [stroke layer (RGBA image / base64 PNG), fill (bool), fill gap
        (int pixels), Forge only: stroke guidance (bool), canvas foreground]."""
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
            canvas = None
            if HOST == FORGE:
                gr.Markdown(FORGE_CANVAS_HELP)
                canvas = forge_canvas().foreground
            options = [] if glue is None else option_controls(tab)  # they need the package, which did not load
            gr.Markdown(HELP)
        return [upload, *options] + ([] if canvas is None else [canvas])

    def before_process(self, p, *values):
        """Store this generation's strokes (the first input that has any) and check its ControlNet units,
        before ControlNet runs; check, as sampling starts, that every Color Stroke unit reached ControlNet.

        A layer that cannot be used (see ``store``) or a unit that cannot give the control it asks for
        (``generation.check_unit``) stops the generation with the reason; no layer at all generates without
        strokes. What the person should know (the reading's warnings, such as an opaque layer read by its
        background colour; strokes no unit uses; a stretched layer) goes to the generation's infotext and,
        once, to the console.
        """
        if glue is None:
            return
        glue.before_generation(p)
        try:
            requests = glue.units(p)
        except Exception as error:  # a host version whose units we cannot read: its ControlNet still runs
            tell_once(f"cannot read the ControlNet units ({type(error).__name__}: {error}); not checking them")
            requests = None
        GENERATION.start(requests or ())
        try:
            layer = STROKES.set(*values)
            for unit in requests or ():
                glue.check(unit, None)  # each model against its own family: the checkpoint may not be loaded yet
        except HintError as error:
            stop_generation(p, error)
            return
        check_before_sampling(p, lambda: family_mismatch(p, requests) or before_sampling(p))
        if layer is not None and requests is not None and not GENERATION.expected:
            GENERATION.note(f"strokes were given but no ControlNet unit uses the preprocessor {DEFAULT_PREPROCESSOR}, "
                            "so they were not used")
        for warning in () if layer is None else layer.warnings:
            GENERATION.note(warning)
        if STROKES.guided and GENERATION.expected:
            note_guidance(p)

    def postprocess(self, p, processed, *values):
        if glue is not None:
            STROKES.clear()
            GENERATION.start(())
