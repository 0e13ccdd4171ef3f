"""Exact k-nearest-neighbour search over a feature map for the graph of eq. 11.

Jia, Tai, Liu, "Nonlocal regularized CNN for image segmentation", eq. 11 and sec. 3.5: each
position ``i`` is linked to the ``k`` other positions ``j`` of smallest

    d_ij = |p_i - p_j|^2 / (2 sigma_a) + |f_i - f_j|^2 / (2 sigma_b),

``p`` the (row, column) position, ``f`` the feature vector (the colour in the paper).

**One distance, computed one way.** Every path computes ``d_ij`` with the same elementwise
operations in the same order (:func:`pair_distance`): the squared differences of the
channels accumulated channel by channel, times 1 / (2 sigma_b), plus the squared position
distance (an exact integer) times 1 / (2 sigma_a). An elementwise kernel gives the same
floating-point result for the same operands whatever the shape it runs over, so a pair has
one ``d_ij`` in every path, bit for bit. Ties are broken by the neighbour's index: the ``k``
neighbours are the first ``k`` positions in the order (d_ij, j), returned in index order.
Self loops are excluded.

**Dense search** (:func:`dense_knn`, ``impl='dense'``): for every query row the distances to
all N positions. The N x N part is a matrix product (|f_i|^2 + |f_j|^2 - 2 f_i.f_j, fast but
rounded differently); it only proposes ``m = 2k + 8`` candidates per row, whose exact
distances are then computed as above. A row is certified when its k-th exact distance is
below the m-th proposed distance minus a bound on the rounding of both computations (so no
position outside the candidates can come before the k-th); the few rows that are not
certified (more than m positions within rounding of the k-th) get the exact distances to all
N positions. Cost O(N^2 C) (the product), memory O(chunk N).

**Windowed search** (:func:`windowed_knn`, ``impl='efficient'``): since
|f_i - f_j|^2 >= 0, ``d_ij >= |p_i - p_j|^2 / (2 sigma_a)``, and a position outside the
(2r + 1) x (2r + 1) window centred on ``i`` has |p_i - p_j|^2 >= (r + 1)^2. So if the k-th
distance found inside the window is below L_r = (r + 1)^2 / (2 sigma_a), no position outside
it can come before the k-th: the window's k nearest are the exact k nearest. In floating
point the same holds for the computed values (rounding is monotone and the feature term is
>= 0, so every computed d_ij outside the window is >= fl((r + 1)^2 / (2 sigma_a)) = L_r),
and the test is strict (a tie at L_r with a lower index outside could otherwise enter). Rows
that fail are searched again in a window of radius 2r + 1, and once a window would hold more
than 1/8 of the map (or reach its shorter side), the rest go to the dense search. The result
equals the dense search's, index for index. Cost O(N (2r + 1)^2 C) for the rows certified
at radius r.

Where the bound helps: it is a property of the distance, true for every feature map, but it
only certifies a row when the k-th distance is smaller than (r + 1)^2 / (2 sigma_a), i.e.
when the k nearest are close in position as well as in feature. On colour images with the
paper's sigma_a = 40, sigma_b = 13/255 that is nearly every pixel (smooth regions hold 20
near neighbours of nearly the same colour). On L2-normalised network features or logits,
|f_i - f_j|^2 / (2 sigma_b) is typically of order 1-40 and few rows certify before the
window is a large part of the map: the search then falls back to the dense one for those rows
(still exact, and no slower than about the window search plus the dense search of the rows
that failed).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

__all__ = ['position_term', 'pair_distance', 'take_k_nearest', 'dense_knn', 'windowed_knn',
           'default_window_radius', 'candidate_count']

# exact-distance work per chunk: about 2**22 (row, candidate, channel) elements
_CHUNK_ELEMENTS = 1 << 22
# rows x columns of the (approximate) distance matrix per chunk of the dense search
_DENSE_CHUNK_ENTRIES = 1 << 22
#: the cascade widens a failed row's window from radius r to WINDOW_GROWTH r + 1 ...
WINDOW_GROWTH = 2
#: ... while the window holds at most 1 / WINDOW_FRACTION of the map (then: dense search)
WINDOW_FRACTION = 8


def candidate_count(k: int, n: int) -> int:
    """The number of candidates the dense search proposes per row: min(N - 1, 2k + 8)."""
    return min(n - 1, 2 * k + 8)


def default_window_radius(k: int) -> int:
    """The first window's radius r: the smallest r >= 2 whose (2r + 1)^2 - 1 positions hold
    at least 2k + 8 candidates (k <= 20: r = 3, 48 candidates). Measured on the published WBC
    (d = 20) and CamVid (d = 10) images, r = 3 proves 83-97 % of the rows and is the fastest
    first window (docs/nltv.md)."""
    r = 2
    while (2 * r + 1) ** 2 - 1 < 2 * k + 8:
        r += 1
    return r


def position_term(dp2: torch.Tensor, inv_a, dtype: torch.dtype) -> torch.Tensor:
    """|p_i - p_j|^2 / (2 sigma_a) as ``dp2`` (exact integers) in ``dtype`` times inv_a."""
    return dp2.to(dtype) * inv_a


def pair_distance(fq: torch.Tensor, fc: torch.Tensor, pterm: torch.Tensor,
                  inv_b) -> torch.Tensor:
    """d = (sum_c (fq_c - fc_c)^2) * inv_b + pterm, elementwise, channel by channel.

    ``fq`` and ``fc`` hold C broadcastable channel tensors along their first dimension;
    ``pterm`` the position term (:func:`position_term`), broadcastable to the result. The
    operations and their order are fixed and elementwise, so the result for a pair does not
    depend on the shape it is computed in (the one distance of this module).
    """
    acc = (fq[0] - fc[0]).square()
    for c in range(1, fc.shape[0]):
        acc = acc.add_((fq[c] - fc[c]).square())
    acc = acc.mul_(inv_b)
    return acc.add_(pterm)


def take_k_nearest(d: torch.Tensor, j: torch.Tensor,
                   k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The k first candidates of each row in the order (d, j), returned in index order.

    ``d`` (R, M) distances (inf: no candidate), ``j`` (R, M) the candidates' indices,
    strictly increasing along each row. Returns (d_k, j_k), each (R, k). Vectorised over
    rows: the k-th smallest distance v_k of each row (a top-k), then every candidate below
    v_k and, of those equal to v_k, the first by index.
    """
    r, m = d.shape
    if m < k:
        d = torch.cat([d, d.new_full((r, k - m), math.inf)], dim=1)
        j = torch.cat([j, j[:, -1:] + torch.arange(1, k - m + 1, device=j.device)], dim=1)
    vk = torch.topk(d, k, dim=1, largest=False, sorted=False).values.amax(dim=1,
                                                                          keepdim=True)
    take = d < vk
    need = k - take.sum(dim=1, keepdim=True)
    eq = d == vk
    ties = eq.sum(dim=1, keepdim=True) > need
    if bool(ties.any()):
        rows = ties.squeeze(1).nonzero().squeeze(1)
        eq_rows = eq[rows]
        eq[rows] = eq_rows & (eq_rows.cumsum(dim=1) <= need[rows])
    take |= eq
    pos = take.nonzero()[:, 1].view(r, k)
    return d.gather(1, pos), j.gather(1, pos)


def _positions(h: int, w: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    n = torch.arange(h * w, device=device)
    return n // w, n % w


def _exact_rows(f: torch.Tensor, rows: torch.Tensor, h: int, w: int, k: int, inv_a: float,
                inv_b: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact distances from ``rows`` to all N positions: the last resort. f is (C, N)."""
    c, n = f.shape
    ys, xs = _positions(h, w, f.device)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * c))
    all_j = torch.arange(n, device=f.device)
    out_d, out_j = [], []
    for start in range(0, rows.numel(), chunk):
        q = rows[start:start + chunk]
        dp2 = (ys[q, None] - ys[None, :]).square() + (xs[q, None] - xs[None, :]).square()
        d = pair_distance(f[:, q, None], f[:, None, :], position_term(dp2, inv_a, f.dtype),
                          inv_b)
        d[torch.arange(q.numel(), device=f.device), q] = math.inf
        dk, jk = take_k_nearest(d, all_j.expand(q.numel(), n), k)
        out_d.append(dk)
        out_j.append(jk)
    return torch.cat(out_d), torch.cat(out_j)


def dense_knn(f: torch.Tensor, h: int, w: int, k: int, inv_a: float, inv_b: float,
              rows: Optional[torch.Tensor] = None, chunk_size: Optional[int] = None
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest of ``rows`` (default all) among all N positions (module docstring).

    ``f`` (C, N) features of one image, N = h w. Returns (d_k, j_k), each (len(rows), k).
    """
    c, n = f.shape
    device = f.device
    if rows is None:
        rows = torch.arange(n, device=device)
    m = candidate_count(k, n)
    if m == n - 1 or rows.numel() == 0:  # every position is a candidate: nothing to propose
        return _exact_rows(f, rows, h, w, k, inv_a, inv_b)
    ys, xs = _positions(h, w, device)
    fy, fx = ys.to(f.dtype), xs.to(f.dtype)
    ft = f.t().contiguous()  # (N, C)
    sq = ft.square().sum(1)
    sq_max = float(sq.max())
    unit = torch.finfo(f.dtype).eps / 2
    if chunk_size is None:
        chunk_size = max(1, _DENSE_CHUNK_ENTRIES // n)
    parts, failed = [], []
    # the (chunk, N) work buffers, allocated once: a fresh 16 MiB block per chunk would leave
    # the heap fragmented and the resident set growing over the chunks
    chunk_size = min(chunk_size, rows.numel())
    buffers = f.new_empty(3, chunk_size, n)
    for start in range(0, rows.numel(), chunk_size):
        q = rows[start:start + chunk_size]
        nq = q.numel()
        approx, dy2, dx2 = buffers[:, :nq]
        # proposal: the rounded |f_i|^2 + |f_j|^2 - 2 f_i.f_j, exact position term
        torch.addmm(sq[None, :], ft[q], ft.t(), alpha=-2.0, out=approx)
        approx.add_(sq[q, None]).clamp_min_(0).mul_(inv_b)
        torch.sub(fy[q, None], fy[None, :], out=dy2).square_()
        torch.sub(fx[q, None], fx[None, :], out=dx2).square_()
        approx.add_(dy2.add_(dx2).mul_(inv_a))
        approx[torch.arange(nq, device=device), q] = math.inf
        prop_d, prop_j = torch.topk(approx, m, dim=1, largest=False, sorted=False)
        threshold = prop_d.amax(dim=1)
        prop_j = prop_j.sort(dim=1).values
        # exact distances of the proposed candidates
        dp2 = (ys[q, None] - ys[prop_j]).square() + (xs[q, None] - xs[prop_j]).square()
        d = pair_distance(f[:, q, None], f[:, prop_j], position_term(dp2, inv_a, f.dtype),
                          inv_b)
        dk, jk = take_k_nearest(d, prop_j, k)
        # a position j outside the proposal has approx_j >= threshold; both computations of
        # |f_i - f_j|^2 are within about 3 (C + 4) u (|f_i|^2 + |f_j|^2) of the true value and
        # the products and sums after it within a few u of the result: over 2x that here
        margin = (8.0 * (c + 4) * unit * (sq[q] + sq_max) * inv_b
                  + 16.0 * unit * threshold.abs())
        ok = dk.amax(dim=1) < threshold - margin
        local = torch.arange(start, start + nq, device=device)
        parts.append((local[ok], dk[ok], jk[ok]))
        if not bool(ok.all()):
            failed.append(local[~ok])
    if failed:
        local = torch.cat(failed)
        parts.append((local,) + _exact_rows(f, rows[local], h, w, k, inv_a, inv_b))
    out_dk = torch.empty(rows.numel(), k, dtype=f.dtype, device=device)
    out_jk = torch.empty(rows.numel(), k, dtype=torch.long, device=device)
    for local, dk, jk in parts:
        out_dk[local] = dk
        out_jk[local] = jk
    return out_dk, out_jk


def _window_offsets(r: int, w: int, device: torch.device
                    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dy, dx, flat offset dy w + dx) of the window of radius r, self excluded, in
    increasing flat offset order ((dy, dx) lexicographic, |dx| <= r < w)."""
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1, device=device),
                            torch.arange(-r, r + 1, device=device), indexing='ij')
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    keep = (dy != 0) | (dx != 0)
    dy, dx = dy[keep], dx[keep]
    return dy, dx, dy * w + dx


def _window_band(f: torch.Tensor, h: int, w: int, r: int, y0: int, y1: int, inv_a: float,
                 inv_b: float, out: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Distances from every position of image rows [y0, y1) to its window of radius r < w:
    (n_band, O) distances (inf outside the image) and candidate indices i + dy w + dx
    (strictly increasing along a row; placeholders outside the image). Built by shifting the
    map once per offset (no gather), into the buffer ``out`` (O, >= y1 - y0, w)."""
    c, n = f.shape
    dy, dx, off = _window_offsets(r, w, f.device)
    pterm = position_term(dy.square() + dx.square(), inv_a, f.dtype)
    fm = f.view(c, h, w)
    lo, hi = max(0, y0 - r), min(h, y1 + r)  # the image rows the band's windows reach
    fp = torch.nn.functional.pad(fm[:, lo:hi], (r, r, r - (y0 - lo), r - (hi - y1)))
    band = fm[:, y0:y1]
    hb = y1 - y0
    dist = out[:, :hb]
    for o, (oy, ox) in enumerate(zip(dy.tolist(), dx.tolist())):
        shifted = fp[:, r + oy:r + oy + hb, r + ox:r + ox + w]
        dist[o] = pair_distance(band, shifted, pterm[o], inv_b)
        if y1 + oy > h:  # rows whose window row y + oy is below the image
            dist[o, max(0, h - oy - y0):] = math.inf
        if y0 + oy < 0:  # ... above it
            dist[o, :min(hb, -oy - y0)] = math.inf
        if ox > 0:
            dist[o, :, w - ox:] = math.inf
        elif ox < 0:
            dist[o, :, :-ox] = math.inf
    j = torch.arange(y0 * w, y1 * w, device=f.device)[:, None] + off[None, :]
    return dist.reshape(-1, hb * w).t().contiguous(), j


def _window_rows(f: torch.Tensor, rows: torch.Tensor, h: int, w: int, r: int, inv_a: float,
                 inv_b: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """As :func:`_window_band` for the given rows, by gathering their windows."""
    c, n = f.shape
    dy, dx, off = _window_offsets(r, w, f.device)
    pterm = position_term(dy.square() + dx.square(), inv_a, f.dtype)
    ys, xs = _positions(h, w, f.device)
    cy = ys[rows, None] + dy[None, :]
    cx = xs[rows, None] + dx[None, :]
    valid = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
    j = rows[:, None] + off[None, :]
    d = pair_distance(f[:, rows, None], f[:, torch.where(valid, j, rows[:, None])],
                      pterm[None, :], inv_b)
    return d.masked_fill_(~valid, math.inf), j


def _window_level(f: torch.Tensor, rows: Optional[torch.Tensor], h: int, w: int, k: int,
                  r: int, inv_a: float, inv_b: float
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k nearest of ``rows`` (None: all) within the window of radius r, and which rows the
    bound certifies (k-th distance < fl((r + 1)^2 / (2 sigma_a)))."""
    c, n = f.shape
    bound = position_term(torch.tensor((r + 1) ** 2, device=f.device), inv_a, f.dtype)
    window = (2 * r + 1) ** 2
    if rows is None:  # all rows, in bands of image rows (bounded memory)
        band = min(h, max(1, _CHUNK_ELEMENTS // max(1, window * w)))
        buffer = f.new_empty(window - 1, band, w)
        out = [take_k_nearest(*_window_band(f, h, w, r, y0, min(h, y0 + band), inv_a, inv_b,
                                            buffer), k) for y0 in range(0, h, band)]
        dk = torch.cat([x for x, _ in out])
        return dk, torch.cat([x for _, x in out]), dk.amax(dim=1) < bound
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, window * c))
    out = []
    for start in range(0, rows.numel(), per_chunk):
        d, j = _window_rows(f, rows[start:start + per_chunk], h, w, r, inv_a, inv_b)
        out.append(take_k_nearest(d, j, k))
    dk = torch.cat([x for x, _ in out])
    return dk, torch.cat([x for _, x in out]), dk.amax(dim=1) < bound


def windowed_knn(f: torch.Tensor, h: int, w: int, k: int, inv_a: float, inv_b: float,
                 radius: Optional[int] = None, chunk_size: Optional[int] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor, dict]:
    """Exact k nearest of every position by the window cascade (module docstring).

    ``f`` (C, N) features of one image. Returns (d_k, j_k), each (N, k), and statistics:
    ``levels`` a list of (radius, rows searched, rows certified) and ``dense_rows``.
    """
    c, n = f.shape
    device = f.device
    r = default_window_radius(k) if radius is None else radius
    dk = torch.empty(n, k, dtype=f.dtype, device=device)
    jk = torch.empty(n, k, dtype=torch.long, device=device)
    rows = None
    stats = dict(levels=[], dense_rows=0)
    while r < min(h, w) and (2 * r + 1) ** 2 <= n / WINDOW_FRACTION:
        ld, lj, ok = _window_level(f, rows, h, w, k, r, inv_a, inv_b)
        searched = ok.numel()
        if rows is None:
            rows = torch.arange(n, device=device)
        done = ok.nonzero().squeeze(1)
        dk[rows[done]] = ld[done]
        jk[rows[done]] = lj[done]
        stats['levels'].append((r, searched, done.numel()))
        rows = rows[~ok]
        if not rows.numel():
            break
        r = WINDOW_GROWTH * r + 1
    if rows is None:
        rows = torch.arange(n, device=device)
    if rows.numel():
        stats['dense_rows'] = rows.numel()
        ld, lj = dense_knn(f, h, w, k, inv_a, inv_b, rows=rows, chunk_size=chunk_size)
        dk[rows] = ld
        jk[rows] = lj
    return dk, jk, stats
