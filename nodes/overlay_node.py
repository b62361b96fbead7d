"""Lineart Overlay: multiply the original drawing over the decoded image, as colourists do."""
from .common import IMAGE_CATEGORY


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

        from .overlay import line_layer, multiply_lines

        lines = line_layer(lineart, invert)
        height, width = image.shape[1:3]
        if lines.shape[1:3] != (height, width):
            method = "area" if lines.shape[1] * lines.shape[2] > height * width else "bilinear"
            lines = comfy.utils.common_upscale(lines.movedim(-1, 1), width, height, method, "center").movedim(1, -1)
        return (multiply_lines(image, lines, opacity),)
