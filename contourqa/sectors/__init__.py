"""ISRC six-sector map of each vertebra and the GTV/CTV involvement per level.

Sectors (knowledge base 0.1/1a; Cox et al. 2012): 1 vertebral body, 2 left pedicle,
3 left transverse process and lamina, 4 spinous process, 5 right transverse process
and lamina, 6 right pedicle.  Left is the patient's left (+x in DICOM LPS) whatever
the patient position.

Vertebra frame
--------------
Each vertebra gets its own frame from its own anatomy, so that axial rotation,
scoliosis and kyphosis do not mislabel sectors:

* origin ``O_k``: the centroid of the spinal canal on each axial slice ``k`` (a tilted
  or laterally shifted spine moves the origin with it);
* anterior axis ``a`` (unit, axial plane): from the canal towards the centroid of the
  vertebral body (first estimate: the centroid of the whole vertebra; then twice the
  centroid of the bone labelled body by the rule below), then turned to the
  vertebra's plane of symmetry (step 1 below);
* left axis ``l = (-a_y, a_x, 0)``: ``a`` turned by +90 degrees about the superior
  axis.  LPS is a patient coordinate system, so this is the patient's left for
  every patient position (HFS, FFS, HFP, FFP).

For a point ``p`` on slice ``k``: ``u = (p - O_k) . a`` (mm anterior of the canal
centre) and ``v = (p - O_k) . l`` (mm to the left).

Anatomical partition (:mod:`contourqa.sectors.partition`)
---------------------------------------------------------
No wedges: every boundary is a landmark found on the vertebra's own bone, and every
threshold lives in ``sectors/data/partition.toml`` (:class:`PartitionOptions`; a
profile overrides it).  The steps, run by :func:`partition_vertebra`:

1. **Frame**: canal centre per slice (from the canal, thecal-sac or cord ROI, or the
   CT's canal: a seed only), anterior axis from the canal to the body (bone and
   lesion, so that a vertebra contoured without its lytic half does not turn it;
   then again with only the lesion within ``paraspinal_margin_mm`` (and a pixel) of
   the bone or its mirror image about that axis, so that a soft-tissue extension of
   the lesion does not turn it either).  Then the axis turns, within
   ``axis.symmetry_span_deg``, to where each slice's bone reflected about the line
   through its canal centre lands on the most bone or lesion
   (:func:`partition.symmetry_axis`): the centroid follows whatever is asymmetric
   (a lesion, slices cutting a turned and tilted vertebra's two sides at different
   heights: 11-17 degrees off on a cervical vertebra turned by 11.5 and tilted by
   4.4), the plane of symmetry does not.
2. **Bony canal** (:mod:`contourqa.sectors.canal`): rays from the centre stop at the
   first bone (the vertebra's own, or its mirror image about the midline, or the
   bone met in that direction on the slices within ``bony_canal.neighbour_mm``); rays
   through a gap (foramen, tumour) take the radius interpolated from their
   neighbours.  The frame is re-centred on it.  The epidural space is this canal:
   canal, thecal-sac and cord ROIs complement it but never define it alone.
3. **Landmarks** (:mod:`contourqa.sectors.landmarks`): the *posterior body wall*
   ``u_wall`` (the canal's most anterior point) and the *body's posterior surface*
   per lateral position (from the slices where the body stands alone, mirrored where
   one side is missing); the *pedicle's end*, where the canal wall turns medially
   into the lamina or, if farther forward, the middle of the transverse process's
   root (where the arch meets the articular pillar), one depth for the vertebra (the
   median over its slices, the more anterior side: a side whose bone a lesion
   replaced shows no junction); the *pedicle's outer surface*,
   the canal's half-width plus the pedicle width, i.e. the narrowest bone between
   body and arch measured row by row (a high quantile over the slices: 4-8 mm
   thoracic, 8-18 mm lumbar are all found; the wider of the two sides, as a lytic
   pedicle only looks narrower); the *foramina transversaria* of a cervical vertebra
   (a mirror pair of holes of the bone beside the canal, at the pedicle's depth):
   the transverse process's root does not end the pedicle there, and the bone lateral
   to a foramen and in front of its posterior edge (the roots around it) is
   transverse process, never body; the *spinous half-width* (measured
   behind the canal) and the *spinous root* (behind the laminae's posterior surface).
4. **Envelope** (:mod:`contourqa.sectors.envelope`): where a lytic GTV replaced bone,
   the outline is restored inside the GTV from the mirror image, the neighbouring
   slices, the body's convex outline, a closing, and the vertebrae above and below
   at the same relative height; that GTV takes the part it replaced: the part of its
   mirror image where that is the vertebra's own bone, else the landmarks' part.
5. **Parts**, first rule that holds: **body** (not behind the body's posterior
   surface where it was measured - on the slices that cut the whole body without
   its arch; its posterolateral corners reach behind the canal's most anterior point,
   by at most ``pedicle.body_max_behind_wall_mm`` - else in front of the body wall;
   nothing lateral to the body's measured width or to a foramen transversarium;
   sector 1); **spinous process** (behind the spinous root, within the spinous
   half-width; 4); **transverse process** (lateral to the pedicle's outer surface, or
   around a foramen transversarium; 3 left, 5 right); **pedicle** (in front of the
   pedicle's end and joined in-plane to the body: the bony bridge; 2 left, 6 right);
   **lamina** (the rest of the arch, articular processes included; 3, 5).  The
   sub-labels ``lamina`` and ``transverse_process`` are kept
   (:data:`PART_NAMES`, ``gtv_parts`` in the report).

A figure of the landmarks on real vertebrae (dashed lines: body wall, pedicle end and
outer surface, spinous half-width; white: the bony canal) is drawn by
:func:`contourqa.sector_figure.sector_png`; see
``benchmarks/results/sectors_real_ct_*.png``.

Involvement
-----------
A sector is involved when the GTV volume inside it (voxel centres on the CT grid,
restored outline included)
reaches ``min_involved_cc`` (0.05 cc: a one-voxel sliver along a 12 mm boundary on a
1 x 1 x 1.5 mm grid is about 0.02 cc, a real extension 0.1 cc or more).  The body
involvement is ``left``/``right`` when at least ``lateral_share`` (0.8) of the body
GTV lies on one side of the vertebra's midline (``v``), ``diffuse`` when it fills at
least ``diffuse_body_fraction`` (0.5) of the body on the GTV's slices (or spans both
sides without a dominant one and without being ``central``), ``central`` otherwise,
and ``none`` without body involvement.  Epidural: the GTV inside the bony canal
(with the canal ROIs; disc levels bridged over ``bony_canal.gap_fill_mm``;
``min_epidural_cc``); its extent is the angle about the canal centre that it
covers, gaps narrower than ``epidural_gap_deg`` bridged; circumferential at
``circumferential_min_deg``.  Paraspinal: GTV outside every vertebra's envelope (bone and
restored outline) and the canal, farther than ``paraspinal_margin_mm`` (1 mm, and one pixel, in-plane) from the
vertebrae's bone (``min_paraspinal_cc``): a contour drawn on the cortex rasterises a
voxel wider than the bone segmented from the CT, and that rim is not disease in the
soft tissue.  The CTV covers a sector when it holds at least
``ctv_covered_min_pct`` (50 %) of the sector's bone.
"""

from contourqa.sectors.analysis import analyse_sectors
from contourqa.sectors.frame import SECTOR_NAMES, VertebraFrame
from contourqa.sectors.landmarks import VertebraLandmarks
from contourqa.sectors.options import PartitionOptions, SectorOptions
from contourqa.sectors.partition import VertebraPartition, partition_vertebra
from contourqa.sectors.parts import PART_NAMES, PART_SECTOR
from contourqa.sectors.results import SectorAnalysis, VertebraSectors

__all__ = [
    "PART_NAMES",
    "PART_SECTOR",
    "SECTOR_NAMES",
    "PartitionOptions",
    "SectorAnalysis",
    "SectorOptions",
    "VertebraFrame",
    "VertebraLandmarks",
    "VertebraPartition",
    "VertebraSectors",
    "analyse_sectors",
    "partition_vertebra",
]
