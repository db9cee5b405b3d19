"""Presentation: what a run measured, as files a person reads.

- :mod:`.writer`: :class:`ReportWriter` (pictures per image, videos, JSON, the page) and the terminal table.
- :mod:`.figures`, :mod:`.video`: the charts and the annotated videos (matplotlib figures drawn off-screen).
- :mod:`.page`: ``report.html``, one self-contained page; :mod:`.browser` checks it in headless Chromium.
- :mod:`.units`: numbers with units, as the page and the terminal print them.
"""

from .writer import DEFINITIONS, ReportWriter, format_table

__all__ = ("DEFINITIONS", "ReportWriter", "format_table")
