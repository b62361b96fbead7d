"""The Color Stroke node classes, as ComfyUI reads them (mappings in ``__init__.py``).

Importing this needs neither torch nor ComfyUI: the node functions import ``hint_tensors``,
``painter_files`` and ``comfy_host`` when they run. The painter's canvas is ``web/color_stroke.js``.
"""
import hashlib
import os

from ..preprocessors import (
    DEFAULT_CANNY,
    EDGE_POLARITIES,
    EDGE_SOURCES,
    FILL_GAP_HELP,
    FILL_HELP,
    MAX_FILL_GAP,
    UNRECORDED_EDGE_POLARITY,
    HintError,
    strokes_removed,
)
from ..preprocessors.stroke_layer import BACKGROUND_TOLERANCE
from .names import CATEGORY, DEFAULT_BACKGROUND, IMAGE_CATEGORY, MASK_MARKS, STROKE_HINT

CANVAS_WIDGET = "COLORSTROKE_CANVAS"  # web/color_stroke.js draws the strokes widget as the canvas
DRAWING_PREVIEW = "color_stroke_drawing"  # the ui key under which a run shows a wired drawing on the canvas


class ColorStrokePainter:
    DESCRIPTION = ("Paint colour strokes over a line drawing, right on the node: brush (colour, size, opacity), "
                   "eraser, eyedropper, undo/redo and clear. Outputs the drawing and the stroke layer for Color "
                   "Stroke + Canny. The layer is saved as a transparent PNG in input/colorstroke/, so a saved "
                   "workflow reopens with its strokes.")
    CATEGORY = CATEGORY
    FUNCTION = "paint"
    RETURN_TYPES = ("IMAGE", "IMAGE", "MASK")
    RETURN_NAMES = ("drawing", "strokes", "strokes_mask")
    OUTPUT_TOOLTIPS = (
        "The line drawing; connect it to lineart of Color Stroke + Canny (and to Lineart Overlay).",
        "The painted colours (black where nothing is painted); connect it to strokes.",
        "Where nothing is painted (1) and where strokes are (0), as Load Image's MASK of a transparent PNG; "
        "connect it to strokes_mask and keep mask_marks at no_stroke.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        import folder_paths

        from .painter_files import put_examples

        input_dir = folder_paths.get_input_directory()
        put_examples(input_dir)
        files = [name for name in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, name))]
        return {
            "required": {
                "image": (sorted(folder_paths.filter_files_content_types(files, ["image"])), {
                    "image_upload": True, "tooltip": "The line drawing (a file in ComfyUI's input folder; upload "
                    "one with the button). Ignored when the drawing input is connected. After painting on it in "
                    "the Mask Editor, its paint layer counts as strokes and the untouched drawing as the drawing."}),
                "strokes": ("STRING", {"default": "", "widgetType": CANVAS_WIDGET, "tooltip": "The stroke layer the "
                            "canvas saved (a transparent PNG in the input folder); empty for none. Paint on the canvas "
                            "to set it."}),
            },
            "optional": {
                "drawing": ("IMAGE", {"tooltip": "A drawing from another node (e.g. Load Image), used instead of "
                            "image. Paint at its size: the canvas shows it once it is known (a Load Image's file "
                            "at once, other nodes' images after a run)."}),
            },
        }

    def paint(self, image, strokes, drawing=None):
        import folder_paths

        from .comfy_host import save_preview
        from .painter_files import read_painting

        size = None if drawing is None else tuple(drawing.shape[1:3])
        picture, layer, mask = read_painting(folder_paths.get_input_directory(), image, strokes, size)
        if drawing is None:
            return (picture, layer, mask)
        return {"ui": {DRAWING_PREVIEW: [save_preview(drawing)]}, "result": (drawing, layer, mask)}

    @classmethod
    def IS_CHANGED(cls, image, strokes, drawing=None):
        import folder_paths

        from .painter_files import files_read

        digest = hashlib.sha256()
        for path in files_read(folder_paths.get_input_directory(), image, strokes):
            if path is None:
                continue
            with open(path, "rb") as file:
                digest.update(file.read())
        return digest.hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, image, strokes):
        import folder_paths

        from .painter_files import files_read

        try:
            files_read(folder_paths.get_input_directory(), image, strokes)
        except HintError as error:
            return f"Color Stroke Painter: {error}"
        return True


class ColorStrokeCanny:
    DESCRIPTION = ("Builds the 5-channel Color Stroke + Canny hint (edges + RGBA strokes) from a line drawing and "
                   "the colour strokes painted for it, and a preview of what the model sees.")
    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = (STROKE_HINT, "IMAGE")
    RETURN_NAMES = ("hint", "preview")
    OUTPUT_TOOLTIPS = (
        "The 5-channel hint [edge, R, G, B, A]; connect it to Apply Color Stroke ControlNet (not to image nodes).",
        "What the model sees: edges light grey on black with the strokes over them; for Preview/Save Image. To "
        "reuse a hint, keep its drawing and stroke layer (the painter's layer is a PNG in input/colorstroke/): the "
        "hint is rebuilt from them in milliseconds.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "lineart": ("IMAGE", {"tooltip": "The line drawing (dark lines on light, or light on dark). Best at "
                                                 "the size you generate at: scale it first with Upscale Image if not. "
                                                 "For lines on transparency, join LoadImage's IMAGE and MASK with Join "
                                                 "Image with Alpha first. A batch of drawings gives a batch of "
                                                 "hints."}),
                "edge_source": (list(EDGE_SOURCES), {"default": "canny", "tooltip": "canny: Canny edges of the drawing "
                                "(what the model was trained on). lineart: the drawing itself as the edge map (clean "
                                "line art only)."}),
                "low": ("INT", {"default": DEFAULT_CANNY.low, "min": 0, "max": 1000, "step": 1, "tooltip": "Canny low "
                        "threshold (OpenCV units on 0-255 pixels). Lower keeps fainter lines. Ignored for edge_source "
                        "lineart."}),
                "high": ("INT", {"default": DEFAULT_CANNY.high, "min": 0, "max": 1000, "step": 1, "tooltip": "Canny "
                         "high threshold; must be >= low. Lower starts more lines. Ignored for edge_source lineart."}),
                "mask_marks": (list(MASK_MARKS), {"default": "no_stroke", "tooltip": "What white (1) in strokes_mask "
                               "means. no_stroke: LoadImage's MASK of a transparent PNG layer (1 = transparent, "
                               "0 = painted). stroke: 1 = stroke, e.g. a mask drawn over the strokes in the Mask "
                               "Editor. Ignored without strokes_mask."}),
                "background": ("STRING", {"default": DEFAULT_BACKGROUND, "widgetType": "COLORSTROKE_COLOR",
                                          "tooltip": "Only for a strokes image with no transparency and no "
                                          f"strokes_mask: pixels of this colour (#RRGGBB, within "
                                          f"{BACKGROUND_TOLERANCE:.0%}) are not strokes, e.g. #FFFFFF for strokes "
                                          "painted on a white canvas; a plain border near it gives the exact shade "
                                          "(JPEG, off-white paper). Click the swatch to pick one."}),
                "resolution": ("INT", {"default": 0, "min": 0, "max": 16384, "step": 64, "tooltip": "0 keeps the "
                               "drawing's size. Otherwise the drawing's shorter side is scaled to this many pixels "
                               "before its edges are found, as comfyui_controlnet_aux's preprocessors do; the stroke "
                               "layer follows. Use the size you generate at (e.g. 512 for SD 1.5) to keep lines of the "
                               "thickness the model saw."}),
            },
            "optional": {
                "strokes": ("IMAGE", {"tooltip": "The colour strokes: a transparent PNG layer from LoadImage (connect "
                            "its MASK too), an RGBA image, or strokes on a plain background. Another size is stretched "
                            "to the drawing. Leave empty for edges only."}),
                "strokes_mask": ("MASK", {"tooltip": "Where the strokes are; read as mask_marks says. Usually "
                                 "LoadImage's MASK of the stroke layer. Wins over an alpha channel of strokes."}),
                "fill": ("BOOLEAN", {"default": True, "tooltip": FILL_HELP}),
                "fill_gap": ("INT", {"default": 0, "min": 0, "max": MAX_FILL_GAP, "step": 1, "tooltip": FILL_GAP_HELP}),
            },
        }

    def build(self, lineart, edge_source, low, high, mask_marks, background, resolution=0, strokes=None,
              strokes_mask=None, fill=True, fill_gap=0):
        from .hint_tensors import build_hints

        return build_hints(lineart, strokes, strokes_mask, low=low, high=high, edge_source=edge_source,
                           mask_marks=mask_marks, background=background, resolution=resolution, fill=fill,
                           fill_gap=fill_gap)


class LoadColorStrokeControlNet:
    DESCRIPTION = ("Loads a Color Stroke ControlNet from models/controlnet with ComfyUI's own loader, after checking "
                   "that it takes the 5-channel hint, and records the edge polarity it expects.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("CONTROL_NET",)
    RETURN_NAMES = ("control_net",)
    OUTPUT_TOOLTIPS = ("The ControlNet, for Apply Color Stroke ControlNet.",)

    @classmethod
    def INPUT_TYPES(cls):
        import folder_paths

        return {
            "required": {
                "control_net_name": (folder_paths.get_filename_list("controlnet"), {"tooltip": "A Color Stroke "
                                     "ControlNet file in models/controlnet."}),
                "polarity_if_unknown": (list(EDGE_POLARITIES), {"default": UNRECORDED_EDGE_POLARITY, "tooltip":
                                        "Edge polarity for a file that does not record it: black_on_white for the "
                                        "original colour-stroke model (black lines on white; the only such files "
                                        "without this project's metadata), white_on_black for a model trained with "
                                        "white-on-black edges whose metadata was stripped. Files that record it "
                                        "ignore this."}),
            },
        }

    def load(self, control_net_name, polarity_if_unknown):
        import folder_paths

        from .comfy_host import load_color_stroke

        path = folder_paths.get_full_path_or_raise("controlnet", control_net_name)
        return (load_color_stroke(path, polarity_if_unknown, control_net_name),)


class ApplyColorStrokeControlNet:
    DESCRIPTION = ("Attaches a Color Stroke ControlNet with its hint to the positive and negative conditioning, "
                   "exactly like the stock Apply ControlNet (it stacks with other ControlNets), after checking "
                   "that the model takes the 5-channel hint and turning the edges to the polarity it expects. "
                   "With stroke_guidance the negative side gets the drawing without strokes, so the KSampler's "
                   "CFG also amplifies the strokes' colour.")
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = ("The positive conditioning with the ControlNet attached.",
                       "The negative conditioning with the ControlNet attached.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": ("CONDITIONING", {"tooltip": "Positive conditioning (CLIP Text Encode, or the output of "
                             "another Apply ControlNet to stack them)."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative conditioning, as for positive."}),
                "control_net": ("CONTROL_NET", {"tooltip": "The model from Load Color Stroke ControlNet."}),
                "hint": (STROKE_HINT, {"tooltip": "The hint output of Color Stroke + Canny."}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01, "tooltip":
                             "How strongly the hint steers the image; 0 leaves the conditioning unchanged."}),
                "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip":
                                  "Fraction of the sampling steps after which the ControlNet starts acting."}),
                "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip":
                                "Fraction of the sampling steps after which the ControlNet stops acting."}),
            },
            "optional": {
                "vae": ("VAE", {"tooltip": "Not needed for SD 1.5 Color Stroke models; here for parity with the "
                        "stock node."}),
                "stroke_guidance": ("BOOLEAN", {"default": False, "tooltip": "Give the negative conditioning the "
                                    "drawing without the strokes: the KSampler's CFG then amplifies the strokes' "
                                    "colour as it amplifies the prompt (needs CFG above 1; the ControlNet runs "
                                    "twice per step instead of once for a batch)."}),
            },
        }

    def apply(self, positive, negative, control_net, hint, strength, start_percent, end_percent, vae=None,
              stroke_guidance=False):
        if strength == 0:
            return (positive, negative)
        from .comfy_host import comfy_nodes, guard_family
        from .hint_tensors import hint_for_model

        attach = comfy_nodes().ControlNetApplyAdvanced().apply_controlnet
        settings = (strength, start_percent, end_percent)
        if not stroke_guidance:
            positive, negative = attach(positive, negative, control_net, hint_for_model(hint, control_net), *settings,
                                        vae=vae)
        else:
            positive, _ = attach(positive, [], control_net, hint_for_model(hint, control_net), *settings, vae=vae)
            _, negative = attach([], negative, control_net, hint_for_model(strokes_removed(hint), control_net),
                                 *settings, vae=vae)
        for conditioning in (positive, negative):
            guard_family(conditioning, control_net)
        return (positive, negative)


class LineartOverlay:
    DESCRIPTION = "Multiplies the line drawing over the generated image so its lines stay crisp."
    CATEGORY = IMAGE_CATEGORY
    FUNCTION = "overlay"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The image with the lines multiplied over it.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The generated image (VAE Decode)."}),
                "lineart": ("IMAGE", {"tooltip": "The line drawing given to Color Stroke + Canny (RGBA is put on "
                            "white). Another size is centre-cropped and scaled to the image the way ControlNet "
                            "scaled the hint."}),
                "opacity": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                            "Strength of the multiply: 1 = lines at full darkness, 0 = image unchanged."}),
                "invert": ("BOOLEAN", {"default": False, "tooltip": "Turn on for light lines on a dark background."}),
            },
        }

    def overlay(self, image, lineart, opacity, invert):
        import comfy.utils

        from .hint_tensors import line_layer, multiply_lines

        lines = line_layer(lineart, invert)
        height, width = image.shape[1:3]
        if lines.shape[1:3] != (height, width):
            method = "area" if lines.shape[1] * lines.shape[2] > height * width else "bilinear"
            lines = comfy.utils.common_upscale(lines.movedim(-1, 1), width, height, method, "center").movedim(1, -1)
        return (multiply_lines(image, lines, opacity),)
