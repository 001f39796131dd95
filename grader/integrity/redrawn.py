"""Copies turned or scaled and then drawn thinner: each candidate training digit drawn again
the way such a copy is made, and compared with the image in its own frame.

A 3x3 erosion after a turn or a scaling takes the minimum over resampled grey values, so what
is left depends on the exact angle, size and sub-pixel position: no one fixed index (posed,
opened, closed) holds such copies near their originals. Instead, for each query:

1. candidates: the ``CANDIDATES`` training digits nearest to the query thickened and posed,
   in the index of the training set opened and posed (the "thickened" variant's space: the
   original of such a copy is often near there, but not near enough to be told apart);
2. each candidate is turned, scaled and moved onto the query by their moments (pose.moments:
   centre of mass, major axis, spread; the query's taken thickened, the candidate's opened,
   the two sides the erosion has touched alike), drawn with bilinear resampling, eroded 3x3,
   and the similarity corrected ``ITERATIONS`` times so that the drawn copy's own moments meet
   the query's;
3. the distances of the drawn candidates to the query give ``ratio`` = d1 / d2 (the best over
   the second best) and ``relative`` = d1 / |query| (how much of the query's ink is not
   explained).

An image is a copy by this variant when the ratio is low (copies.STRICTER: below 0.45 at the
default threshold of 0.4) and less than ``RELATIVE`` of its ink is left unexplained. The ratio
alone is not enough: a faint image (an honest digit thinned by augmentation, little ink left)
can be fitted by one candidate much better than by the next and still be far from all of
them. Measured on the 60,000 MNIST training digits, 8 candidates, two corrections, both
smoothings (1,000 copies per edit), flagged by this variant alone: turned 20 degrees or 10
degrees then thinned 46%, scaled 1.2 and turned 25 degrees then thinned 30%, scaled 0.85 and
turned -20 degrees then thinned 29%, scaled 0.8 then thinned 8%; honest test digits, as drawn
and augmented (10,000 each), no lower than 0.678 and 0.547 among those under ``RELATIVE``.
Without the smoothing: 16 candidates gain under 1 point; one correction instead of two loses
7 points (turned 20 degrees) and none 32. 12.5 s per 10,000 images on one idle core, 8 s on
two (the other variants together 16 s and 8.5 s).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from grader.integrity import pose
from grader.integrity.neighbours import Index, as_vectors, nearest_rows

CANDIDATES = 8
ITERATIONS = 2
# Gaussian sigmas (px) of two drawings of each candidate before the erosion, the closer one
# counting: one bilinear resampling (a turn alone, or torchvision's one affine) leaves a copy as
# sharp as the drawing; a shrinking (antialiased by PIL) and then a turn leave it smoother, and
# the erosion makes the difference count (1,000 copies scaled 0.85, turned -20 degrees, thinned:
# sigma 0 flags 3%, 0.3 3%, 0.4 13%, 0.5 29%; turned -20 degrees and thinned: 46%, 46%, 42%, 19%).
SMOOTHING = (0.0, 0.5)
RELATIVE = 0.3  # d1 / |query| at or above this: no evidence either way
# Queries drawn against their candidates at once: 256 x 8 drawings of 784 float32 values,
# ~6 MB each for the sources, the drawn copies, the queries repeated and the padded erosion,
# ~13 MB for the sampling grid (~50 MB a chunk, inside an autograder's 768 MB margin).
CHUNK = 256


def redrawn_scores(
    images: np.ndarray, opened: Index, training: np.ndarray, posed_thickened: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratio, nearest training row, d1) per uint8 digit [N, H, W]: ratio is d1 / d2 of the
    drawn candidates, inf where the nearest leaves ``RELATIVE`` or more of the image's ink
    unexplained (a faint image is near anything in absolute terms: no evidence either way).

    ``opened``: the training set's opened-and-posed index (copies.REFERENCES["thickened"]);
    ``training``: the training digits as they are, uint8 [M, H, W], rows as in the index;
    ``posed_thickened``: the images thickened and posed, when the "thickened" variant made them.
    """
    n = len(images)
    if posed_thickened is None:
        posed_thickened = pose.posed(pose.thickened(images))
    ratio = np.ones(n)
    nearest, d1 = np.zeros(n, np.int64), np.zeros(n, np.float32)
    for s in range(0, n, CHUNK):
        part = slice(s, s + CHUNK)
        r, relative, i, d = _scores(images[part], posed_thickened[part], opened, training)
        ratio[part] = np.where(relative < RELATIVE, r, np.inf)
        nearest[part], d1[part] = i, d
    return ratio, nearest, d1


def _scores(images: np.ndarray, posed_thickened: np.ndarray, opened: Index, training: np.ndarray):
    thick = pose.thickened(images)
    rows = nearest_rows(opened, as_vectors(posed_thickened), CANDIDATES)  # [n, K]
    n, k = rows.shape
    query = torch.from_numpy(images.astype(np.float32))
    target = [m.repeat_interleave(k) for m in pose.moments(thick)]
    wanted = [m.repeat_interleave(k) for m in pose.moments(images)]
    flat = rows.reshape(-1)
    sources = training[flat.numpy()]
    start = pose.moments(pose.thickened(pose.thinned(sources)))
    sources = torch.from_numpy(sources.astype(np.float32))
    repeated = query.repeat_interleave(k, 0)
    best = torch.full((n * k,), torch.inf)
    for sigma in SMOOTHING:
        pose_now = target
        for step in range(ITERATIONS + 1):
            drawn = _eroded(_smoothed(_drawn(sources, start, pose_now), sigma))
            best = torch.minimum(best, (drawn - repeated).flatten(1).norm(dim=1))
            if step < ITERATIONS:
                # Move the target pose by what the drawn copy still misses of the query's moments.
                got = pose.moments(drawn.numpy())
                pose_now = [
                    pose_now[0] + wanted[0] - got[0],
                    pose_now[1] + wanted[1] - got[1],
                    pose_now[2] + _turn(wanted[2] - got[2]),
                    pose_now[3] * wanted[3] / got[3],
                ]
    two, order = torch.topk(best.view(n, k), min(2, k), dim=1, largest=False)
    d1, d2 = two[:, 0], two[:, -1]
    norm = query.flatten(1).norm(dim=1)
    ratio = torch.where(d2 > 0, d1 / d2.clamp_min(1e-12), torch.zeros_like(d1))
    relative = torch.where(norm > 0, d1 / norm.clamp_min(1e-12), torch.ones_like(d1))
    nearest = rows.gather(1, order[:, :1])[:, 0]
    return ratio.numpy(), relative.numpy(), nearest.numpy(), (d1 / 255).numpy()


def _turn(angle: torch.Tensor) -> torch.Tensor:
    """An axis angle difference brought into (-pi/2, pi/2] (an axis has no direction)."""
    return torch.remainder(angle + torch.pi / 2, torch.pi) - torch.pi / 2


def _drawn(sources: torch.Tensor, source_pose, target_pose) -> torch.Tensor:
    """Each source image [N, H, W] (H = W) turned, scaled and moved so that its pose (cy, cx,
    angle, spread) lands on the target pose; bilinear, zero outside (PIL's and torchvision's
    turn)."""
    cy_s, cx_s, a_s, s_s = source_pose
    cy_t, cx_t, a_t, s_t = target_pose
    n, h, w = sources.shape
    # Output pixel p (x, y) reads the source at c_s + A (p - c_t), A = (s_s / s_t) R(a_s - a_t);
    # in grid_sample's coordinates u = 2 p / (w - 1) - 1 that is u_s = A u + 2 (c_s - A c_t) /
    # (w - 1) + A 1 - 1.
    scale = s_s / s_t.clamp_min(1e-6)
    cos, sin = torch.cos(a_s - a_t) * scale, torch.sin(a_s - a_t) * scale
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # [N, 2, 2]
    c_s, c_t = torch.stack([cx_s, cy_s], 1), torch.stack([cx_t, cy_t], 1)
    shift = 2 * (c_s - (a @ c_t[:, :, None])[:, :, 0]) / (w - 1) + a.sum(2) - 1
    grid = F.affine_grid(torch.cat([a, shift[:, :, None]], 2), [n, 1, h, w], align_corners=True)
    return F.grid_sample(sources[:, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)[:, 0]


def _smoothed(images: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return images
    return torch.from_numpy(ndimage.gaussian_filter(images.numpy(), (0, sigma, sigma)))


def _eroded(images: torch.Tensor) -> torch.Tensor:
    """3x3 grey erosion (pose.thinned's), a border pixel over its neighbours inside the frame."""
    # a 3x3 minimum is a minimum over 3 rows of minima over 3 columns: four element-wise
    # minima of shifted views (max_pool2d of the negated images took 4x longer here)
    padded = F.pad(images, (1, 1, 1, 1), value=torch.inf)
    rows = torch.minimum(torch.minimum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return torch.minimum(torch.minimum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])
