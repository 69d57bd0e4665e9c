"""Writes a run folder's readable outputs from its records: summary.csv, summary.md, report.md and
report.html. Everything here is rebuildable at any time from the run folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from harness.analysis import economics, summary
from harness.report.html import render_html
from harness.report.markdown import report_markdown, summary_markdown
from harness.report.plan_text import plan_section
from harness.rundir import RunFolder
from harness.scoring.judge import agreement_rows, read_calibration


def write_summary(run_dir: Path, today: dt.date | None = None) -> pd.DataFrame:
    """summary.csv and summary.md, plus the stakeholder report (report.md, report.html), so that every
    run folder carries its readable report without an extra step. Returns the summary table. `today`
    (harness.clock; `--today`) dates how long a fine-tune can still serve."""
    folder = RunFolder.open(run_dir)
    records = folder.compact_records()  # one small object per record, read line by line
    manifest = folder.manifest
    calibration = read_calibration(folder.calibration_path)
    analysis = summary.analyse(manifest, records, folder.config_dict(), calibration=calibration)  # type: ignore[arg-type]
    analysis.agreement = agreement_rows(calibration)
    df = analysis.df
    df.to_csv(folder.summary_csv, index=False)
    folder.summary_md.write_text(summary_markdown(manifest, df, analysis.agreement), encoding="utf-8")
    eco = economics.analyse(analysis.manifest, analysis.config, analysis.df, analysis.items, analysis.records,
                             today=today)
    asked = manifest.selection.items if manifest.selection is not None else None
    plan = plan_section(folder.path, asked, manifest.sequential)
    folder.report_md.write_text(report_markdown(analysis, eco, plan), encoding="utf-8")
    folder.report_html.write_text(render_html(analysis, eco, plan), encoding="utf-8")
    return df
