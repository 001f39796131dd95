"""Shared image sets: per-image signatures, and the class-wide screen for pairs of students.

Each image gets the SHA-256 of its decoded pixels after mode normalisation (an RGB PNG whose
three channels are equal hashes as the gray image it is, so RGB and L saves of one digit match)
and a 64-bit perceptual hash (imagehash pHash, which survives re-encoding and small edits).
A student's signature also keeps a gray 16x16 thumbnail per image so that pHash matches between
two students can be verified by the nearest-neighbour ratio without reopening submissions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from grader.integrity.neighbours import as_vectors, build_index, nearest_two

THUMB = 16
SIGNATURE_VERSION = 1


def normalised_digest(pixels: np.ndarray) -> bytes:
    """SHA-256 of uint8 pixels [H, W] or [H, W, C]; equal-channel RGB(A) counts as gray L."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and (pixels[..., 3] == 255).all():
        pixels = pixels[..., :3]  # an opaque alpha channel carries nothing
    if pixels.ndim == 3 and pixels.shape[2] == 3 and (pixels[..., 1:] == pixels[..., :1]).all():
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    digest = hashlib.sha256(f"{pixels.shape}".encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.digest()


def _gray(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    return image if image.mode == "L" else image.convert("L")


def phash(pixels: np.ndarray) -> int:
    bits = imagehash.phash(_gray(pixels)).hash.flatten()
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(_gray(pixels).resize((THUMB, THUMB), Image.BILINEAR), dtype=np.uint8)


@dataclass
class Signature:
    """One student's image set: names, pixel digests [N, 32], pHashes [N], thumbnails."""

    names: list[str]
    digests: np.ndarray
    phashes: np.ndarray
    thumbs: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            version=SIGNATURE_VERSION,
            names=np.array(self.names),
            digests=self.digests,
            phashes=self.phashes,
            thumbs=self.thumbs,
        )

    @classmethod
    def load(cls, path: Path) -> Signature:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != SIGNATURE_VERSION:
                raise ValueError(f"{path}: signature format {int(data['version'])}")
            return cls(
                [str(n) for n in data["names"]], data["digests"], data["phashes"], data["thumbs"]
            )


def signature(names: Sequence[str], images: Sequence[np.ndarray]) -> Signature:
    """Signature of decoded images (uint8 arrays, any mode/size), in the given order."""
    digests = np.zeros((len(images), 32), np.uint8)
    hashes = np.zeros(len(images), np.uint64)
    thumbs = np.zeros((len(images), THUMB, THUMB), np.uint8)
    for i, pixels in enumerate(images):
        digests[i] = np.frombuffer(normalised_digest(pixels), np.uint8)
        hashes[i] = phash(pixels)
        thumbs[i] = thumbnail(pixels)
    return Signature(list(names), digests, hashes, thumbs)


def duplicate_groups(sig: Signature) -> list[list[str]]:
    """Names of images with identical pixels within one set (groups of two or more)."""
    groups: dict[bytes, list[str]] = defaultdict(list)
    for name, digest in zip(sig.names, sig.digests):
        groups[digest.tobytes()].append(name)
    return [g for g in groups.values() if len(g) > 1]


@dataclass
class SharedPair:
    """Two students whose sets share images: counts and the verification score."""

    a: str
    b: str
    identical: int  # images with equal pixel digests
    phash_matches: int  # images of `a` whose pHash occurs in `b` (screen)
    verified: int  # images of `a` whose nearest image in `b` passes the ratio test
    examples: list[tuple[str, str]] = field(default_factory=list)  # (name in a, name in b)

    @property
    def shared(self) -> int:
        return max(self.identical, self.verified)


def _holders(key_sets: Mapping[str, set]) -> dict:
    holders = defaultdict(list)
    for student, keys in key_sets.items():
        for key in keys:
            holders[key].append(student)
    return holders


def _pair_counts(holders: dict, max_holders: int) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for students in holders.values():
        if 1 < len(students) <= max_holders:
            for pair in combinations(sorted(students), 2):
                counts[pair] += 1
    return counts


def verify_pair(a: Signature, b: Signature, rows_a: np.ndarray, ratio: float = 0.4) -> np.ndarray:
    """For images rows_a of `a`: (nearest row in b, or -1 when the ratio test does not pass)."""
    index = build_index(as_vectors(b.thumbs), dims=min(16, len(b)))
    found, _ = nearest_two(index, as_vectors(a.thumbs[rows_a]), ratio)
    # Identical up to re-encoding even where `b` holds the image twice (the ratio test fails
    # there): RMS <= 0.015 per pixel. Real MNIST digits' thumbnails, 10,000 test against 10,000
    # training digits, are never closer than 0.293 (RMS 0.018); JPEG q75 copies are within 0.202.
    # At RMS 0.05 (the earlier value) any two honest 5,000-digit sets shared 344-406 "copies".
    close = found.d1 <= 0.015 * THUMB
    passed = (found.ratio < ratio) | close
    return np.where(passed, found.i1, -1)


def shared_pairs(
    signatures: Mapping[str, Signature],
    min_shared: int = 25,
    max_holders: int = 5,
    ratio: float = 0.4,
    examples: int = 5,
) -> list[SharedPair]:
    """Pairs of students sharing at least ``min_shared`` images, most shared first.

    Pixel digests count identical images; pHashes screen for re-encoded or edited copies,
    ignoring hashes that more than ``max_holders`` students hold (common shapes, e.g. a
    plain "1", collide honestly); each screened pair is verified by the ratio test of the
    matched images against the other student's whole set.
    """
    digest_sets = {s: {d.tobytes() for d in sig.digests} for s, sig in signatures.items()}
    hash_sets = {s: set(sig.phashes.tolist()) for s, sig in signatures.items()}
    identical = _pair_counts(_holders(digest_sets), max_holders)
    screened = _pair_counts(_holders(hash_sets), max_holders)
    pairs = []
    for a, b in sorted(set(identical) | set(screened)):
        same = identical.get((a, b), 0)
        if max(same, screened.get((a, b), 0)) < min_shared:
            continue
        sa, sb = signatures[a], signatures[b]
        # The screen only nominates the pair (a re-encoding changes some pHashes): every image
        # of `a` is then tested against the whole of `b`.
        rows_a = np.arange(len(sa))
        matches = int(np.isin(sa.phashes, sb.phashes).sum())
        nearest = verify_pair(sa, sb, rows_a, ratio)
        ok = nearest >= 0
        shown = [(sa.names[i], sb.names[j]) for i, j in zip(rows_a[ok], nearest[ok])][:examples]
        pair = SharedPair(a, b, same, matches, int(ok.sum()), shown)
        if pair.shared >= min_shared:
            pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.shared, p.a, p.b))
