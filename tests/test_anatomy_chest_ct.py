"""CT vertebra segmentation on a real thin-slice chest CT: the RIDER feet-first CT
(``../shared/data/rider_lung_ct_rtstruct_seg``; 236 slices of 1.25 mm, 0.58 mm
pixels, T-spine from the upper thorax to the thoracolumbar junction).

It has no vertebra contours, so what is checked is what the anatomy fixes: its
noise (about 60 HU in soft tissue: unfiltered, the muscles speckle above the bone
threshold and the column spreads into them, and the 11 found 'vertebrae' were 60 to
110 mm tall), that the segmented vertebrae follow one another down the spine at
the pitch of thoracic vertebrae (body and disc 20-30 mm), each of a thoracic
vertebra's volume, and that no vertebra holds the canal (on 1.25 mm slices the ring
is closed on a third of the slices; where a closed ring's canal was passed over,
or the canal between two rings was enclosed on a coronal plane, the hole filling
made it bone: 25 of 236 slices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contourqa.anatomy import segment_spine
from contourqa.io.images import read_image_series
from contourqa.masks import crop_geometry

#: In-plane crop about the spine (mm): left-right half-width, and the extent in front
#: of and behind the row of the column (the bodies are in front, the spinous
#: processes behind)
_HALF_WIDTH_MM, _FRONT_MM, _BACK_MM = 70.0, 90.0, 60.0
#: Thoracic vertebrae: the distance of consecutive bodies (mm) and the volume (cc)
_PITCH_MM = (18.0, 34.0)
_VOLUME_CC = (15.0, 80.0)


def test_thoracic_vertebrae_of_a_thin_slice_chest_ct(rider_ct_dir: Path) -> None:
    image = read_image_series(sorted(rider_ct_dir.rglob("*.dcm")))
    g, px = image.geometry, image.pixels
    # the column: the image column and row with most bone near the midline
    bone = px >= 200
    ci = int(np.argmax(bone.sum(axis=(0, 1))))
    ri = int(np.argmax(bone[:, :, ci - 30:ci + 30].sum(axis=(0, 2))))
    dx, dy = float(g.spacing_mm[0]), float(g.spacing_mm[1])
    # the rows run anterior to posterior on this axial grid (LPS +y)
    assert g.direction[1, 1] > 0
    start = (0, max(ri - int(_FRONT_MM / dy), 0), max(ci - int(_HALF_WIDTH_MM / dx), 0))
    stop = (px.shape[0], min(ri + int(_BACK_MM / dy), px.shape[1]),
            min(ci + int(_HALF_WIDTH_MM / dx), px.shape[2]))
    sub = px[:, start[1]:stop[1], start[2]:stop[2]]
    cg = crop_geometry(g, start, stop)

    seg = segment_spine(sub, cg)
    assert seg.noise_hu > 40.0
    assert seg.denoise_window_mm > 0.0
    assert seg.canal is not None and seg.problems == ()

    # the canal's centre per slice, interpolated where the ring is open
    centre = np.full((sub.shape[0], 2), np.nan)
    for k in np.nonzero(seg.canal.any(axis=(1, 2)))[0]:
        centre[k] = np.argwhere(seg.canal[k]).mean(axis=0)
    have = np.isfinite(centre[:, 0])
    assert have.sum() >= 0.3 * sub.shape[0]
    ks = np.arange(sub.shape[0])
    canal_rows = np.interp(ks, ks[have], centre[have, 0])
    canal_cols = np.interp(ks, ks[have], centre[have, 1])
    # no vertebra fills the canal, where it was not found either (the hole filling
    # once took the canal of closed rings it had passed over)
    everything = np.zeros(sub.shape, dtype=bool)
    for v in seg.vertebrae:
        everything |= v.mask
    filled = everything[ks, np.rint(canal_rows).astype(int), np.rint(canal_cols).astype(int)]
    assert np.count_nonzero(filled) <= 0.02 * len(ks), np.nonzero(filled)[0]
    # body: bone more than 15 mm in front of the canal centre of its slice
    z_mm = g.index_to_patient(np.stack([ks, np.zeros_like(ks), np.zeros_like(ks)], 1))[:, 2]
    bodies = []
    for v in seg.vertebrae:
        idx = np.argwhere(v.mask)
        body = idx[canal_rows[idx[:, 0]] - idx[:, 1] > 15.0 / dy]
        if len(body):
            bodies.append((float(z_mm[body[:, 0]].mean()), len(idx) * cg.voxel_volume_cc))
    bodies.sort()
    # the ends are cut by the crop; the whole vertebrae between them
    whole = bodies[1:-1]
    assert len(whole) >= 9
    pitch = np.diff([z for z, _ in bodies])
    assert ((pitch >= _PITCH_MM[0]) & (pitch <= _PITCH_MM[1])).all(), pitch
    volumes = np.array([cc for _, cc in whole])
    assert ((volumes >= _VOLUME_CC[0]) & (volumes <= _VOLUME_CC[1])).all(), volumes
