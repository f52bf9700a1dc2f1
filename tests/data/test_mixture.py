"""restore.data.mixture: proportions, determinism, tags, batching by task, validation of sources."""

from __future__ import annotations

import pytest
import torch
from data_helpers import assert_one_line, random_rgb, save_rgb
from torch.utils.data import DataLoader

from restore.data.degraded_folder import DegradedFolderDataset
from restore.data.mixture import MixtureDataset, MixtureSource
from restore.engine.sampler import ResumableSampler
from restore.errors import ConfigError

# chi-square critical values at p = 0.001
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27}


@pytest.fixture
def clean_dir(tmp_path, rng):
    root = tmp_path / "clean"
    for i in range(4):
        save_rgb(root / f"img{i}.png", random_rgb(rng, 20, 24))
    return root


def sources(root, crop=16, **extra):
    return [
        {"type": "degraded_folder", "root": str(root), "degradation": "gauss30", "crop_size": crop, "weight": 1},
        {"type": "degraded_folder", "root": str(root), "degradation": "rain", "crop_size": crop, "weight": 2},
        {"type": "degraded_folder", "root": str(root), "degradation": "haze", "crop_size": crop, "weight": 3, **extra},
    ]


def chi_square(counts, weights):
    n, total = sum(counts), sum(weights)
    return sum((c - n * w / total) ** 2 / (n * w / total) for c, w in zip(counts, weights))


def test_source_proportions_follow_the_weights(clean_dir):
    mix = MixtureDataset(sources(clean_dir))
    draws = [mix.source_of(seed) for seed in range(3000)]
    counts = [draws.count(i) for i in range(3)]
    assert chi_square(counts, [1, 2, 3]) < CHI2_999[2], counts
    # and a wrong hypothesis (equal weights) is rejected by the same test
    assert chi_square(counts, [1, 1, 1]) > CHI2_999[2]


def test_samples_carry_the_drawn_source(clean_dir):
    mix = MixtureDataset(sources(clean_dir))
    assert len(mix) == 12 and mix.tasks == ["gauss30", "rain", "haze"]
    for seed in range(30):
        s = mix[(seed % 12, seed)]
        i = mix.source_of(seed)
        assert s["task_id"] == i and s["task"] == mix.tasks[i] and s["name"].startswith(mix.tasks[i] + "/")
        assert set(s) == {"input", "target", "name", "input_path", "task", "task_id"}
        assert s["input"].shape == s["target"].shape == (3, 16, 16)


def test_keys_are_deterministic_across_instances(clean_dir):
    a, b = MixtureDataset(sources(clean_dir)), MixtureDataset(sources(clean_dir))
    for key in [(0, 1), (5, 77), (11, 2**40)]:
        x, y = a[key], b[key]
        assert x["task_id"] == y["task_id"] and torch.equal(x["input"], y["input"])
        assert torch.equal(x["target"], y["target"])


def test_sample_is_the_sources_own_sample(clean_dir):
    from restore.data.base import stable_seed

    mix = MixtureDataset(sources(clean_dir))
    own = DegradedFolderDataset(str(clean_dir), degradation="rain", crop_size=16)
    seed = next(s for s in range(100) if mix.source_of(s) == 1)
    got = mix[(6, seed)]
    want = own[(6 % 4, stable_seed(seed, "source"))]
    assert torch.equal(got["input"], want["input"]) and got["name"] == "rain/" + want["name"]


def test_tag_tasks_false_drops_the_tags(clean_dir):
    mix = MixtureDataset(sources(clean_dir), tag_tasks=False)
    s = mix[(3, 4)]
    assert "task" not in s and "task_id" not in s
    assert torch.equal(s["input"], MixtureDataset(sources(clean_dir))[(3, 4)]["input"])


def test_loader_batches_collate_with_tags(clean_dir):
    mix = MixtureDataset(sources(clean_dir))
    loader = DataLoader(mix, batch_size=4, sampler=ResumableSampler(len(mix), seed=0), num_workers=0)
    batch = next(iter(loader))
    assert batch["input"].shape == (4, 3, 16, 16) and len(batch["task"]) == 4
    assert batch["task_id"].dtype == torch.int64


def sr_sources(root):
    return [
        {"type": "degraded_folder", "root": str(root), "degradation": "bicubic_x2", "crop_size": 16},
        {"type": "degraded_folder", "root": str(root), "degradation": "gauss30", "crop_size": 8, "weight": 2},
    ]


def test_sizes_that_cannot_share_a_batch_are_refused(clean_dir):
    with pytest.raises(ConfigError) as e:
        MixtureDataset(sr_sources(clean_dir) + [{"type": "degraded_folder", "root": str(clean_dir), "degradation": "rain", "crop_size": 16}])  # noqa: E501
    assert_one_line(e, "batch_by_task")
    # LR 8 / HR 16 (SR x2) and 8 / 8 (noise) differ too; upsampled SR input with equal crops is fine
    srcs = sr_sources(clean_dir)
    srcs[0]["sr_input"], srcs[1]["crop_size"] = "upsampled", 16
    assert MixtureDataset(srcs)[(0, 1)]["input"].shape == (3, 16, 16)


def test_batch_by_task_gives_one_source_per_batch_in_proportion(clean_dir):
    mix = MixtureDataset(sr_sources(clean_dir), batch_by_task=True, length=64)
    sampler = ResumableSampler(len(mix), seed=3)
    loader = DataLoader(mix, batch_size=4, sampler=sampler, num_workers=0)
    for batch, _ in zip(loader, range(6)):
        ids = batch["task_id"].tolist()
        assert len(set(ids)) == 1
        assert batch["input"].shape[1:] == (3, 8, 8)  # LR 8 (x2 of 16) and noisy 8
        assert batch["target"].shape[-1] == (16 if ids[0] == 0 else 8)
    # a batch's source is the one drawn from its first key's seed: count it over 2000 batches
    firsts = [mix.source_of(sampler.key(4 * b)[1]) for b in range(2000)]
    counts = [firsts.count(0), firsts.count(1)]
    assert chi_square(counts, [1, 2]) < CHI2_999[1], counts
    # the batch is a pure function of its keys
    keys = [(1, 10), (2, 11), (3, 12)]
    assert [s["task_id"] for s in mix.__getitems__(keys)] == [mix.source_of(10)] * 3
    assert torch.equal(mix.__getitems__(keys)[1]["input"], mix.__getitems__(keys)[1]["input"])


def test_val_is_the_concatenation_of_the_sources(clean_dir):
    mix = MixtureDataset(sr_sources(clean_dir)[:1] + [{"type": "degraded_folder", "root": str(clean_dir), "degradation": "gauss30"}], phase="val")  # noqa: E501
    assert len(mix) == 8 and mix.names[:2] == ["bicubic_x2/img0", "bicubic_x2/img1"] and mix.names[4] == "gauss30/img0"
    own = DegradedFolderDataset(str(clean_dir), degradation="gauss30", phase="val")
    assert torch.equal(mix[5]["input"], own[1]["input"]) and mix[5]["task_id"] == 1
    assert mix[0]["input"].shape == (3, 8, 8) and mix.verify() == 8  # the source keeps its crop_size 16


# Sources given from code as plain mappings. (Keys and types of sources in option files are
# checked at load time by the option validator: tests/cli/test_nested_option_faults.py.)
@pytest.mark.parametrize(
    "bad, parts",
    [
        ([{"type": "nope"}], ["sources.0.type", "unknown dataset 'nope'"]),
        ([{"root": "x"}], ["sources.0.type"]),
        (["gauss30"], ["sources.0", "mapping"]),
        ([{"type": "degraded_folder", "root": "R", "degradation": "gauss30", "weight": 0}], ["sources.0.weight", "positive"]),
        ([{"type": "degraded_folder", "root": "R", "degradation": "gauss30", "weight": True}], ["sources.0.weight"]),
        ([{"type": "degraded_folder", "root": "R", "degradation": "gaus30"}], ["sources.0", "unknown degradation"]),
        ([{"type": "mixture", "sources": []}], ["sources.0.type", "mixture"]),
    ],
)
def test_bad_sources_are_one_line_config_errors(clean_dir, bad, parts):
    bad = [{k: (str(clean_dir) if v == "R" else v) for k, v in s.items()} if isinstance(s, dict) else s for s in bad]
    with pytest.raises(ConfigError) as e:
        MixtureDataset(bad)
    assert_one_line(e, *parts)


def test_duplicate_tasks_are_refused_unless_named(clean_dir):
    twice = [{"type": "degraded_folder", "root": str(clean_dir), "degradation": "gauss30"}] * 2
    with pytest.raises(ConfigError) as e:
        MixtureDataset(twice)
    assert_one_line(e, "sources.1", "task 'gauss30'")
    named = [dict(twice[0]), dict(twice[1], task="denoise_b")]
    assert MixtureDataset(named).tasks == ["gauss30", "denoise_b"]


def test_option_file_validation_accepts_a_mixture(tmp_path, clean_dir):
    """The whole option tree validates (sources as sections, at load time) and builds."""
    from restore.config import load_options

    opt = tmp_path / "mix.yml"
    opt.write_text(
        "name: mix\nnetwork: {type: n2n_unet}\n"
        "datasets:\n  train:\n    type: mixture\n    tag_tasks: false\n    sources:\n"
        f"      - {{type: degraded_folder, root: {clean_dir}, degradation: gauss30, crop_size: 16}}\n"
        f"      - {{type: degraded_folder, root: {clean_dir}, degradation: rain, crop_size: 16}}\n"
        "train: {total_iter: 1, losses: [{type: l1}]}\n"
    )
    options = load_options(str(opt))
    specs = options.datasets.train.dataset.args["sources"]
    assert [type(s) for s in specs] == [MixtureSource] * 2 and [s.dataset.args["degradation"] for s in specs] == [
        "gauss30", "rain"] and [s.weight for s in specs] == [1.0, 1.0]
    ds = options.datasets.train.dataset.build()
    assert isinstance(ds, MixtureDataset) and ds.tasks == ["gauss30", "rain"] and not ds.tag_tasks
