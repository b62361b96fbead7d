"""Data sources, sample making and bad images: every source reads a small local fixture."""
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from preprocessors import training_hint
from tests.helpers import colourful, write_folder
from training.data import (
    MISSING,
    TOO_SMALL,
    UNREADABLE,
    DataError,
    EpochBatchSampler,
    FolderSource,
    HFSource,
    SampleSpec,
    TrainDataset,
    WebDatasetSource,
    collate,
    decode_rgb,
    expand_braces,
    sample_rng,
)
from training.data.samples import resize_and_crop


def png_bytes(pixels, mode=None, fmt="PNG"):
    buffer = io.BytesIO()
    (Image.fromarray(pixels, mode) if mode else Image.fromarray(pixels)).save(buffer, fmt)
    return buffer.getvalue()


def test_folder_with_sidecar_captions_and_missing_ones(tmp_path):
    folder = write_folder(tmp_path / "f", count=3)
    (folder / "img01.txt").unlink()
    source = FolderSource(folder)
    assert len(source) == 3
    assert source.load(0)[1] == "picture number 0"
    assert source.load(1)[1] is None
    batch = collate([TrainDataset(source, SampleSpec(resolution=32, caption_dropout=0.0))[(0, i)] for i in range(3)])
    assert batch["missing_captions"] == 1 and batch["caption"][1] == ""


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_folder_with_metadata_file(tmp_path, kind):
    folder = write_folder(tmp_path / "f", count=2, captions=False)
    if kind == "jsonl":
        rows = [json.dumps({"file_name": f"img{i:02d}.png", "text": f"caption {i}"}) for i in range(2)]
        (folder / "metadata.jsonl").write_text("\n".join(rows), encoding="utf-8")
    else:
        (folder / "metadata.csv").write_text("file_name,text\nimg00.png,caption 0\nimg01.png,caption 1\n",
                                             encoding="utf-8")
    source = FolderSource(folder)
    assert [source.load(i)[1] for i in range(2)] == ["caption 0", "caption 1"]
    assert decode_rgb(source.load(1)[0]).shape == (40, 48, 3)


def test_empty_and_missing_folders_are_clear(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        FolderSource(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        FolderSource(tmp_path / "empty")


def test_odd_images_decode_to_rgb_and_bad_ones_are_skipped(tmp_path):
    rgb = colourful(0)
    grey16 = (np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "JPEG")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :10, 3] = 0  # transparent part: composited onto white
    decoded = {
        "grey": decode_rgb(png_bytes(rgb[..., 0])),
        "grey16": decode_rgb(png_bytes(grey16)),
        "cmyk": decode_rgb(cmyk.getvalue()),
        "rgba": decode_rgb(png_bytes(rgba)),
    }
    for name, pixels in decoded.items():
        assert pixels.shape == (40, 48, 3) and pixels.dtype == np.uint8, name
    assert decoded["grey16"].max() > 200  # scaled from 16 bit, not clipped to black
    assert (decoded["rgba"][:, :10] == 255).all()
    full = png_bytes(rgb, fmt="JPEG")
    spec = SampleSpec(resolution=32)
    cases = {
        "truncated.jpg": (full[: len(full) // 2], UNREADABLE),
        "not_an_image.png": (b"this is text", UNREADABLE),
        "tiny.png": (png_bytes(rgb[:8, :8]), TOO_SMALL),
    }
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)

    class Paths:
        records = [tmp_path / name for name in cases] + [tmp_path / "gone.png"]

        def __len__(self):
            return len(self.records)

        def load(self, index):
            return self.records[index], "caption"

    items = [TrainDataset(Paths(), spec)[(0, i)] for i in range(4)]
    assert [item["skip"] for item in items] == [reason for _, reason in cases.values()] + [MISSING]
    batch = collate(items)
    assert batch["size"] == 0 and batch["skipped"] == {UNREADABLE: 2, TOO_SMALL: 1, MISSING: 1}


def test_sample_is_deterministic_and_uses_the_contract(image_folder):
    source = FolderSource(image_folder)
    spec = SampleSpec(resolution=32, crop="random", random_flip=True, caption_dropout=0.5, seed=7)
    dataset = TrainDataset(source, spec)
    first, again, other_epoch = dataset[(0, 3)], dataset[(0, 3)], dataset[(1, 3)]
    assert np.array_equal(first["hint"], again["hint"]) and np.array_equal(first["pixels"], again["pixels"])
    assert not np.array_equal(first["hint"], other_epoch["hint"])
    assert first["hint"].shape == (5, 32, 32) and first["pixels"].shape == (3, 32, 32)
    assert -1.0 <= float(first["pixels"].min()) and float(first["pixels"].max()) <= 1.0
    # the hint is training_hint of the crop, drawn from the per-sample generator after crop, flip, dropout
    rng = sample_rng(7, 0, 3)
    crop = resize_and_crop(decode_rgb(source.load(3)[0]), 32, rng, "random", True).pixels
    rng.random()  # caption dropout
    expected = training_hint(crop, rng, spec.strokes, spec.edges)
    assert np.array_equal(first["hint"].numpy(), expected)
    assert np.allclose((first["pixels"].permute(1, 2, 0).numpy() + 1) * 127.5, crop, atol=1e-3)


def test_caption_dropout_rate(image_folder):
    dataset = TrainDataset(FolderSource(image_folder), SampleSpec(resolution=32, caption_dropout=0.5))
    dropped = [dataset[(epoch, i)]["caption"] == "" for epoch in range(10) for i in range(8)]
    assert 0.3 < np.mean(dropped) < 0.7


def test_sampler_resumes_where_it_stopped_and_shards_disjointly():
    whole = EpochBatchSampler(range(10), batch_size=3, seed=1)
    stream = iter(whole)
    first_seven = [next(stream) for _ in range(7)]
    resumed = iter(EpochBatchSampler(range(10), batch_size=3, seed=1, start=4))
    assert [next(resumed) for _ in range(3)] == first_seven[4:]
    assert {i for _, i, _ in first_seven[0] + first_seven[1] + first_seven[2]} <= set(range(10))
    assert [batch[0][2] for batch in first_seven] == list(range(7))  # each key carries its micro-batch number
    rank0 = next(iter(EpochBatchSampler(range(12), 3, seed=1, rank=0, world=2)))
    rank1 = next(iter(EpochBatchSampler(range(12), 3, seed=1, rank=1, world=2)))
    assert not {i for _, i, _ in rank0} & {i for _, i, _ in rank1}
    with pytest.raises(ValueError, match="cannot fill one batch"):
        EpochBatchSampler(range(2), batch_size=3, seed=0)


def test_expand_braces():
    assert expand_braces("a-{000..002}.tar") == ["a-000.tar", "a-001.tar", "a-002.tar"]
    assert expand_braces("{x,y}-{1..2}.tar") == ["x-1.tar", "x-2.tar", "y-1.tar", "y-2.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]


def write_shard(path, start, count):
    with tarfile.open(path, "w") as archive:
        for i in range(start, start + count):
            for name, data in ((f"s{i:03d}.jpg", png_bytes(colourful(i), fmt="JPEG")),
                               (f"s{i:03d}.txt", f"shard caption {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))


def test_webdataset_shards_with_brace_pattern(tmp_path):
    write_shard(tmp_path / "data-000.tar", 0, 3)
    write_shard(tmp_path / "data-001.tar", 3, 2)
    source = WebDatasetSource(str(tmp_path / "data-{000..001}.tar"))
    assert len(source) == 5
    captions = sorted(source.load(i)[1] for i in range(5))
    assert captions == [f"shard caption {i}" for i in range(5)]
    assert decode_rgb(source.load(4)[0]).shape == (40, 48, 3)
    with pytest.raises(DataError, match="not found"):
        WebDatasetSource(str(tmp_path / "data-{000..004}.tar"))


def test_hf_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({"image": [Image.fromarray(colourful(i)) for i in range(3)],
                                       "text": ["a", "b", "c"]}).cast_column("image", datasets.Image())
    data.save_to_disk(str(tmp_path / "hf"))
    source = HFSource(str(tmp_path / "hf"))
    assert len(source) == 3 and source.load(2)[1] == "c"
    assert decode_rgb(source.load(0)[0]).shape == (40, 48, 3)
