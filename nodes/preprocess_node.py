"""Color Stroke + Canny: a line drawing and painted strokes -> STROKE_HINT + IMAGE preview."""
from ..preprocessors import EDGE_SOURCES
from .common import CATEGORY, DEFAULT_BACKGROUND, MASK_MARKS, STROKE_HINT


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
        "reuse a hint, keep its drawing and stroke layer (the painter's layer is a PNG in input/colorstroke/): the hint "
        "is rebuilt from them in milliseconds.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "lineart": ("IMAGE", {"tooltip": "The line drawing (dark lines on light, or light on dark). Best at the "
                                                 "size you generate at: scale it first with Upscale Image if not. For "
                                                 "lines on transparency, join LoadImage's IMAGE and MASK with Join "
                                                 "Image with Alpha first. A batch of drawings gives a batch of hints."}),
                "edge_source": (list(EDGE_SOURCES), {"default": "canny", "tooltip": "canny: Canny edges of the drawing "
                                "(what the model was trained on). lineart: the drawing itself as the edge map (clean "
                                "line art only)."}),
                "low": ("INT", {"default": 100, "min": 0, "max": 1000, "step": 1, "tooltip": "Canny low threshold "
                        "(OpenCV units on 0-255 pixels). Lower keeps fainter lines. Ignored for edge_source lineart."}),
                "high": ("INT", {"default": 200, "min": 0, "max": 1000, "step": 1, "tooltip": "Canny high threshold; "
                         "must be >= low. Lower starts more lines. Ignored for edge_source lineart."}),
                "mask_marks": (list(MASK_MARKS), {"default": "no_stroke", "tooltip": "What white (1) in strokes_mask "
                               "means. no_stroke: LoadImage's MASK of a transparent PNG layer (1 = transparent, "
                               "0 = painted). stroke: 1 = stroke, e.g. a mask drawn over the strokes in the Mask "
                               "Editor. Ignored without strokes_mask."}),
                "background": ("STRING", {"default": DEFAULT_BACKGROUND, "widgetType": "COLORSTROKE_COLOR", "tooltip": "Only for a strokes image "
                               "with no alpha and no strokes_mask: pixels of this colour (#RRGGBB, within 2%) are not "
                               "strokes, e.g. #FFFFFF for strokes painted on a white canvas. Click the swatch to pick "
                               "one."}),
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
            },
        }

    def build(self, lineart, edge_source, low, high, mask_marks, background, resolution=0, strokes=None,
              strokes_mask=None):
        from .hint_batch import build_hints

        return build_hints(lineart, strokes, strokes_mask, low=low, high=high, edge_source=edge_source,
                           mask_marks=mask_marks, background=background, resolution=resolution)
