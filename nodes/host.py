"""Access to ComfyUI's own modules, imported only when a node runs inside ComfyUI."""
import logging
import sys

from .common import log

NOTICE_EVENT = "color_stroke.notice"  # web/color_stroke.js shows these as toasts


def comfy_nodes():
    """ComfyUI's top-level ``nodes`` module; it is always loaded before ComfyUI loads custom nodes.

    Looked up in ``sys.modules`` rather than imported: outside ComfyUI, ``import nodes`` could find
    this package's own ``nodes`` folder.
    """
    module = sys.modules.get("nodes")
    if module is None or not hasattr(module, "ControlNetApplyAdvanced"):
        raise RuntimeError("ComfyUI's nodes module is not loaded: this node runs inside ComfyUI only")
    return module


def tell(message: str, level: int = logging.WARNING) -> None:
    """Log ``message``; a warning is also shown on the ComfyUI page (a toast) when a ComfyUI server runs.

    The server is looked up in ``sys.modules``, as ``comfy_nodes`` looks up ``nodes``: no import outside ComfyUI.
    """
    log.log(level, "color stroke: %s", message)
    instance = getattr(getattr(sys.modules.get("server"), "PromptServer", None), "instance", None)
    if level >= logging.WARNING and instance is not None:
        instance.send_sync(NOTICE_EVENT, {"message": message})
