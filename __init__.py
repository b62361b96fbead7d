"""ComfyUI entry point of the Color Stroke ControlNet package.

ComfyUI imports this folder as a package under whatever name it was cloned as and reads the two
mappings below, and serves ``WEB_DIRECTORY`` (the painter's canvas and the colour picker) to its frontend.
Importing it does no heavy work and needs no ComfyUI: ComfyUI modules are imported inside the node
functions that use them.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
