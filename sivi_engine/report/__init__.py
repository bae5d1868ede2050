"""The benchmark report: metric tables, figures, ``summary.md`` and a self-contained
``index.html``."""

from sivi_engine.report.build import build_report
from sivi_engine.report.runs import ReportStores

__all__ = ["ReportStores", "build_report"]
