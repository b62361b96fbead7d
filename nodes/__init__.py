"""ComfyUI glue: node classes over ``preprocessors`` and ``model``."""
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
