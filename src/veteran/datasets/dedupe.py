"""Near-duplicate inputs: which texts say almost the same thing.

Texts are normalised (case folded, runs of whitespace made one space) and compared as sets of
character 5-grams by Jaccard similarity. Equal normalised texts group at once (a dict); the
rest get 64-value MinHash signatures (one-permutation hashing, see `_signatures`) cut into
bands for locality-sensitive hashing, the band width chosen so that a pair exactly at the
threshold becomes a candidate with probability >= 98% (pairs above it more surely). Every
candidate pair is confirmed by its exact Jaccard on the 5-gram sets, so the sketch can cost a
little recall, never a false merge. Time and memory grow with the characters of all texts:
100k prompts of ~325 characters took 5-8 s and 420 MB on the 2-core machine (classic MinHash,
64 hashes per shingle, took 81 s), with no comparison of every pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

SHINGLE = 5  # characters per shingle: short enough for short prompts, long enough to be specific
BINS = 64  # signature length (a power of two: a shingle's low bits pick its bin)
RECALL_AT_THRESHOLD = 0.98
BATCH_CHARS = 2_000_000  # characters sketched at once: bounds memory to ~200 MB
EMPTY = np.uint64(2**64 - 1)
OFFSET = np.uint64(2**57)  # bin values are 57-bit: value + 63 * OFFSET still fits
U64 = npt.NDArray[np.uint64]


def normalize(text: str) -> str:
    """Case folded, whitespace collapsed: the form duplicates are judged on."""
    return " ".join(text.casefold().split())


def clusters(texts: Sequence[str], threshold: float | None) -> list[int]:
    """A cluster label per text: texts whose normalised forms are equal, or (given `threshold`)
    whose 5-gram Jaccard similarity reaches it (transitively), share the label of the first
    of them."""
    if threshold is not None and not 0 < threshold <= 1:
        raise ValueError(f"the similarity threshold must be in (0, 1], not {threshold}")
    parent = list(range(len(texts)))
    first: dict[str, int] = {}
    unique: list[int] = []  # index of each distinct normalised text
    for i, text in enumerate(texts):
        key = normalize(text)
        if key in first:
            parent[i] = first[key]
        else:
            first[key] = i
            unique.append(i)
    if threshold is not None and len(unique) > 1:
        for x, y in _similar_pairs([normalize(texts[i]) for i in unique], threshold):
            _union(parent, unique[x], unique[y])
    return [_find(parent, i) for i in range(len(texts))]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:  # the smaller index stays the root: labels name a cluster's first text
        parent[max(ra, rb)] = min(ra, rb)


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _window_hashes(codes: U64, width: int) -> U64:
    """A polynomial hash of every `width`-long window of `codes`, mixed (uint64 arrays wrap)."""
    count = len(codes) - width + 1
    h = np.full(count, np.uint64(width), dtype=np.uint64)
    for j in range(width):
        h = h * np.uint64(1_000_003) + codes[j: j + count]
    return _mix(h)


def _codes(text: str) -> U64:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _shingles(text: str) -> U64:
    """The sorted distinct hashes of the text's character 5-grams (the whole text if shorter)."""
    codes = _codes(text)
    return np.unique(_window_hashes(codes, min(SHINGLE, len(codes))))


def _batch_shingles(texts: Sequence[str]) -> tuple[U64, npt.NDArray[np.intp]]:
    """Every text's 5-gram hashes (repeats kept: a minimum does not mind) and the text each
    belongs to, hashed in one pass over the texts joined together."""
    lengths = np.array([len(t) for t in texts], dtype=np.intp)
    short = np.flatnonzero(lengths < SHINGLE)
    codes = _codes("".join(texts))
    windows = _window_hashes(codes, SHINGLE) if len(codes) >= SHINGLE else codes[:0]
    counts = np.maximum(lengths - SHINGLE + 1, 0)
    starts = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(texts)), counts)
    # window positions inside the joined text: those that stay inside one text
    positions = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    values = windows[positions + np.repeat(starts, counts)]
    if len(short):  # shorter than a shingle: the whole text is its one shingle
        extra = np.concatenate([_shingles(texts[int(i)]) for i in short])
        values, rows = np.concatenate([values, extra]), np.concatenate([rows, short])
    return values, rows


def _signatures(texts: Sequence[str]) -> U64:
    """One-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification
    (Shrivastava & Li 2014): a shingle's hash picks one of 64 bins by its low bits, a bin keeps
    the smallest of its high bits, and an empty bin borrows its next non-empty neighbour's value
    (offset by the distance). Two texts agree on a bin with probability ~ their Jaccard
    similarity, as with classic MinHash, for one hash per shingle instead of 64."""
    out = np.empty((len(texts), BINS), dtype=np.uint64)
    start = 0
    while start < len(texts):
        stop, size = start, 0
        while stop < len(texts) and (size == 0 or size + len(texts[stop]) <= BATCH_CHARS):
            size += len(texts[stop])
            stop += 1
        values, rows = _batch_shingles(texts[start:stop])
        flat = np.full((stop - start) * BINS, EMPTY, dtype=np.uint64)
        bins = (values & np.uint64(BINS - 1)).astype(np.intp)
        np.minimum.at(flat, rows * BINS + bins, values >> np.uint64(7))
        out[start:stop] = _densify(flat.reshape(stop - start, BINS))
        start = stop
    return out


def _densify(signatures: U64) -> U64:
    missing = signatures == EMPTY
    sparse = np.flatnonzero(missing.any(axis=1))
    if not len(sparse):
        return signatures
    filled, base, missing = signatures[sparse], signatures[sparse], missing[sparse]
    for distance in range(1, BINS):  # every text has a shingle, so some bin is never empty
        neighbour = np.roll(base, -distance, axis=1)
        take = missing & (neighbour != EMPTY)
        filled[take] = neighbour[take] + np.uint64(distance) * OFFSET
        missing &= ~take
        if not missing.any():
            break
    signatures[sparse] = filled
    return signatures


def _band_width(threshold: float) -> int:
    """Rows per band: the widest (fewest false candidates) that still finds a pair at the
    threshold with probability RECALL_AT_THRESHOLD."""
    for rows in range(BINS, 0, -1):
        bands = BINS // rows
        if 1 - (1 - threshold**rows) ** bands >= RECALL_AT_THRESHOLD:
            return rows
    return 1


def _similar_pairs(texts: Sequence[str], threshold: float) -> list[tuple[int, int]]:
    """Pairs (by index) whose exact 5-gram Jaccard reaches `threshold`, among LSH candidates:
    texts that agree on every bin of at least one band."""
    signatures = _signatures(texts)
    rows = _band_width(threshold)
    confirm = _Confirm(texts, signatures, threshold)
    for start in range(0, BINS - rows + 1, rows):
        band = np.ascontiguousarray(signatures[:, start:start + rows])
        keys = band.view(np.dtype((np.void, band.dtype.itemsize * rows))).ravel()
        _, bucket, sizes = np.unique(keys, return_inverse=True, return_counts=True)
        shared = np.flatnonzero(sizes[bucket] > 1)
        order = shared[np.argsort(bucket[shared], kind="stable")]
        edges = np.flatnonzero(np.diff(bucket[order])) + 1
        for members in np.split(order, edges) if len(order) else []:
            confirm.bucket(members.tolist())
    return confirm.pairs


class _Confirm:
    """Checks of candidate pairs: first how many signature bins agree (a pair at the threshold
    falls below the floor, 4 standard deviations under it, about once in 30,000), then the
    exact Jaccard of the 5-gram sets, each set made once, on demand. Prompts cut from one
    template land in shared buckets by the dozen; the cheap first check keeps them cheap."""

    def __init__(self, texts: Sequence[str], signatures: U64, threshold: float) -> None:
        self.texts, self.signatures, self.threshold = texts, signatures, threshold
        spread = 4 * math.sqrt(threshold * (1 - threshold) / BINS)
        self.floor = math.floor(BINS * max(threshold - spread, 0.0))
        self.sets: dict[int, U64] = {}
        self.checked: set[tuple[int, int]] = set()
        self.pairs: list[tuple[int, int]] = []

    def shingles(self, i: int) -> U64:
        if i not in self.sets:
            self.sets[i] = _shingles(self.texts[i])
        return self.sets[i]

    def similar(self, i: int, j: int) -> bool:
        a, b = self.shingles(i), self.shingles(j)
        if min(len(a), len(b)) < self.threshold * max(len(a), len(b)):
            return False  # sizes alone rule it out
        shared = len(np.intersect1d(a, b, assume_unique=True))
        return shared >= self.threshold * (len(a) + len(b) - shared)

    def bucket(self, members: list[int]) -> None:
        """Each member is compared with the bucket's representatives so far (at most 8), not
        with every other member: a bucket of thousands of near-copies costs linear time."""
        representatives: list[int] = []
        for i in members:
            matched = False
            if representatives:
                agree = np.count_nonzero(
                    self.signatures[representatives] == self.signatures[i], axis=1)
                for k in np.flatnonzero(agree >= self.floor).tolist():
                    r = representatives[k]
                    if (r, i) not in self.checked:
                        self.checked.add((r, i))
                        if self.similar(r, i):
                            self.pairs.append((r, i))
                            matched = True
                            break
            if not matched and len(representatives) < 8:
                representatives.append(i)
