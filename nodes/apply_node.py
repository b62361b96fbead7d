"""Apply Color Stroke ControlNet: the stock ControlNetApplyAdvanced for a STROKE_HINT."""
from .common import CATEGORY, STROKE_HINT


class ApplyColorStrokeControlNet:
    DESCRIPTION = ("Attaches a Color Stroke ControlNet with its hint to the positive and negative conditioning, "
                   "exactly like the stock Apply ControlNet (it stacks with other ControlNets), after checking "
                   "that the model takes the 5-channel hint and turning the edges to the polarity it expects.")
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
            },
        }

    def apply(self, positive, negative, control_net, hint, strength, start_percent, end_percent, vae=None):
        if strength == 0:
            return (positive, negative)
        from .host import comfy_nodes
        from .model_hint import hint_for_model

        image = hint_for_model(hint, control_net)
        return comfy_nodes().ControlNetApplyAdvanced().apply_controlnet(
            positive, negative, control_net, image, strength, start_percent, end_percent, vae=vae)
