"""Conv layers on one array: the im2col, SDK and VW-SDK cycle counts.

Conv layers (:func:`conv_cycles`, the one place the cycle formulas live; docs/sources.md#vw-sdk,
Rhe et al., DATE 2022) on an AR × AC array, AR = ``crossbar.rows`` inputs, AC =
``crossbar.weights_per_row`` logical weight columns:

- im2col: CC = (H−K+1)(W−K+1) · ⌈K²·IC/AR⌉ · ⌈OC/AC⌉.
- A parallel window of (K+i−1) × (K+j−1) inputs computes i·j outputs per cycle with
  ICt = min(IC, ⌊AR/((K+i−1)(K+j−1))⌋) ≥ 1 channels and OCt = min(OC, ⌊AC/(i·j)⌋) ≥ 1 kernels
  per array: CC = (⌈(H−K−i+1)/i⌉+1)(⌈(W−K−j+1)/j⌉+1) · ⌈IC/ICt⌉ · ⌈OC/OCt⌉.
- SDK: square windows (i = j) holding all IC channels and all i²·OC duplicated kernels in one
  array; i = 1 is im2col; the best i.
- VW-SDK: every window i, j ≥ 1 that fits the input; the minimum CC. Ties go to the window
  using fewer array columns in all (i·j·OC kernel columns per input-channel tile, times
  ⌈IC/ICt⌉ tiles), then to the smaller window area, then to fewer window rows. im2col is kept
  (window K × K) unless a window is strictly better.

A chip layer is mapped on its zero-padded input (H+2P, W+2P). VW-SDK assumes stride 1, so a
layer with stride > 1 uses im2col only, over its (H+2P−K)//S+1 × (W+2P−K)//S+1 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.physics.tiling import ceil_div


@dataclass(frozen=True)
class ConvMapping:
    """Cycle counts of one conv layer on an AR × AC array, and the mapping chosen.

    ``im2col``, ``sdk`` and ``vw_sdk`` are array read cycles of each scheme (``vw_sdk`` is
    never above ``im2col``: im2col is the fallback). ``scheme`` is "vw-sdk" when a parallel
    window beats im2col, else "im2col". ``window`` is the chosen input window (K+i−1, K+j−1),
    (K, K) for im2col. ``ict``/``oct`` are the input/output channels one array holds (im2col:
    IC, cut into ⌈K²·IC/AR⌉ row tiles, and min(OC, AC)). ``tiles`` is the number of weight
    arrays, ⌈IC/ICt⌉·⌈OC/OCt⌉ (im2col: ⌈K²·IC/AR⌉·⌈OC/AC⌉); ``positions`` the window
    positions one array set steps through, so ``vw_sdk == positions * tiles``.
    """

    im2col: int
    sdk: int
    vw_sdk: int
    scheme: str
    window: tuple[int, int]
    ict: int
    oct: int
    tiles: int
    positions: int


@dataclass(frozen=True)
class Window:
    """One parallel window (i × j outputs per cycle) and its cost."""

    i: int
    j: int
    ict: int
    oct: int
    positions: int
    tiles: int

    @property
    def cycles(self) -> int:
        """Array read cycles: every position on every array set."""
        return self.positions * self.tiles


def _positions(h: int, w: int, k: int, i: int, j: int) -> int:
    """Window positions that cover all (H−K+1) × (W−K+1) outputs, i × j at a time."""
    return (ceil_div(h - k - i + 1, i) + 1) * (ceil_div(w - k - j + 1, j) + 1)


def _window(
    h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int, i: int, j: int
) -> Window | None:
    """The (K+i−1) × (K+j−1) window's cost, or None when it does not fit input or array."""
    rows, cols = k + i - 1, k + j - 1
    ict, oct_ = min(ic, ar // (rows * cols)), min(oc, ac // (i * j))
    if rows > h or cols > w or ict < 1 or oct_ < 1:
        return None
    tiles = ceil_div(ic, ict) * ceil_div(oc, oct_)
    return Window(i, j, ict, oct_, _positions(h, w, k, i, j), tiles)


def conv_cycles(
    h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int, *, stride: int = 1
) -> ConvMapping:
    """im2col, SDK and VW-SDK cycles of a K × K conv over an H × W × IC input (no padding).

    ``ar``/``ac`` are the array's input rows and logical weight columns. With ``stride`` > 1
    only im2col applies (VW-SDK assumes stride 1): all three counts are im2col's.
    """
    if k > h or k > w:
        raise ValueError(f"kernel {k} is larger than the {h}×{w} input")
    positions = ((h - k) // stride + 1) * ((w - k) // stride + 1)
    tiles = ceil_div(k * k * ic, ar) * ceil_div(oc, ac)
    im2col = Window(1, 1, ic, min(oc, ac), positions, tiles)
    if stride > 1:
        return _conv_mapping(im2col, im2col, im2col.cycles, k)
    sdk = im2col.cycles
    i = 2
    while k + i - 1 <= min(h, w) and (k + i - 1) ** 2 * ic <= ar and i * i * oc <= ac:
        sdk = min(sdk, _positions(h, w, k, i, i))  # one array holds the whole layer
        i += 1
    windows = candidate_windows(h, w, k, ic, oc, ar, ac)
    best = min(windows, key=lambda win: preference(win, k, ic, oc), default=im2col)
    return _conv_mapping(best if best.cycles < im2col.cycles else im2col, im2col, sdk, k)


def candidate_windows(h: int, w: int, k: int, ic: int, oc: int, ar: int, ac: int) -> list[Window]:
    """Every parallel window i, j ≥ 1 that fits the H × W input and one AR × AC array."""
    # (K+i−1)·(K+j−1) ≤ AR bounds both loops; taller or wider windows hold no channel.
    return [
        win
        for i in range(1, min(h - k + 1, ar // k - k + 1) + 1)
        for j in range(1, min(w - k + 1, ar // (k + i - 1) - k + 1) + 1)
        if (win := _window(h, w, k, ic, oc, ar, ac, i, j)) is not None
    ]


def preference(win: Window, k: int, ic: int, oc: int) -> tuple[int, int, int, int]:
    """Ties on cycles go to fewer array columns in all, then smaller window, then fewer rows."""
    rows, cols = k + win.i - 1, k + win.j - 1
    columns = win.i * win.j * oc * ceil_div(ic, win.ict)
    return (win.cycles, columns, rows * cols, rows)


def _conv_mapping(best: Window, im2col: Window, sdk: int, k: int) -> ConvMapping:
    return ConvMapping(
        im2col=im2col.cycles,
        sdk=sdk,
        vw_sdk=best.cycles,
        scheme="im2col" if best is im2col else "vw-sdk",
        window=(k + best.i - 1, k + best.j - 1),
        ict=best.ict,
        oct=best.oct,
        tiles=best.tiles,
        positions=best.positions,
    )
