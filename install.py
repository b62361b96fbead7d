"""Install the runtime requirements that are missing, with the running interpreter's pip.

A1111/Forge run this at every start and ComfyUI-Manager once after cloning, so it is idempotent and
fast when nothing is missing: a requirement counts as present when its module imports (OpenCV from
any of its wheels provides ``cv2``). It never installs or upgrades torch: the host owns torch.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

REQUIREMENTS = pathlib.Path(__file__).resolve().parent / "requirements.txt"
# distribution name -> module it provides, where they differ
MODULE_OF = {"opencv-python-headless": "cv2", "opencv-python": "cv2", "pillow": "PIL", "pyyaml": "yaml"}


def requirements(path: pathlib.Path = REQUIREMENTS) -> list[str]:
    """The requirement lines of ``path``, without comments; torch is refused outright."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    wanted = [line for line in lines if line]
    for line in wanted:
        if distribution_name(line) in ("torch", "torchvision", "torchaudio"):
            raise SystemExit(f"{path} lists {line}: the host's own torch must not be replaced")
    return wanted


def distribution_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def missing(wanted: list[str]) -> list[str]:
    """The requirements whose module cannot be found by this interpreter."""
    def module(requirement: str) -> str:
        name = distribution_name(requirement)
        return MODULE_OF.get(name, name.replace("-", "_"))

    return [requirement for requirement in wanted if importlib.util.find_spec(module(requirement)) is None]


def main() -> None:
    needed = missing(requirements())
    if needed:
        print(f"[color-stroke] installing {', '.join(needed)}")
        subprocess.check_call([sys.executable, "-m", "pip", "install", *needed])


if __name__ == "__main__":  # A1111, Forge and ComfyUI-Manager all run it as a script
    main()
