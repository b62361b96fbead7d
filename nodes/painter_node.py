"""Color Stroke Painter: a drawing and the strokes painted over it on the node's own canvas.

The canvas is ``web/color_stroke_painter.js``: it shows the drawing, paints a transparent stroke layer at
the drawing's pixel size, uploads it to ``input/colorstroke/`` through ComfyUI's upload route and keeps
its name in the ``strokes`` widget, so a saved workflow (and an API prompt) names the layer file.
"""
import hashlib
import os

from .common import CATEGORY

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
                "strokes": ("STRING", {"default": "", "widgetType": CANVAS_WIDGET, "tooltip": "The stroke layer the canvas saved (a transparent "
                            "PNG in the input folder); empty for none. Paint on the canvas to set it."}),
            },
            "optional": {
                "drawing": ("IMAGE", {"tooltip": "A drawing from another node (e.g. Load Image), used instead of "
                            "image. Paint at its size: the canvas shows it once it is known (a Load Image's file "
                            "at once, other nodes' images after a run)."}),
            },
        }

    def paint(self, image, strokes, drawing=None):
        import folder_paths

        from .painter_files import read_painting

        picture, layer, mask = read_painting(folder_paths.get_input_directory(), image, strokes)
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

        from ..preprocessors import HintError
        from .painter_files import files_read

        try:
            files_read(folder_paths.get_input_directory(), image, strokes)
        except HintError as error:
            return f"Color Stroke Painter: {error}"
        return True


def save_preview(drawing) -> dict:
    """The first image of an IMAGE batch saved to ComfyUI's temp folder; its reference for /view."""
    import folder_paths
    from PIL import Image

    from .hint_batch import to_uint8

    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        "color_stroke_drawing", folder_paths.get_temp_directory(), drawing.shape[2], drawing.shape[1])
    filename = f"{name}_{counter:05}_.png"
    Image.fromarray(to_uint8(drawing[:1, ..., :3])[0]).save(os.path.join(folder, filename), compress_level=1)
    return {"filename": filename, "subfolder": subfolder, "type": "temp"}
