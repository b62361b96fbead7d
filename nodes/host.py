"""Access to ComfyUI's own modules, imported only when a node runs inside ComfyUI."""
import sys


def comfy_nodes():
    """ComfyUI's top-level ``nodes`` module; it is always loaded before ComfyUI loads custom nodes.

    Looked up in ``sys.modules`` rather than imported: outside ComfyUI, ``import nodes`` could find
    this package's own ``nodes`` folder.
    """
    module = sys.modules.get("nodes")
    if module is None or not hasattr(module, "ControlNetApplyAdvanced"):
        raise RuntimeError("ComfyUI's nodes module is not loaded: this node runs inside ComfyUI only")
    return module
