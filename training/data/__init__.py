"""Training data: sources (folder, HF dataset, webdataset shards, URL tables), samples, batches."""
from __future__ import annotations

from pathlib import Path

from .decode import DEAD_LINK, MISSING, TOO_SMALL, UNREADABLE, SampleSkipped, decode_rgb
from .sampler import EpochBatchSampler
from .samples import SampleSpec, TrainDataset, collate, sample_rng
from .sources import DataError, FolderSource, HFSource, WebDatasetSource, expand_braces
from .urls import UrlFetcher, UrlTableSource, read_url_table


def build_source(config):
    """The data source a TrainConfig names (``data_source`` + ``data`` and the column options)."""
    kind = config.data_source
    if kind == "folder":
        return FolderSource(config.data, config.image_column, config.caption_column)
    if kind == "hf":
        return HFSource(config.data, config.hf_split, config.image_column, config.caption_column)
    if kind == "webdataset":
        image_exts = "jpg;jpeg;png;webp" if config.image_column == "image" else config.image_column
        caption_ext = "txt" if config.caption_column == "text" else config.caption_column
        return WebDatasetSource(config.data, image_exts, caption_ext)
    if kind == "urls":
        fetcher = UrlFetcher(
            config.url_cache_dir or Path(config.output_dir) / "url_cache",
            config.url_connect_timeout, config.url_read_timeout, config.url_retries, config.url_max_bytes,
        )
        return UrlTableSource(config.data, fetcher, config.url_column, config.caption_column)
    raise DataError(f"unknown data_source {kind!r}")


def sample_spec(config) -> SampleSpec:
    """The SampleSpec of a TrainConfig."""
    return SampleSpec(
        resolution=config.resolution, crop=config.crop, random_flip=config.random_flip,
        caption_dropout=config.caption_dropout, strokes=config.stroke_params(), edges=config.edge_params(),
        hint_on_gpu=config.hint_on_gpu, fill_probability=config.fill_probability, fill_gap=config.fill_gap,
        area_labels=config.area_colour_loss_weight > 0, seed=config.seed,
        stroke_density_start=config.stroke_density_start, stroke_density_steps=config.stroke_density_steps,
        accumulation=config.gradient_accumulation_steps,
    )


__all__ = [
    "DEAD_LINK", "MISSING", "TOO_SMALL", "UNREADABLE", "DataError", "EpochBatchSampler", "FolderSource", "HFSource",
    "SampleSkipped", "SampleSpec", "TrainDataset", "UrlFetcher", "UrlTableSource", "WebDatasetSource", "build_source",
    "collate", "decode_rgb", "expand_braces", "read_url_table", "sample_rng", "sample_spec",
]
