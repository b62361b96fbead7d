"""Load Color Stroke ControlNet: ComfyUI's ControlNet loader, after checking the file is ours."""
from ..preprocessors import EDGE_POLARITIES, UNRECORDED_EDGE_POLARITY
from .common import CATEGORY


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

        from .checkpoint import load_color_stroke

        path = folder_paths.get_full_path_or_raise("controlnet", control_net_name)
        return (load_color_stroke(path, polarity_if_unknown, control_net_name),)
