"""Self-contained HTML reports of runs and benchmarks (``recoworld report``).

:func:`build_report` turns a run folder or a benchmark folder into one static HTML file: tables,
inline SVG charts (:mod:`recoworld.report.svg`) and, for a run, a session viewer that steps
through some users' feeds slate by slate. Nothing in the page is fetched at view time. See
``docs/reports.md``.
"""

from recoworld.report._build import add_report_arguments, build_report, report_command

__all__ = ["add_report_arguments", "build_report", "report_command"]
