"""placeholder"""
from dataclasses import dataclass
class CTSegmentationOptions: pass
class CTSegmentation: pass
def segment_spine(*a, **k): raise NotImplementedError
