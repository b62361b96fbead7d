"""The caption + URL source against a local HTTP server on 127.0.0.1: good images, a 404, a slow
endpoint (timeout), a truncated JPEG and a flaky 503; dead links are skipped and counted, never fatal."""
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from PIL import Image

from tests.helpers import colourful
from training.data import DEAD_LINK, SampleSpec, TrainDataset, UrlFetcher, UrlTableSource, collate, read_url_table


def jpeg(seed):
    buffer = io.BytesIO()
    Image.fromarray(colourful(seed)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def server():
    """A bounded local image server; yields (base_url, hit counter per path)."""
    good = {"/good0.jpg": jpeg(0), "/good1.jpg": jpeg(1)}
    full = jpeg(2)
    hits = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, body=b"", length=None):
            self.send_response(status)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the slow image's read timeout): what the test wants

        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            if self.path in good:
                self.send(200, good[self.path])
            elif self.path == "/slow.jpg":
                time.sleep(1.5)  # longer than the read timeout
                self.send(200, good["/good0.jpg"])
            elif self.path == "/truncated.jpg":
                self.send(200, full[: len(full) // 2])
            elif self.path == "/flaky.jpg":
                self.send(503) if hits[self.path] == 1 else self.send(200, good["/good1.jpg"])
            elif self.path == "/huge.jpg":
                self.send(200, b"x" * 5000)
            else:
                self.send(404, b"not found")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def fetcher(cache, **kw):
    options = dict(connect_timeout=1.0, read_timeout=0.4, retries=1, max_bytes=4000, backoff=0.05)
    options.update(kw)
    return UrlFetcher(cache, **options)


def test_table_formats(tmp_path):
    (tmp_path / "cc.tsv").write_text("a cat\thttp://x/1.jpg\na dog\thttp://x/2.jpg\n", encoding="utf-8")
    assert read_url_table(tmp_path / "cc.tsv") == [("http://x/1.jpg", "a cat"), ("http://x/2.jpg", "a dog")]
    (tmp_path / "t.csv").write_text("caption,url\nred,http://x/3.jpg\n", encoding="utf-8")
    assert read_url_table(tmp_path / "t.csv", "url", "caption") == [("http://x/3.jpg", "red")]


def test_good_dead_slow_truncated_and_flaky_links(server, tmp_path):
    base, hits = server
    names = ["good0.jpg", "missing.jpg", "slow.jpg", "truncated.jpg", "flaky.jpg", "huge.jpg", "good1.jpg"]
    table = tmp_path / "urls.tsv"
    table.write_text("".join(f"caption {n}\t{base}/{n}\n" for n in names), encoding="utf-8")
    source = UrlTableSource(table, fetcher(tmp_path / "cache"))
    dataset = TrainDataset(source, SampleSpec(resolution=32, caption_dropout=0.0))
    started = time.monotonic()
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[[(0, i) for i in range(len(names))]],
                                         collate_fn=collate, num_workers=2)
    batch = next(iter(loader))
    assert time.monotonic() - started < 20  # bounded: timeouts and retries, no hang
    assert batch["size"] == 3  # good0, flaky (after a retry), good1
    assert sorted(batch["caption"]) == ["caption flaky.jpg", "caption good0.jpg", "caption good1.jpg"]
    assert batch["skipped"] == {DEAD_LINK: 4}  # 404, timeout, truncated, over the byte cap
    assert hits["/slow.jpg"] == 2 and hits["/missing.jpg"] == 1  # timeouts are retried, a 404 is not
    # the second pass reads the cache: no request for good images, none for links known dead
    before = dict(hits)
    again = collate([dataset[(1, i)] for i in range(len(names))])
    assert again["size"] == 3 and again["skipped"] == {DEAD_LINK: 4}
    assert hits == before
