"""REScoreMetric: the NLTV paper's RE score, #regions(prediction) / #regions(ground truth),
against counts made by hand."""
import pytest
import torch

from nlseg.evaluation import IsolatedRegionMetric, REScoreMetric


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.tensor(gt)[None]))


GT = [[0, 0, 1, 1],
      [0, 0, 1, 1],
      [0, 0, 1, 1],
      [0, 0, 1, 1]]              # 2 regions
NOISY = [[0, 0, 1, 1],
         [0, 1, 1, 1],
         [0, 0, 0, 1],
         [1, 0, 1, 0]]


def test_hand_computed_scores():
    # NOISY, 4-connectivity: the 0s of rows 0-3 except (3,3) (one region), the lone 0 at
    # (3,3), the 1s of the right half with (1,1), the lone 1s at (3,0) and (3,2): 5 regions
    metric = REScoreMetric(connectivity=4)
    metric.process({}, [sample(NOISY, GT), sample(GT, GT)])
    out = metric.compute_metrics(metric.results)
    assert out == dict(RE=pytest.approx((5 / 2 + 2 / 2) / 2), regions=3.5, gt_regions=2.0)
    # 8-connectivity: (3,3) joins the 0s through (2,2), (3,2) the 1s through (2,3), (3,0)
    # stays alone: 3 regions
    metric8 = REScoreMetric(connectivity=8)
    metric8.process({}, [sample(NOISY, GT)])
    assert metric8.compute_metrics(metric8.results)['RE'] == pytest.approx(3 / 2)


def test_ignored_pixels_are_left_out():
    gt = [[0, 0, 255, 255],
          [0, 0, 255, 255],
          [1, 1, 1, 1],
          [1, 1, 1, 1]]          # 2 scored regions (the ignore region is not one)
    pred = [[0, 0, 2, 2],        # a region of 2 lying only on ignored pixels: not counted
            [0, 0, 2, 2],
            [1, 1, 1, 1],
            [1, 1, 1, 0]]        # an isolated 0: counted
    metric = REScoreMetric(ignore_index=255)
    metric.process({}, [sample(pred, gt)])
    assert metric.compute_metrics(metric.results) == dict(RE=1.5, regions=3.0, gt_regions=2.0)
    every = REScoreMetric(ignore_index=None)
    every.process({}, [sample(pred, gt)])
    assert every.compute_metrics(every.results)['RE'] == pytest.approx(4 / 3)


def test_all_ignored_image_is_skipped_and_gt_is_required():
    metric = REScoreMetric()
    metric.process({}, [sample([[0, 1]], [[255, 255]]), sample([[0, 1]], [[0, 0]])])
    assert metric.compute_metrics(metric.results)['RE'] == 2.0
    with pytest.raises(KeyError, match='needs the ground truth'):
        metric.process({}, [dict(pred_sem_seg=dict(data=torch.zeros(1, 2, 2)))])


def test_registered_and_reuses_the_region_counter():
    from mmseg.registry import METRICS
    import nlseg  # noqa: F401
    metric = METRICS.build(dict(type='REScoreMetric', connectivity=8))
    assert isinstance(metric, REScoreMetric) and isinstance(metric, IsolatedRegionMetric)
    with pytest.raises(ValueError, match='connectivity must be 4 or 8'):
        REScoreMetric(connectivity=6)
