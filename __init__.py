"""ComfyUI entry point of the Color Stroke ControlNet package.

ComfyUI imports this folder as a package under whatever name it was cloned as and reads the two
mappings below. Importing it does no heavy work and needs no ComfyUI: ComfyUI modules are imported
inside the node functions that use them.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
