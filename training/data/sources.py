"""Local data sources: an image folder, a Hugging Face dataset, webdataset tar shards.

A source is a map-style list of records: ``len(source)`` and ``source.load(i) -> (image, caption)``
where image is bytes, a path or a PIL image (``decode.decode_rgb`` reads all three) and caption is a
str or None when the sample has none. Sources are picklable so DataLoader workers can use them; file
handles are opened lazily in each worker.
"""
from __future__ import annotations

import csv
import json
import re
import tarfile
from pathlib import Path

from .decode import MISSING, SampleSkipped

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class DataError(ValueError):
    """Data that cannot be trained on at all (nothing found, a bad table); says what to fix."""


class FolderSource:
    """Images under ``root`` (recursively) with captions from ``NAME.txt`` beside each image, or from
    ``metadata.jsonl`` / ``metadata.csv`` in ``root`` (column ``file_name`` or ``image_column`` holding the
    path relative to root, and ``caption_column``). A metadata file wins over sidecar files."""

    def __init__(self, root, image_column: str = "image", caption_column: str = "text"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"data folder {str(self.root)!r} does not exist; pass --data FOLDER with your images")
        captions = self._read_metadata(image_column, caption_column)
        if captions is not None:
            self.records = [(self.root / name, caption) for name, caption in captions]
        else:
            files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            self.records = [(path, None) for path in files]
        if not self.records:
            raise DataError(
                f"no images found in {str(self.root)!r} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively, "
                "or a metadata.jsonl/metadata.csv); put training images there"
            )

    def _read_metadata(self, image_column: str, caption_column: str):
        for name in ("metadata.jsonl", "metadata.csv"):
            path = self.root / name
            if not path.is_file():
                continue
            with open(path, encoding="utf-8", newline="") as handle:
                if name.endswith(".jsonl"):
                    rows = [json.loads(line) for line in handle if line.strip()]
                else:
                    rows = list(csv.DictReader(handle))
            key = "file_name" if rows and "file_name" in rows[0] else image_column
            if rows and key not in rows[0]:
                raise DataError(f"{str(path)!r} has no 'file_name' or {image_column!r} column; columns: "
                                f"{sorted(rows[0])}")
            return [(row[key], row.get(caption_column)) for row in rows]
        return None

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int):
        path, caption = self.records[index]
        if caption is None:
            sidecar = path.with_suffix(".txt")
            caption = sidecar.read_text(encoding="utf-8", errors="replace").strip() if sidecar.is_file() else None
        return path, caption


class HFSource:
    """A Hugging Face dataset: a folder written by ``save_to_disk``, or a name/path for ``load_dataset``.

    Needs the optional ``datasets`` package. The image column holds PIL images (or bytes / paths).
    """

    def __init__(self, name_or_path: str, split: str = "train", image_column: str = "image",
                 caption_column: str = "text"):
        try:
            import datasets
        except ImportError:
            raise DataError("--data_source hf needs the 'datasets' package: pip install datasets") from None
        path = Path(name_or_path)
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            data = datasets.load_from_disk(str(path))
            if isinstance(data, datasets.DatasetDict):
                if split not in data:
                    raise DataError(f"dataset {name_or_path!r} has no split {split!r}; splits: {list(data)}")
                data = data[split]
        else:
            data = datasets.load_dataset(name_or_path, split=split)
        missing = [c for c in (image_column, caption_column) if c not in data.column_names]
        if image_column in missing:
            raise DataError(f"dataset {name_or_path!r} has no column {image_column!r}; columns: {data.column_names}")
        if len(data) == 0:
            raise DataError(f"dataset {name_or_path!r} split {split!r} is empty")
        self.data, self.image_column = data, image_column
        self.caption_column = None if missing else caption_column

    def __len__(self) -> int:
        return len(self.data)

    def load(self, index: int):
        row = self.data[int(index)]
        image = row[self.image_column]
        if isinstance(image, dict):  # an undecoded Image feature: {"bytes": ..., "path": ...}
            image = image.get("bytes") or image.get("path")
        caption = row.get(self.caption_column) if self.caption_column else None
        return image, caption


def expand_braces(pattern: str) -> list[str]:
    """Expand webdataset brace patterns: ``a-{000..002}.tar`` -> a-000.tar, a-001.tar, a-002.tar;
    ``{x,y}`` lists alternatives. Zero padding follows the first number's width."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail, body = pattern[: match.start()], pattern[match.end() :], match.group(1)
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        first, last = span.groups()
        options = [str(n).zfill(len(first)) for n in range(int(first), int(last) + 1)]
    else:
        options = body.split(",")
    return [expanded for option in options for expanded in expand_braces(head + option + tail)]


class WebDatasetSource:
    """webdataset tar shards (local paths, brace patterns, several separated by spaces or '::').

    A sample is the tar members sharing a key (the member path up to the first dot of its file name);
    its image is the first member whose extension is in ``image_exts`` and its caption the member
    with extension ``caption_ext`` (or a .json member's ``caption_ext`` field). The shards are indexed
    once, without reading image data.
    """

    def __init__(self, patterns: str, image_exts: str = "jpg;jpeg;png;webp", caption_ext: str = "txt"):
        paths = [p for part in re.split(r"\s+|::", patterns.strip()) if part for p in expand_braces(part)]
        missing = [p for p in paths if not Path(p).is_file()]
        if not paths or missing:
            raise DataError(f"webdataset shards not found: {missing or patterns!r}; give tar files or a brace pattern")
        self.image_exts = [e.strip().lower() for e in re.split(r"[;,]", image_exts) if e.strip()]
        self.caption_ext = caption_ext
        self.records = []
        for path in paths:
            try:
                self.records.extend(self._index(path))
            except tarfile.TarError as error:
                raise DataError(f"{path!r} is not a readable tar shard: {error}") from None
        if not self.records:
            raise DataError(f"no samples with an image ({', '.join(self.image_exts)}) in the shards {paths}")
        self._open = {}

    def _index(self, path: str):
        groups = {}
        with tarfile.open(path) as archive:
            for member in archive:
                if not member.isfile():
                    continue
                folder, _, name = member.name.rpartition("/")
                stem, dot, ext = name.partition(".")
                if dot:
                    groups.setdefault(f"{folder}/{stem}", {})[ext.lower()] = (member.offset_data, member.size)
        for members in groups.values():
            image = next((members[e] for e in self.image_exts if e in members), None)
            if image is not None:
                caption = members.get(self.caption_ext) or members.get("json")
                yield path, image, caption, self.caption_ext in members

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self):
        return {**self.__dict__, "_open": {}}

    def _read(self, path: str, span) -> bytes:
        handle = self._open.get(path) or self._open.setdefault(path, open(path, "rb"))
        handle.seek(span[0])
        return handle.read(span[1])

    def load(self, index: int):
        path, image_span, caption_span, plain_caption = self.records[index]
        image = self._read(path, image_span)
        caption = None
        if caption_span is not None:
            text = self._read(path, caption_span).decode("utf-8", errors="replace")
            caption = text.strip() if plain_caption else json.loads(text).get(self.caption_ext)
        if not image:
            raise SampleSkipped(MISSING, f"empty image member in {path}")
        return image, caption
