"""Aspect-ratio buckets: the shapes, each picture's bucket, batches of one bucket that resume exactly, crops of a
bucket's shape, and a run that trains in them and records them."""
import numpy as np
import pytest
from safetensors import safe_open

from tests.helpers import tiny_config, write_folder
from training.config import ConfigError
from training.data.buckets import assign_buckets, bucket_sizes
from training.data.sampler import BucketBatchSampler
from training.data.samples import resize_and_crop
from training.loop import Trainer


def test_the_buckets_are_sdxls_shapes_within_the_area():
    buckets = bucket_sizes(1024)
    shapes = {tuple(b) for b in buckets.tolist()}
    assert {(1024, 1024), (896, 1152), (1152, 896), (832, 1216), (768, 1344), (640, 1536), (1536, 640)} <= shapes
    assert shapes == {(w, h) for h, w in shapes}  # as many tall as wide
    assert all(h * w <= 1024 * 1024 and h % 64 == 0 and w % 64 == 0 and max(h / w, w / h) <= 2.5 for h, w in shapes)
    aspects = buckets[:, 1] / buckets[:, 0]
    assert (np.diff(aspects) >= 0).all()
    assert bucket_sizes(48).tolist() == [[48, 48]]


def test_each_picture_goes_to_the_bucket_of_its_aspect():
    buckets = bucket_sizes(1024)
    picked = buckets[assign_buckets(np.array([[1000, 1000], [600, 1400], [2000, 800], [3000, 100], [0, 0]]), buckets)]
    assert picked.tolist() == [[1024, 1024], [640, 1536], [1600, 640], [1600, 640], [1024, 1024]]


def test_bucket_batches_hold_one_bucket_and_resume_where_they_stopped():
    rng = np.random.default_rng(0)
    buckets = rng.integers(0, 3, 50)
    indices = np.arange(45)  # the last five held out
    straight = BucketBatchSampler(indices, buckets, 4, seed=7)
    batches = [batch for batch, _ in zip(straight, range(30), strict=False)]
    assert all(len({buckets[i] for _, i, _ in batch}) == 1 and len(batch) == 4 for batch in batches)
    assert {i for batch in batches for _, i, _ in batch} <= set(indices.tolist())
    epoch_zero = [i for batch in batches if batch[0][0] == 0 for _, i, _ in batch]
    assert len(epoch_zero) == len(set(epoch_zero)) == 4 * straight.batches_per_epoch  # each picture once an epoch
    resumed = BucketBatchSampler(indices, buckets, 4, seed=7, start=13)
    assert [batch for batch, _ in zip(resumed, range(17), strict=False)] == batches[13:]
    ranks = [BucketBatchSampler(indices, buckets, 4, seed=7, rank=r, world=2) for r in (0, 1)]
    first = [[i for _, i, _ in next(iter(sampler))] for sampler in ranks]
    assert not set(first[0]) & set(first[1])
    with pytest.raises(ValueError, match="one bucket"):
        BucketBatchSampler(np.arange(6), np.arange(6), 2, seed=0)


def test_a_crop_has_its_buckets_shape_and_a_square_crop_is_unchanged():
    picture = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    cropped = resize_and_crop(picture, (192, 320), np.random.default_rng(2), "random", True)
    assert cropped.pixels.shape == (192, 320, 3) and cropped.size_ids[4:].tolist() == [192, 320]
    square = resize_and_crop(picture, 256, np.random.default_rng(3), "random", False)
    pair = resize_and_crop(picture, (256, 256), np.random.default_rng(3), "random", False)
    assert np.array_equal(square.pixels, pair.pixels) and np.array_equal(square.size_ids, pair.size_ids)


def test_a_run_trains_in_buckets_and_records_them(tiny_base, tmp_path):
    data = tmp_path / "images"
    write_folder(data, count=6, size=(160, 320))  # wide
    write_folder(data / "tall", count=6, size=(320, 160))
    seen = []
    real = Trainer.loss

    def recording(self, batch):
        seen.append(tuple(batch["pixels"].shape[-2:]))
        assert (batch["size_ids"][:, 4:] == batch["size_ids"][0, 4:]).all()
        return real(self, batch)

    trainer = Trainer(tiny_config(tiny_base, data, tmp_path / "run", resolution=256, aspect_buckets=True,
                                  max_train_steps=6, num_validation_samples=1))
    trainer.loss = recording.__get__(trainer)
    result = trainer.run()
    assert set(seen) == {(192, 320), (320, 192)}  # 2:1 pictures in the 5:3 buckets nearest them at 256²
    assert "in aspect-ratio buckets" in trainer.summary()
    with safe_open(str(result.export_path), "pt") as handle:
        recorded = handle.metadata()["colorstroke.buckets"]
    assert "[192, 320]" in recorded and "[256, 256]" in recorded


def test_buckets_need_a_folder():
    with pytest.raises(ConfigError, match="--aspect_buckets needs every image's size"):
        tiny_config("base", "shards-{000..009}.tar", "out", data_source="webdataset", aspect_buckets=True).validate()
