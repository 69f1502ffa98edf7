"""Geometric verification of two descriptor sets (TEBLID matches + RANSAC homography), relation hints, decision."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources

import cv2
import numpy as np

from .descriptors import Descriptors, unpack_local

RATIO = 0.8  # Lowe ratio test for TEBLID-256 Hamming distances
RANSAC_PX = 5.0  # reprojection threshold in pixels of the <= 640 px grey copies
MIN_MATCHES = 8
DECISION_FILE = "decision_v1.json"


@dataclass(frozen=True)
class Match:
    inliers: int  # RANSAC inliers, counted once per distinct query keypoint position
    matches: int  # ratio-test matches fed to RANSAC
    homography: np.ndarray | None  # 3x3, maps a's original pixel coordinates to b's (None if unverified)
    mirrored: bool  # True when a's mirror image matched (homography then includes the flip)
    score: float  # inliers / min(keypoints): 0..1, the share of a's structure found in b
    similarity_inliers: int = 0  # of those, how many a rotation+uniform scale+shift(+flip) also explains

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0


NO_MATCH = Match(0, 0, None, False, 0.0)


@dataclass(frozen=True)
class Thresholds:
    """The 'worth trying inter' rule; see calibrate() and developer-notes/similarity.md."""

    min_inliers: int = 20  # verified local matches on one of the k shortlisted candidates
    copy_max_bits: int = 8  # copy-hash distance that alone counts as a copy ...
    copy_global_max_bits: int = 96  # ... when the global codes also agree this well (pHash alone is too
    #                                 weak over a million stored images)
    low_texture_max_bits: int = 12  # thumbnail-code distance at which two low-texture images are copies
    k: int = 30  # candidates verified per query
    per_candidate_fp: float = 0.0  # measured false-match rate of one unrelated candidate at min_inliers
    query_fp: float = 0.0  # 1 - (1 - per_candidate_fp) ** k


_cached: Thresholds | None = None


def thresholds() -> Thresholds:
    """The calibrated thresholds shipped with the package (decision_v1.json), defaults if absent."""
    global _cached
    if _cached is None:
        try:
            raw = resources.files(__package__).joinpath(DECISION_FILE).read_text()
            _cached = Thresholds(**{k: v for k, v in json.loads(raw).items() if k in Thresholds.__dataclass_fields__})
        except FileNotFoundError:
            _cached = Thresholds()
    return _cached


def thresholds_json(t: Thresholds) -> str:
    return json.dumps(asdict(t), indent=2) + "\n"


def hamming64(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _scale_matrix(d: Descriptors, grey_w: int, grey_h: int) -> np.ndarray:
    sx = grey_w / d.width if d.width else 1.0
    sy = grey_h / d.height if d.height else 1.0
    return np.diag([sx, sy, 1.0])


def _match_sets(la: bytes, lb: bytes) -> tuple[int, int, np.ndarray | None, int, int, int]:
    xa, da, wa, ha = unpack_local(la)
    xb, db, wb, hb = unpack_local(lb)
    if len(da) < MIN_MATCHES or len(db) < MIN_MATCHES:
        return 0, 0, None, wa, ha, 0
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < MIN_MATCHES:
        return 0, len(good), None, wa, ha, 0
    src = xa[[m.queryIdx for m in good]]
    dst = xb[[m.trainIdx for m in good]]
    h, mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX, maxIters=2000, confidence=0.995)
    if h is None or mask is None or not np.all(np.isfinite(h)):
        return 0, len(good), None, wa, ha, 0
    det = float(np.linalg.det(h[:2, :2]))
    if not 1e-3 < abs(det) < 1e3:  # degenerate fits (all points on a line, huge scale) are not matches
        return 0, len(good), None, wa, ha, 0
    inl = mask.ravel().astype(bool)
    # ORB detects the same corner at several pyramid levels; count each position once so a few
    # repeated points cannot make up an "inlier set" on unrelated images.
    # Likewise on b's side: generic corners (a grid, window frames) match one corner of b many times over.
    unique = min(len({(int(x), int(y)) for x, y in np.round(src[inl] / 2)}),
                 len({(int(x), int(y)) for x, y in np.round(dst[inl] / 2)}))
    # An edited copy (crop, rotation, resize, flip) is explained by a 4-dof similarity transform as well;
    # a new viewpoint needs the full homography. RANSAC's 8-dof refit is too loose to tell them apart.
    sim_inl = 0
    if inl.sum() >= 3:
        a2, m2 = cv2.estimateAffinePartial2D(src[inl], dst[inl], method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX)
        if a2 is not None and m2 is not None:
            sim_inl = int(round(unique * float(m2.mean())))
    return unique, len(good), h, wa, ha, sim_inl


def verify(a: Descriptors, b: Descriptors, mirror: bool | None = None) -> Match:
    """Match a (the query) against b (a stored image).

    mirror: None tries a's own features and (when present) its mirror image's, keeping the better;
    False/True tries only one (the index picks the orientation whose global code is closer: halves the cost).
    """
    best = NO_MATCH
    tries = []
    if mirror is not True or not a.mirror_local:
        tries.append((a.local, False))
    if mirror is not False and a.mirror_local:
        tries.append((a.mirror_local, True))
    nb = b.n_keypoints
    for la, mirrored in tries:
        inl, nmatch, h, wa, ha, sim_inl = _match_sets(la, b.local)
        if h is None or inl <= best.inliers:
            continue
        _, _, wb, hb = unpack_local(b.local)
        pre = _scale_matrix(a, wa, ha)
        if mirrored:  # mirrored grey x' = (w - 1) - x
            pre = np.array([[-1.0, 0, wa - 1], [0, 1, 0], [0, 0, 1]]) @ pre
        full = np.linalg.inv(_scale_matrix(b, wb, hb)) @ h @ pre
        full /= full[2, 2] if abs(full[2, 2]) > 1e-12 else 1.0
        na = _n(la)
        best = Match(inl, nmatch, full, mirrored, inl / max(1, min(na, nb)), sim_inl)
    return best


def _n(local: bytes) -> int:
    return int.from_bytes(local[:2], "big") if local else 0


def _near_similarity(m: Match) -> bool:
    """True when a similarity transform explains (almost) all inliers: a derived copy, not a new view."""
    return m.homography is not None and m.similarity_inliers >= 0.85 * m.inliers


def relation_hint(a: Descriptors, b: Descriptors, copy_dist: int, global_dist: int, m: Match,
                  t: Thresholds | None = None) -> str:
    """'copy' (same picture, re-encoded/resized/exposure), 'edited' (crop/rotate/flip), 'same scene', or ''."""
    t = t or thresholds()
    if a.pixel_hash == b.pixel_hash:
        return "copy"
    if a.low_texture:
        # No local features to verify: pHash of a near-flat image is noise, the colour-thumbnail code is not.
        both_low = b.low_texture
        if both_low and (global_dist <= t.low_texture_max_bits
                         or (copy_dist <= t.copy_max_bits and global_dist <= 2 * t.low_texture_max_bits)):
            return "copy"
        return ""
    if copy_dist <= t.copy_max_bits and global_dist <= t.copy_global_max_bits:
        return "copy"
    if m.inliers >= t.min_inliers:
        return "edited" if _near_similarity(m) and m.inlier_ratio >= 0.3 else "same scene"
    return ""


def worth_trying(a: Descriptors, b: Descriptors, copy_dist: int, global_dist: int, m: Match,
                 t: Thresholds | None = None) -> bool:
    """Per-candidate decision: identical pixels, a close copy hash backed by the global code, or enough inliers."""
    return relation_hint(a, b, copy_dist, global_dist, m, t) != ""


def false_positive_rate(p: float, k: int) -> float:
    """Chance that at least one of k unrelated candidates passes a test with per-candidate rate p."""
    return 1.0 - (1.0 - p) ** k


def calibrate(unrelated_inliers: np.ndarray, similar_inliers: np.ndarray, *, k: int, target: float = 0.01,
              base: Thresholds | None = None, floor: int = MIN_MATCHES,
              query_max_inliers: np.ndarray | None = None) -> Thresholds:
    """Smallest inlier threshold whose query-level false-positive rate stays <= target.

    unrelated_inliers: verify() inliers over pairs of unrelated images (the per-candidate null); the
    query-level rate is estimated from it as 1-(1-p)^k, which assumes the k candidates fail independently;
    query_max_inliers: per unrelated query (its related images hidden), the most inliers any of its
    candidates had. When given, the share of those queries at or above the threshold must stay <= target
    as well: on real photos one query's candidates are not independent (a facade or a textured query
    matches many candidates a little; issue 11, 3b reported 2.1% of unseen photos' queries passing where
    the per-pair estimate promised 0.26%);
    floor: never go below this many inliers, whatever a small null sample says;
    similar_inliers is only used to report what recall the threshold keeps (see the bench).
    Both rates use +1 smoothing, (count + 1) / (n + 1): with few pairs or queries measured a zero count must
    not read as 0; the reported per_candidate_fp / query_fp are these upper estimates (query_fp the larger).
    """
    base = base or thresholds()
    u = np.asarray(unrelated_inliers)
    n = max(1, len(u))
    qm = np.asarray(query_max_inliers) if query_max_inliers is not None else None

    def rates(t: int) -> tuple[float, float]:
        p = (np.count_nonzero(u >= t) + 1) / (n + 1)
        q = false_positive_rate(p, k)
        if qm is not None and len(qm):
            q = max(q, (np.count_nonzero(qm >= t) + 1) / (len(qm) + 1))
        return float(p), float(q)

    for t in range(max(MIN_MATCHES, floor), 200):
        if rates(t)[1] <= target:
            break
    p_raw, q_raw = rates(t)
    return Thresholds(min_inliers=int(t), copy_max_bits=base.copy_max_bits,
                      copy_global_max_bits=base.copy_global_max_bits,
                      low_texture_max_bits=base.low_texture_max_bits, k=k,
                      per_candidate_fp=p_raw, query_fp=q_raw)


def recall_at(similar_inliers: np.ndarray, t: int) -> float:
    s = np.asarray(similar_inliers)
    return float(np.count_nonzero(s >= t) / len(s)) if len(s) else math.nan
