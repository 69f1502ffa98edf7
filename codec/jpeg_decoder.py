"""libjpeg-turbo's decode (accurate or fast integer IDCT, fancy or plain upsampling, YCbCr->RGB) in integer numpy.

Every step is a port of the C code's integer arithmetic (jidctint.c, jdsample.c, jdcolor.c,
jdmaster.c's range-limit table), so a picture decoded from a JPEG by Pillow, OpenCV, ImageMagick,
djpeg or a browser using libjpeg-turbo is reproduced bit for bit from its quantized coefficients,
on any machine, without depending on a JPEG library's version.
"""

from __future__ import annotations

import numpy as np

CONST_BITS = 13
PASS1_BITS = 2
F_0_298 = 2446
F_0_390 = 3196
F_0_541 = 4433
F_0_765 = 6270
F_0_899 = 7373
F_1_175 = 9633
F_1_501 = 12299
F_1_847 = 15137
F_1_961 = 16069
F_2_053 = 16819
F_2_562 = 20995
F_3_072 = 25172


def _post_idct_table() -> np.ndarray:
    """jdmaster.c prepare_range_limit_table, the part IDCT_range_limit points at, indexed by x & 1023."""
    t = np.zeros(1024, dtype=np.uint8)
    t[:128] = np.arange(128, 256)
    t[128:512] = 255
    t[896:] = np.arange(0, 128)
    return t


_RANGE = _post_idct_table()


def _idct_1d(x: list[np.ndarray], shift: int, pre: int) -> list[np.ndarray]:
    """One pass of jpeg_idct_islow on 8 int64 arrays (x[k] = input k); outputs descaled by ``shift``.
    ``pre`` is the left shift of the even part's DC/4 terms (CONST_BITS in both passes)."""
    z2, z3 = x[2], x[6]
    z1 = (z2 + z3) * F_0_541
    tmp2 = z1 + z3 * (-F_1_847)
    tmp3 = z1 + z2 * F_0_765
    tmp0 = (x[0] + x[4]) << pre
    tmp1 = (x[0] - x[4]) << pre
    tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
    tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
    t0, t1, t2, t3 = x[7], x[5], x[3], x[1]
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * F_1_175
    t0 = t0 * F_0_298
    t1 = t1 * F_2_053
    t2 = t2 * F_3_072
    t3 = t3 * F_1_501
    z1 = z1 * (-F_0_899)
    z2 = z2 * (-F_2_562)
    z3 = z3 * (-F_1_961) + z5
    z4 = z4 * (-F_0_390) + z5
    t0 = t0 + z1 + z3
    t1 = t1 + z2 + z4
    t2 = t2 + z2 + z3
    t3 = t3 + z1 + z4
    half = 1 << (shift - 1)
    return [(tmp10 + t3 + half) >> shift, (tmp11 + t2 + half) >> shift, (tmp12 + t1 + half) >> shift,
            (tmp13 + t0 + half) >> shift, (tmp13 - t0 + half) >> shift, (tmp12 - t1 + half) >> shift,
            (tmp11 - t2 + half) >> shift, (tmp10 - t3 + half) >> shift]


def idct_islow(coefs: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """N x 8 x 8 quantized coefficients (natural order, [v, u]) and an 8 x 8 table -> N x 8 x 8 uint8."""
    d = coefs.astype(np.int64) * qt.astype(np.int64)[None]
    # pass 1: columns (along v), into the work array (int in C: the values stay far inside 32 bits)
    cols = _idct_1d([d[:, k, :] for k in range(8)], CONST_BITS - PASS1_BITS, CONST_BITS)
    ws = np.stack(cols, axis=1)  # [N, y, u]
    rows = _idct_1d([ws[:, :, k] for k in range(8)], CONST_BITS + PASS1_BITS + 3, CONST_BITS)
    out = np.stack(rows, axis=2)  # [N, y, x]
    return _RANGE[out & 1023]


# jidctfst.c (libjpeg-turbo's "fast integer" IDCT, djpeg -dct fast, TurboJPEG's TJFLAG_FASTDCT)
IFAST_FIX_1_082392200 = 277
IFAST_FIX_1_414213562 = 362
IFAST_FIX_1_847759065 = 473
IFAST_FIX_2_613125930 = 669
# jddctmgr.c: the ifast multiplier table is the quantization table times these (14-bit) AA&N
# scale factors, descaled to IFAST_SCALE_BITS = 2
_AANSCALES = np.array([
    16384, 22725, 21407, 19266, 16384, 12873, 8867, 4520, 22725, 31521, 29692, 26722, 22725, 17855, 12299, 6270,
    21407, 29692, 27969, 25172, 21407, 16819, 11585, 5906, 19266, 26722, 25172, 22654, 19266, 15137, 10426, 5315,
    16384, 22725, 21407, 19266, 16384, 12873, 8867, 4520, 12873, 17855, 16819, 15137, 12873, 10114, 6967, 3552,
    8867, 12299, 11585, 10426, 8867, 6967, 4799, 2446, 4520, 6270, 5906, 5315, 4520, 3552, 2446, 1247,
], dtype=np.int64).reshape(8, 8)


def _w16(x: np.ndarray) -> np.ndarray:
    """Assignment to a 16-bit DCTELEM (libjpeg-turbo's SIMD builds, which the C code then matches)."""
    return ((x + 32768) & 0xFFFF) - 32768


def _ifast_1d(x: list[np.ndarray]) -> list[np.ndarray]:
    """One pass of jpeg_idct_ifast on 8 int64 arrays (x[k] = input k, already DCTELEM values);
    the outputs are ints (not yet descaled)."""
    def mul(v: np.ndarray, c: int) -> np.ndarray:  # MULTIPLY: (DCTELEM)((v * c) >> CONST_BITS 8)
        return _w16((v * c) >> 8)

    tmp10, tmp11 = _w16(x[0] + x[4]), _w16(x[0] - x[4])
    tmp13 = _w16(x[2] + x[6])
    tmp12 = _w16(mul(x[2] - x[6], IFAST_FIX_1_414213562) - tmp13)
    tmp0, tmp3 = _w16(tmp10 + tmp13), _w16(tmp10 - tmp13)
    tmp1, tmp2 = _w16(tmp11 + tmp12), _w16(tmp11 - tmp12)
    z13, z10 = _w16(x[5] + x[3]), _w16(x[5] - x[3])
    z11, z12 = _w16(x[1] + x[7]), _w16(x[1] - x[7])
    tmp7 = _w16(z11 + z13)
    tmp11 = mul(z11 - z13, IFAST_FIX_1_414213562)
    z5 = mul(z10 + z12, IFAST_FIX_1_847759065)
    tmp10 = _w16(mul(z12, IFAST_FIX_1_082392200) - z5)
    tmp12 = _w16(mul(z10, -IFAST_FIX_2_613125930) + z5)
    tmp6 = _w16(tmp12 - tmp7)
    tmp5 = _w16(tmp11 - tmp6)
    tmp4 = _w16(tmp10 + tmp5)
    return [tmp0 + tmp7, tmp1 + tmp6, tmp2 + tmp5, tmp3 - tmp4, tmp3 + tmp4, tmp2 - tmp5, tmp1 - tmp6, tmp0 - tmp7]


def idct_ifast(coefs: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """N x 8 x 8 quantized coefficients and an 8 x 8 table -> N x 8 x 8 uint8, as jidctfst.c."""
    mult = (qt.astype(np.int64) * _AANSCALES + (1 << 11)) >> 12
    d = _w16(coefs.astype(np.int64) * mult[None])
    cols = _ifast_1d([d[:, k, :] for k in range(8)])  # pass 1 along v: int workspace
    ws = _w16(np.stack(cols, axis=1))  # pass 2 reads the workspace as DCTELEM
    rows = _ifast_1d([ws[:, :, k] for k in range(8)])
    out = np.stack(rows, axis=2) >> (2 + 3)  # IDESCALE(x, PASS1_BITS + 3): a plain shift
    return _RANGE[out & 1023]


IDCTS = {"islow": idct_islow, "ifast": idct_ifast}


def dct_matrix() -> np.ndarray:
    """The float orthonormal 8-point DCT matrix [u, x] that JPEG's coefficients are scaled to."""
    m = np.zeros((8, 8))
    for u in range(8):
        c = np.sqrt(0.5) if u == 0 else 1.0
        for x in range(8):
            m[u, x] = c / 2 * np.cos((2 * x + 1) * u * np.pi / 16)
    return m


def blocks_to_plane(blocks: np.ndarray, bh: int, bw: int) -> np.ndarray:
    return blocks.reshape(bh, bw, 8, 8).transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)


def plane_to_blocks(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape
    return plane.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)


def _fancy_h(cs: np.ndarray, out_w: int) -> np.ndarray:
    """Horizontal half of jdsample.c's fancy upsampling of column sums ``cs`` (int32), width doubled."""
    left = np.concatenate([cs[:, :1], cs[:, :-1]], axis=1)
    right = np.concatenate([cs[:, 1:], cs[:, -1:]], axis=1)
    out = np.empty((cs.shape[0], cs.shape[1] * 2), dtype=np.int32)
    out[:, 0::2] = cs * 3 + left
    out[:, 1::2] = cs * 3 + right
    return out[:, :out_w]


def upsample_h2v2(c: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """h2v2_fancy_upsample: triangle filter, edge samples replicated (``c``: the downsampled plane
    cropped to its real size)."""
    p = c.astype(np.int32)
    up = np.concatenate([p[:1], p[:-1]], axis=0)
    down = np.concatenate([p[1:], p[-1:]], axis=0)
    rows = np.empty((p.shape[0] * 2, p.shape[1]), dtype=np.int32)
    rows[0::2] = p * 3 + up
    rows[1::2] = p * 3 + down
    rows = rows[:out_h]
    # out[2i] = (3 cs[i] + cs[i-1] + 8) >> 4, out[2i+1] = (3 cs[i] + cs[i+1] + 7) >> 4
    h = _fancy_h(rows, out_w)
    bias = np.zeros(h.shape[1], dtype=np.int32)
    bias[0::2] = 8
    bias[1::2] = 7
    return ((h + bias) >> 4).astype(np.uint8)


def upsample_h2v1(c: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """h2v1_fancy_upsample: out[2i] = (3 c[i] + c[i-1] + 1) >> 2, out[2i+1] = (3 c[i] + c[i+1] + 2) >> 2."""
    p = c.astype(np.int32)[:out_h]
    h = _fancy_h(p, out_w)
    bias = np.zeros(h.shape[1], dtype=np.int32)
    bias[0::2] = 1
    bias[1::2] = 2
    return ((h + bias) >> 2).astype(np.uint8)


def _ycc_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.arange(256, dtype=np.int64) - 128

    def fix(v: float) -> int:
        return int(v * (1 << 16) + 0.5)

    half = 1 << 15
    cr_r = (fix(1.40200) * x + half) >> 16
    cb_b = (fix(1.77200) * x + half) >> 16
    cr_g = -fix(0.71414) * x
    cb_g = -fix(0.34414) * x + half
    return cr_r, cb_b, cr_g, cb_g


CR_R, CB_B, CR_G, CB_G = _ycc_tables()
# jdcolor.c's arithmetic folded into lookup tables, exact by construction (a test compares all 2^24
# inputs with the formula written out): R and B as clipped uint8 over (Y, Cr) and (Y, Cb), G's chroma term
# over (Cb, Cr). About 2x faster than int64 planes and a stack, and 8x less memory.
_Y = np.arange(256, dtype=np.int64)[:, None]
R_LUT = np.clip(_Y + CR_R[None, :], 0, 255).astype(np.uint8).ravel()
B_LUT = np.clip(_Y + CB_B[None, :], 0, 255).astype(np.uint8).ravel()
G_CHROMA = ((CB_G[:, None] + CR_G[None, :]) >> 16).astype(np.int16).ravel()


def ycc_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """jdcolor.c ycc_rgb_convert (uint8 planes of the same shape) -> H x W x 3 uint8."""
    out = np.empty((*y.shape, 3), dtype=np.uint8)
    y_hi = y.astype(np.uint16) << 8
    out[..., 0] = R_LUT[y_hi | cr]
    out[..., 2] = B_LUT[y_hi | cb]
    g = G_CHROMA[(cb.astype(np.uint16) << 8) | cr]
    g += y
    np.clip(g, 0, 255, out=g)
    out[..., 1] = g
    return out


def upsample_replicate(c: np.ndarray, hs: int, vs: int, out_h: int, out_w: int) -> np.ndarray:
    """Plain up-sampling (do_fancy_upsampling off: djpeg -nosmooth, TurboJPEG's TJFLAG_FASTUPSAMPLE;
    jdmerge.c's merged up-sampling converts the same replicated samples)."""
    return np.repeat(np.repeat(c, vs, axis=0), hs, axis=1)[:out_h, :out_w]


BAND_PIXELS = 1 << 19  # pictures decode in bands of MCU rows of about this many pixels: the int64
# IDCT work arrays are ~100 bytes per pixel, so a 24 MP picture decoded whole would need GBs


def decode(coefs: list[np.ndarray], qts: list[np.ndarray], sampling: tuple[int, int], height: int,
           width: int, idct: str = "islow", fancy: bool = True) -> np.ndarray:
    """Quantized coefficients (one N x 8 x 8 array per component, blocks row-major over the
    component's padded plane) -> the decoded picture (H x W grey or H x W x 3 RGB).
    ``sampling``: the luma sampling factors (1, 1) = 4:4:4, (2, 2) = 4:2:0, (2, 1) = 4:2:2;
    ``idct`` and ``fancy``: the decoder's IDCT (IDCTS) and chroma up-sampling.

    Decoded in bands of whole MCU rows, each with one MCU row of context above and below: the
    fancy up-sampler reads one chroma row across a band's edge, so the band's own rows come out
    exactly as in a decode of the whole picture (tests compare the two), in memory bounded by
    the band, not the picture."""
    spans = bands(height, width, sampling)
    if len(spans) == 1:
        return decode_whole(coefs, qts, sampling, height, width, idct, fancy)
    out = np.empty((height, width) if len(coefs) == 1 else (height, width, 3), dtype=np.uint8)
    for y0, y1, c0, c1 in spans:
        band = band_coefs(coefs, height, width, sampling, c0, c1)
        out[y0:y1] = decode_whole(band, qts, sampling, c1 - c0, width, idct, fancy)[y0 - c0: y1 - c0]
    return out


def bands(height: int, width: int, sampling: tuple[int, int], pixels: int = BAND_PIXELS
          ) -> list[tuple[int, int, int, int]]:
    """(y0, y1, c0, c1) per band of whole MCU rows of about ``pixels`` pixels: rows [y0, y1) are
    the band's own, [c0, c1) the band with one MCU row of context on each side (where the picture
    has one). One band, the whole picture, when it is small."""
    mcu = 8 * sampling[1]
    rows = max(mcu, pixels // max(1, width) // mcu * mcu)
    if height <= rows + 2 * mcu:
        return [(0, height, 0, height)]
    return [(y0, min(height, y0 + rows), max(0, y0 - mcu), min(height, y0 + rows + mcu))
            for y0 in range(0, height, rows)]


def band_coefs(coefs: list[np.ndarray], height: int, width: int, sampling: tuple[int, int], r0: int, r1: int
               ) -> list[np.ndarray]:
    """Each component's blocks covering picture rows [r0, r1) (r0 on the MCU grid, r1 too unless
    it is the picture's height): the coefficients of the picture's rows r0 .. r1 - 1 on their own."""
    out = []
    for ci, c in enumerate(coefs):
        per = 8 if ci == 0 else 8 * sampling[1]  # picture rows per block row of this component
        bw = blocks_shape(height, width, ci, sampling)[1]
        out.append(c[(r0 // per) * bw: -(-r1 // per) * bw])
    return out


def decode_whole(coefs: list[np.ndarray], qts: list[np.ndarray], sampling: tuple[int, int], height: int,
                 width: int, idct: str = "islow", fancy: bool = True) -> np.ndarray:
    """decode() of the picture in one piece (what every band is checked against)."""
    hs, vs = sampling
    transform = IDCTS[idct]
    planes = []
    for ci, (c, q) in enumerate(zip(coefs, qts, strict=True)):
        ch, cw = comp_size(height, width, ci, sampling)
        bh, bw = blocks_shape(height, width, ci, sampling)
        planes.append(blocks_to_plane(transform(c, q), bh, bw)[:ch, :cw])
    if len(planes) == 1:
        return planes[0]
    ups = []
    for p in planes[1:]:
        if (hs, vs) == (1, 1):
            ups.append(p)
        elif not fancy and (hs, vs) in ((2, 2), (2, 1)):
            ups.append(upsample_replicate(p, hs, vs, height, width))
        elif (hs, vs) == (2, 2):
            ups.append(upsample_h2v2(p, height, width))
        elif (hs, vs) == (2, 1):
            ups.append(upsample_h2v1(p, height, width))
        else:
            raise ValueError(f"unsupported sampling {sampling}")
    return ycc_to_rgb(planes[0], ups[0], ups[1])


def blocks_shape(height: int, width: int, ci: int, sampling: tuple[int, int]) -> tuple[int, int]:
    """Blocks (rows, columns) of component ``ci``: its real size rounded up to whole 8 x 8 blocks."""
    ch, cw = comp_size(height, width, ci, sampling)
    return -(-ch // 8), -(-cw // 8)


def comp_size(height: int, width: int, ci: int, sampling: tuple[int, int]) -> tuple[int, int]:
    """Real size of component ``ci`` (chroma: downsampled by the luma sampling factors, rounded up)."""
    if ci == 0:
        return height, width
    return -(-height // sampling[1]), -(-width // sampling[0])
