"""Generator of the synthetic "regions" data set (the NLTV demo task).

Every image is a partition of the square into a few regions: the Voronoi cells of 3 to 6
random seed points. Each region has a class and, independently of the class, its own flat
random colour (colours of one image at least ``MIN_COLOUR_DISTANCE`` apart, so the colour
tells regions apart but says nothing about classes). The class is visible only through a
weak local texture, fine luminance stripes whose orientation is the class (horizontal or
vertical, period ``STRIPE_PERIOD`` pixels, amplitude ``STRIPE_AMPLITUDE``), buried in
Gaussian pixel noise (``NOISE_STD`` grey levels). A classifier that sees a neighbourhood
reads the orientation from a few noisy stripes and makes scattered errors (isolated
regions), while all pixels of a region share their colour and their label: the premise of
the NLTV-regularised softmax over the image-colour graph (Jia, Tai, Liu, eq. 11).

The generator is deterministic: the same seed gives the same bytes (numpy's PCG64 generator
and lossless PNG).
"""
from __future__ import annotations


import numpy as np

from .seg_folder_writer import write_seg_folders

CLASSES = ('horizontal stripes', 'vertical stripes')
PALETTE = [[230, 120, 30], [40, 110, 230]]
#: Number of Voronoi seeds (regions) per image, inclusive range.
NUM_REGIONS = (3, 6)
#: Smallest region in pixels at size 64 (other sizes scale it with the area): layouts with a
#: smaller Voronoi cell are redrawn, so every ground-truth component is larger than
#: IsolatedRegionMetric's default threshold (64) and an isolated predicted region is an error.
MIN_REGION_AREA = 128
#: Region colours are drawn per channel from this range of grey levels (inclusive low,
#: exclusive high), leaving room for the texture and the noise before clipping.
COLOUR_RANGE = (50, 206)
#: Minimum Euclidean RGB distance (grey levels) between the colours of two regions of an image.
MIN_COLOUR_DISTANCE = 80.0
#: Stripe period in pixels (half bright, half dark) and amplitude (+- grey levels).
STRIPE_PERIOD = 4
STRIPE_AMPLITUDE = 10
#: Standard deviation (grey levels) of the per-pixel luminance noise.
NOISE_STD = 25.0


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f'{name} must be an int >= {low}, got {value!r}')


def _check_nonneg(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')


def _region_colours(rng: np.random.Generator, count: int,
                    min_distance: float) -> np.ndarray:
    """``count`` RGB colours (float, grey levels), pairwise at least ``min_distance`` apart
    (rejection sampling; 1000 tries per colour, then the farthest candidate is taken)."""
    colours: list[np.ndarray] = []
    for _ in range(count):
        best, best_dist = None, -1.0
        for _ in range(1000):
            cand = rng.integers(*COLOUR_RANGE, size=3).astype(np.float64)
            dist = min((float(np.linalg.norm(cand - c)) for c in colours), default=np.inf)
            if dist >= min_distance:
                best = cand
                break
            if dist > best_dist:
                best, best_dist = cand, dist
        colours.append(best)
    return np.stack(colours)


def render_regions(rng: np.random.Generator, size: int = 64,
                   num_regions: tuple[int, int] = NUM_REGIONS,
                   num_classes: int = len(CLASSES)) -> tuple[np.ndarray, np.ndarray,
                                                            np.ndarray]:
    """Draw the layout of one image: the (size, size) int region map (Voronoi cell index of
    every pixel; every cell has at least ``MIN_REGION_AREA`` pixels at size 64, scaled with
    the area), the (R,) class of each region and the (R, 3) float colours."""
    _check_int('size', size, 8)
    lo, hi = num_regions
    _check_int('num_regions[0]', lo, 1)
    _check_int('num_regions[1]', hi, lo)
    _check_int('num_classes', num_classes, 1)
    min_area = MIN_REGION_AREA * size * size // (64 * 64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    while True:  # redraw layouts with a cell under min_area pixels
        count = int(rng.integers(lo, hi + 1))
        seeds = rng.uniform(0, size, size=(count, 2))
        dist = (yy[None] - seeds[:, 0, None, None]) ** 2 \
            + (xx[None] - seeds[:, 1, None, None]) ** 2
        regions = dist.argmin(axis=0)
        if np.bincount(regions.ravel(), minlength=count).min() >= min_area:
            break
    classes = rng.integers(num_classes, size=count)
    colours = _region_colours(rng, count, MIN_COLOUR_DISTANCE)
    return regions, classes, colours


def stripes(size: int, orientation: int, phase: int, period: int = STRIPE_PERIOD) -> np.ndarray:
    """(size, size) pattern of +-1: stripes along x (orientation 0: the value depends on y
    only, horizontal stripes) or along y (1: vertical stripes), ``period`` pixels, shifted by
    ``phase`` pixels."""
    coord = np.arange(size)
    wave = np.where(((coord + phase) % period) < period // 2, 1.0, -1.0)
    if orientation == 0:
        return np.repeat(wave[:, None], size, axis=1)
    return np.repeat(wave[None, :], size, axis=0)


def render_sample(rng: np.random.Generator, size: int = 64,
                  amplitude: float = STRIPE_AMPLITUDE, noise_std: float = NOISE_STD,
                  period: int = STRIPE_PERIOD) -> tuple[np.ndarray, np.ndarray]:
    """Draw one (image, label) pair: an (size, size, 3) uint8 RGB image and an (size, size)
    uint8 label map with values in 0..1 (the stripe orientation of each pixel's region).

    image = clip(colour of the region + amplitude * stripes(class, random phase) + noise),
    the stripes and the noise added to the three channels alike (luminance)."""
    _check_nonneg('amplitude', amplitude)
    _check_nonneg('noise_std', noise_std)
    _check_int('period', period, 2)
    regions, classes, colours = render_regions(rng, size)
    img = colours[regions]  # (size, size, 3)
    label = classes[regions].astype(np.uint8)
    texture = np.zeros((size, size))
    for r, cls in enumerate(classes):
        phase = int(rng.integers(period))
        mask = regions == r
        texture[mask] = stripes(size, int(cls), phase, period)[mask]
    noise = rng.normal(0.0, 1.0, size=(size, size)) * noise_std
    img = img + (amplitude * texture + noise)[..., None]
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img, label


def generate_synthetic_regions(out_dir: str, num_train: int = 400, num_val: int = 25,
                               size: int = 64, seed: int = 0) -> str:
    """Write the data set to ``out_dir`` in mmseg's BaseSegDataset layout::

        out_dir/img_dir/{train,val}/NNNN.png   RGB images
        out_dir/ann_dir/{train,val}/NNNN.png   uint8 label maps (0..1)

    The data set is written to a temporary folder and moved into place, so an interrupted
    run leaves nothing half-written. An existing ``out_dir`` is replaced.
    Returns ``out_dir``.
    """
    _check_int('num_train', num_train, 1)
    _check_int('num_val', num_val, 1)
    _check_int('size', size, 8)
    _check_int('seed', seed, 0)
    return write_seg_folders(out_dir, lambda rng: render_sample(rng, size=size),
                             {'train': num_train, 'val': num_val}, seed, 'synthetic_regions')
