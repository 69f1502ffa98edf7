"""Procedural test images (textured scenes, low-texture images) and edits, for training and tests without photos."""

from __future__ import annotations

import cv2
import numpy as np


def _pink_noise(rng: np.random.Generator, h: int, w: int, alpha: float) -> np.ndarray:
    f = np.fft.rfft2(rng.standard_normal((h, w)))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f /= np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / max(h, w)) ** alpha
    x = np.fft.irfft2(f, s=(h, w))
    x -= x.min()
    return x / max(x.max(), 1e-9)


def textured_image(rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    """A cluttered RGB scene: 1/f background plus random shapes, lines and text (has many keypoints)."""
    base = _pink_noise(rng, h, w, rng.uniform(1.2, 2.2))
    img = np.empty((h, w, 3), np.float32)
    tint = rng.uniform(0.2, 1.0, 3)
    for c in range(3):
        img[:, :, c] = base * tint[c] * 255
    img = img.astype(np.uint8)
    for _ in range(rng.integers(15, 60)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(0, 5)
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if kind == 0:
            cv2.rectangle(img, p1, p2, color, int(rng.choice([-1, 1, 2, 3])))
        elif kind == 1:
            cv2.circle(img, p1, int(rng.integers(3, max(4, min(h, w) // 5))), color, int(rng.choice([-1, 1, 2])))
        elif kind == 2:
            cv2.line(img, p1, p2, color, int(rng.integers(1, 4)))
        elif kind == 3:
            pts = rng.integers(0, [w, h], size=(int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], color)
        else:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(2, 8))))
            cv2.putText(img, text, p1, int(rng.integers(0, 7)), float(rng.uniform(0.5, 2.5)), color,
                        int(rng.integers(1, 4)))
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    noise = rng.normal(0, rng.uniform(0, 4), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def low_texture_image(rng: np.random.Generator, h: int = 480, w: int = 640) -> np.ndarray:
    """Flat colour, linear or radial gradient (a wallpaper or sky): very few keypoints."""
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        t = np.zeros((h, w), np.float32)
    elif kind == 1:
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        t = t / max(1e-6, float(t.max()))
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    return np.clip(img + rng.normal(0, 0.8, img.shape), 0, 255).astype(np.uint8)


EDITS = ("resize", "jpeg", "exposure", "grey", "crop", "rot90", "flip", "rotate", "perspective")


def edit(img: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """A derived copy of img: one of EDITS, with random strength."""
    h, w = img.shape[:2]
    if kind == "resize":
        s = rng.uniform(0.4, 0.9)
        return cv2.resize(img, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 85))])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if kind == "exposure":
        g = rng.uniform(0.6, 1.6)
        return np.clip(255 * (img / 255.0) ** g * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
    if kind == "grey":
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if kind == "crop":
        f = rng.uniform(0.6, 0.85)
        ch, cw = int(h * f), int(w * f)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return np.ascontiguousarray(img[y:y + ch, x:x + cw])
    if kind == "rot90":
        return np.ascontiguousarray(np.rot90(img, int(rng.integers(1, 4))))
    if kind == "flip":
        return np.ascontiguousarray(img[:, ::-1])
    if kind == "rotate":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-30, 30)), float(rng.uniform(0.8, 1.1)))
        return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if kind == "perspective":
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        j = 0.15 * min(h, w)
        dst = src + rng.uniform(-j, j, src.shape).astype(np.float32)
        return cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT)
    raise ValueError(kind)
