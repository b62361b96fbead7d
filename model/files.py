"""Reading tensors from checkpoint files and writing .safetensors files atomically.

Reading: ``.safetensors`` (its header is checked first, so an empty or truncated file is named as such),
and ``.ckpt``/``.pth``/``.pt``/``.bin`` only through ``torch.load(weights_only=True)``: a file that needs
arbitrary pickled objects is refused, never executed.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

from .errors import CheckpointError

SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")


def read_safetensors_header(path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Shapes and metadata of a .safetensors file, reading only its header (a few KB).

    Returns ({tensor name: shape}, {metadata key: value}). Raises CheckpointError for a missing, empty,
    truncated or corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{str(path)!r} is empty (0 bytes); the download or save did not finish: "
                              "get the file again")
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{str(path)!r} is truncated ({size} bytes, shorter than a safetensors header)")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise CheckpointError(f"{str(path)!r} is truncated or not a safetensors file: its header claims {length} "
                                  f"bytes but the file has {size}; get the file again")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{str(path)!r} is corrupt or not a safetensors file "
                              f"(its header is not JSON: {error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{str(path)!r} is corrupt: its safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    shapes, end = {}, 0
    for name, entry in header.items():
        try:
            shapes[name] = tuple(int(d) for d in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{str(path)!r} is corrupt: bad header entry for tensor {name!r}") from None
    if 8 + length + end > size:
        raise CheckpointError(f"{str(path)!r} is truncated: its tensors need {8 + length + end} bytes but the file has "
                              f"{size}; get the file again")
    return shapes, metadata if isinstance(metadata, dict) else {}


def _unwrap(state) -> dict:
    """The tensor dict inside a torch checkpoint (``state_dict`` / ``model`` wrappers are taken off)."""
    import torch

    for wrapper in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"the file holds a {type(state).__name__}, not a dict of tensors")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _check_torch_file(path: Path) -> None:
    """Raise CheckpointError unless ``path`` is a non-empty file with a torch checkpoint suffix."""
    suffix = path.suffix.lower()
    if suffix not in TORCH_SUFFIXES:
        raise CheckpointError(f"{str(path)!r}: unknown file type {suffix or '(none)'!r}; "
                              f"use .safetensors, or {', '.join(TORCH_SUFFIXES)}")
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{str(path)!r} is empty (0 bytes); the download or save did not finish: "
                              "get the file again")


def read_file_metadata(path) -> dict[str, str]:
    """The header metadata of a checkpoint file without reading its tensors: a .safetensors file's header
    metadata, {} for a torch file (they have none). CheckpointError for a missing, empty or unknown file."""
    path = Path(path)
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        return read_safetensors_header(path)[1]
    _check_torch_file(path)
    return {}


def read_tensors(path) -> tuple[dict, dict[str, str]]:
    """({name: CPU tensor}, header metadata) of a checkpoint file; metadata is {} for torch files."""
    import torch

    path = Path(path)
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        _, metadata = read_safetensors_header(path)
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), metadata
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{str(path)!r} is corrupt: {error}") from None
    _check_torch_file(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        text = str(error)
        if "weights_only" in text or "Unsupported global" in text or "Unpickl" in type(error).__name__:
            raise CheckpointError(
                f"{str(path)!r} needs Python pickle objects beyond tensors, which are never loaded here (they can run "
                "code). Convert it to .safetensors on a machine where you trust the file") from None
        raise CheckpointError(f"{str(path)!r} is truncated or corrupt ({type(error).__name__}: "
                              f"{text.splitlines()[0] if text else ''})") from None
    return _unwrap(state), {}


def _check_target(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot write {str(path)!r}: the folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write {str(path)!r}: no write permission in {str(folder)!r}; "
                              "choose another folder or fix its permissions")


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def current_umask() -> int:
    """The process's file-mode creation mask (read by setting it, and set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path, folder: bool = False) -> None:
    """Give a file (or ``folder``) made by ``tempfile`` (mode 0600 / 0700) the mode an ``open`` or ``mkdir`` would
    give it: 0666 / 0777 less the umask (0644 / 0755 under the usual 022), as torch.save writes (safetensors
    writes 0600 whatever the umask)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def atomic_save_safetensors(tensors: dict, path, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` with header ``metadata`` to ``path``: temp file in the same folder, fsync, rename.

    A failure at any point leaves a previous file at ``path`` untouched and no temp file behind.
    """
    from safetensors.torch import save_file

    path = Path(path)
    _check_target(path)
    try:
        descriptor, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise CheckpointError(f"cannot write {str(path)!r}: no write permission in {str(path.parent)!r}; "
                              "choose another folder or fix its permissions") from None
    os.close(descriptor)
    try:
        save_file(tensors, temp, metadata=metadata)
        honour_umask(temp)  # mkstemp made it private (and safetensors keeps that); a host's user reads it too
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path
