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
  centroid of the bone labelled body by the rule below);
* left axis ``l = (-a_y, a_x, 0)``: ``a`` turned by +90 degrees about the superior
  axis.  LPS is a patient coordinate system, so this is the patient's left for
  every patient position (HFS, FFS, HFP, FFP).

For a point ``p`` on slice ``k``: ``u = (p - O_k) . a`` (mm anterior of the canal
centre), ``v = (p - O_k) . l`` (mm to the left) and the angle
``theta = atan2(-u, v)`` in degrees, wrapped to [-125, 235): 0 is left, 90
posterior, -90 anterior, 180 right (for an unrotated HFS patient this is
``atan2(y - y_canal, x - x_canal)``).  ``d`` is the in-plane distance (mm) from the
canal, and ``u_wall(k)`` the anterior extent of the canal on slice ``k`` (its most
anterior voxel centre plus half a pixel): the posterior wall of the body.

Sector boundaries (defaults of :class:`SectorOptions`)
------------------------------------------------------
Every bone voxel of the vertebra gets exactly one sector, by the first rule that holds:

1. **Vertebral body (1)**: ``u >= u_wall(k)`` (anterior to the posterior wall of the
   body), or ``theta`` within ``body_half_angle_deg`` (35) of anterior, i.e.
   ``theta in [-125, -55]`` (the bone between the canal and the body).
2. **Neural arch** (``d <= arch_thickness_mm``, 7 mm; ``arch_thickness_lumbar_mm``,
   9 mm, for lumbar levels: the bone that walls the canal), split by angle about
   the canal centre:
   left pedicle **2** ``(-55, 30)``; left lamina **3** ``[30, 78)``; spinous
   process **4** ``[78, 102]`` (``spinous_half_angle_deg`` 12 about posterior);
   right lamina **5** ``(102, 150]``; right pedicle **6** ``(150, 235)``.  The
   pedicle-lamina boundary is ``pedicle_lamina_angle_deg`` (30) behind the
   transverse axis, mirrored on the right.
3. **Processes** (``d > arch_thickness_mm``, bone projecting from the arch): within
   ``process_spinous_half_angle_deg`` (30) of posterior, i.e. ``[60, 120]``, the
   spinous process **4**; lateral to that, the left (**3**) or right (**5**)
   transverse process.

A figure of this partition is drawn by :func:`contourqa.sector_figure.sector_png`;
real vertebrae are shown in ``benchmarks/results/sectors_real_ct_*.png``.

Involvement
-----------
A sector is involved when the GTV volume inside it (voxel centres on the CT grid)
reaches ``min_involved_cc`` (0.05 cc: a one-voxel sliver along a 12 mm boundary on a
1 x 1 x 1.5 mm grid is about 0.02 cc, a real extension 0.1 cc or more).  The body
involvement is ``left``/``right`` when at least ``lateral_share`` (0.8) of the body
GTV lies on one side of the vertebra's midline (``v``), ``diffuse`` when it fills at
least ``diffuse_body_fraction`` (0.5) of the body on the GTV's slices (or spans both
sides without a dominant one and without being ``central``), ``central`` otherwise,
and ``none`` without body involvement.  Epidural: the GTV inside the canal
(``min_epidural_cc``); its extent is the angle about the canal centre that it
covers, gaps narrower than ``epidural_gap_deg`` bridged; circumferential at
``circumferential_min_deg``.  Paraspinal: GTV outside every vertebra and the canal,
farther than ``paraspinal_margin_mm`` (1 mm, and one pixel, in-plane) from the
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
