"""Caption + image-URL tables (Conceptual Captions style), downloaded inside the DataLoader workers.

Each worker process keeps its own keep-alive HTTP(S) connections (one per host): its "session". A
download has a connect timeout and a per-read timeout plus an overall deadline, is retried with
exponential backoff on connection errors, timeouts, 429 and 5xx, stops at a byte cap, and must decode
as an image (PIL, fully loaded) before it is stored in the on-disk cache. A link that fails for good
is remembered in the cache as dead, raises ``SampleSkipped(DEAD_LINK)`` and is counted by the trainer;
it never stops training.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import io
import os
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .decode import DEAD_LINK, UNREADABLE, SampleSkipped, open_pil
from .sources import DataError

_REDIRECTS = (301, 302, 303, 307, 308)
_RETRYABLE = (429, 500, 502, 503, 504)


def read_url_table(path, url_column: str = "url", caption_column: str = "text") -> list[tuple[str, str | None]]:
    """(url, caption) rows of a .tsv/.csv/.parquet table.

    A header row naming ``url_column`` is used when present; a headerless 2-column TSV is read as
    caption<TAB>url (Conceptual Captions). Parquet needs pyarrow or pandas.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"URL table {str(path)!r} does not exist")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError("reading a .parquet URL table needs pyarrow: pip install pyarrow") from None
        table = pq.read_table(path).to_pydict()
        if url_column not in table:
            raise DataError(f"{str(path)!r} has no column {url_column!r}; columns: {sorted(table)}")
        captions = table.get(caption_column, [None] * len(table[url_column]))
        return [(u, c) for u, c in zip(table[url_column], captions, strict=True) if u]
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    if not rows:
        raise DataError(f"URL table {str(path)!r} is empty")
    if url_column in rows[0]:
        url_at = rows[0].index(url_column)
        caption_at = rows[0].index(caption_column) if caption_column in rows[0] else None
        body = rows[1:]
    elif len(rows[0]) == 2 and rows[0][1].startswith(("http://", "https://")):
        url_at, caption_at, body = 1, 0, rows
    else:
        raise DataError(
            f"{str(path)!r}: no {url_column!r} column in the header {rows[0]} and not a caption<TAB>url table; "
            "set --url_column/--caption_column"
        )
    records = [(row[url_at], row[caption_at] if caption_at is not None else None) for row in body if len(row) > url_at]
    if not records:
        raise DataError(f"URL table {str(path)!r} has no rows")
    return records


class UrlFetcher:
    """Downloads images with per-process keep-alive connections, retries, a byte cap and a disk cache."""

    def __init__(self, cache_dir, connect_timeout: float = 5.0, read_timeout: float = 10.0, retries: int = 2,
                 max_bytes: int = 20_000_000, backoff: float = 0.5):
        self.cache_dir = Path(cache_dir)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.retries, self.max_bytes, self.backoff = retries, max_bytes, backoff
        self._connections, self._pid = {}, None

    def __getstate__(self):
        return {**self.__dict__, "_connections": {}, "_pid": None}

    def _cache_path(self, url: str) -> Path:
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / digest

    def fetch(self, url: str):
        """The image at ``url`` as a loaded PIL image; SampleSkipped(DEAD_LINK) when it cannot be had."""
        cached = self._cache_path(url)
        if cached.with_suffix(".dead").exists():
            raise SampleSkipped(DEAD_LINK, f"{url} (failed before)")
        if cached.is_file():
            try:
                return open_pil(cached.read_bytes())
            except SampleSkipped:
                cached.unlink(missing_ok=True)  # a damaged cache entry: fetch again
        try:
            data = self._download(url)
            image = open_pil(data)
        except SampleSkipped as error:
            self._store(cached.with_suffix(".dead"), str(error).encode("utf-8"))
            raise SampleSkipped(DEAD_LINK, f"{url}: {error}") from None
        self._store(cached, data)
        return image

    def _store(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, path)

    def _download(self, url: str) -> bytes:
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._get(url)
            except _Retry as error:
                last = str(error)
            except (OSError, http.client.HTTPException) as error:  # timeouts, refused, reset, bad status line
                self._drop(url)
                last = f"{type(error).__name__}: {error}"
        raise SampleSkipped(DEAD_LINK, f"after {self.retries + 1} attempts: {last}")

    def _connection(self, url: str):
        if self._pid != os.getpid():  # a forked worker must not share its parent's sockets
            self._connections, self._pid = {}, os.getpid()
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._connections:
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(parts.netloc, timeout=self.connect_timeout,
                                                         context=ssl.create_default_context())
            elif parts.scheme == "http":
                connection = http.client.HTTPConnection(parts.netloc, timeout=self.connect_timeout)
            else:
                raise SampleSkipped(DEAD_LINK, f"unsupported URL scheme in {url!r}")
            connection.connect()
            connection.sock.settimeout(self.read_timeout)
            self._connections[key] = connection
        return self._connections[key]

    def _drop(self, url: str) -> None:
        parts = urlsplit(url)
        connection = self._connections.pop((parts.scheme, parts.netloc), None)
        if connection is not None:
            connection.close()

    def _get(self, url: str, redirects: int = 5) -> bytes:
        allowed = self.connect_timeout + 4 * self.read_timeout  # seconds for the whole download
        deadline = time.monotonic() + allowed
        parts = urlsplit(url)
        connection = self._connection(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers={"User-Agent": "color-stroke-controlnet-trainer", "Accept": "image/*"})
        response = connection.getresponse()
        status = response.status
        if status in _REDIRECTS and redirects > 0 and response.getheader("Location"):
            response.read()
            return self._get(urljoin(url, response.getheader("Location")), redirects - 1)
        if status in _RETRYABLE:
            response.read()
            raise _Retry(f"HTTP {status}")
        if status != 200:
            response.read()
            raise SampleSkipped(DEAD_LINK, f"HTTP {status}")
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            self._drop(url)
            raise SampleSkipped(DEAD_LINK, f"{length} bytes is over the cap of {self.max_bytes}")
        body = io.BytesIO()
        while True:
            chunk = response.read(65536)
            if not chunk:
                break
            body.write(chunk)
            if body.tell() > self.max_bytes:
                self._drop(url)
                raise SampleSkipped(DEAD_LINK, f"more than the cap of {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                self._drop(url)
                raise socket.timeout(f"download took longer than {allowed:.0f} s")
        if response.will_close:
            self._drop(url)
        if length and length.isdigit() and body.tell() < int(length):
            raise SampleSkipped(UNREADABLE, f"got {body.tell()} of {length} bytes")
        return body.getvalue()


class _Retry(Exception):
    """A response worth trying again (429, 5xx)."""


class UrlTableSource:
    """A caption + image-URL table; ``load`` downloads (or reads from the cache) in the calling worker."""

    def __init__(self, table, fetcher: UrlFetcher, url_column: str = "url", caption_column: str = "text"):
        self.records = read_url_table(table, url_column, caption_column)
        self.fetcher = fetcher

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int):
        url, caption = self.records[index]
        return self.fetcher.fetch(url), caption
