"""The DICOM node of ``contourqa listen``: receive plans, check them, write reports.

Public surface::

    NodeConfig(storage_dir=..., ae_title=..., port=0, allowed=(AllowedPeer("TPS"),), ...)
    DicomNode(config).start() / .stop() / .port / .wait_idle()   (or a ``with`` block)
    serve(config, out=sys.stdout)     run until SIGINT/SIGTERM (what the CLI calls)
"""

from contourqa.node.config import REPORT_FORMATS, AllowedPeer, Destination, NodeConfig, parse_size
from contourqa.node.scp import STORAGE_CLASSES, DicomNode, serve

__all__ = ["REPORT_FORMATS", "STORAGE_CLASSES", "AllowedPeer", "Destination", "DicomNode",
           "NodeConfig", "parse_size", "serve"]
