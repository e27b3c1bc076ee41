"""The teacher's neck maps memoised by input image (train_cfg.cache_teacher_maps)."""
import pytest
import torch
from test_distiller import _build, ktan_cfg  # noqa: F401  (fixture)

from ktan_det.models.teacher_cache import TeacherMapCache

from conftest import tiny_batch


def _counting_extract(calls):
    def extract(images):
        calls.append(images.shape[0])
        return [images * 2, images.mean(dim=1, keepdim=True)]
    return extract


def test_only_images_not_seen_yet_are_computed_and_the_batch_is_whole():
    images = torch.rand(4, 3, 8, 8)
    calls = []
    cache = TeacherMapCache(max_images=10)
    extract = _counting_extract(calls)
    first = cache(extract, images[:2])
    again = cache(extract, images[[1, 2, 0]])
    assert calls == [2, 1]  # image 2 only, the second time
    assert all(torch.equal(a, b) for a, b in zip(again, extract(images[[1, 2, 0]])))
    assert all(torch.equal(a, b) for a, b in zip(first, extract(images[:2])))
    assert (cache.hits, cache.misses, len(cache)) == (2, 3, 3)


def test_another_input_is_a_miss_and_the_least_recently_used_goes_first():
    images = torch.rand(3, 3, 8, 8)
    calls = []
    cache = TeacherMapCache(max_images=2)
    extract = _counting_extract(calls)
    cache(extract, images[:2])
    changed = images[:1].clone()
    changed[0, 0, 0, 0] += 1e-6  # a crop or a resize changes the input: never a stale map
    cache(extract, changed)
    assert calls == [2, 1] and len(cache) == 2
    cache(extract, images[1:2])  # image 0 was dropped, image 1 kept
    assert calls == [2, 1]
    cache(extract, images[:1])
    assert calls == [2, 1, 1]
    with pytest.raises(ValueError, match='must be >= 1'):
        TeacherMapCache(0)


def test_a_cached_step_distils_toward_the_same_targets(ktan_cfg):  # noqa: F811
    ktan_cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=0)
    plain_model, _ = _build(ktan_cfg)
    ktan_cfg.model.train_cfg.cache_teacher_maps = 8
    cached_model, _ = _build(ktan_cfg)
    batch = tiny_batch(ktan_cfg)
    for model in (plain_model, cached_model):
        model.train()
    targets = []
    for model in (plain_model, cached_model, cached_model):  # the third from the cache
        data = model.data_preprocessor(batch, True)
        _, record = model.student_forward(data['inputs'], data['data_samples'])
        stage = model.schedule.steady_stage()
        targets.append(model.teacher_targets(stage, data['inputs'], data['data_samples'],
                                             record).maps)
    assert cached_model.teacher_cache.hits == 2 and cached_model.teacher_cache.misses == 2
    for reference, cached in zip(targets[0], targets[2]):
        assert torch.allclose(reference, cached, atol=1e-6)
