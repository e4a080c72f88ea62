"""Test data for contourqa: the digital spine phantom generator and its bundled case.

Not part of the installed ``contourqa`` package; import it from the repository root
(``import test_data.phantom``).  See ``test_data/README.md``.
"""
