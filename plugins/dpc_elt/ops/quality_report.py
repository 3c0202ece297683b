"""The monthly quality report: one self-contained HTML page next to each exported month.

``<processed_root>/yyyymm=<YYYYMM>/_quality_report.html`` holds, for one month: rows per loaded file,
rows per raw / stage / mart table, rejected lines (always 0: the load is all or nothing) and the load
warnings the warehouse keeps, cases per facility and per MDC with their 7- and 30-day readmission
rates, and a bar chart of those rates (inline SVG drawn here, no script, no external resource).

Only aggregates leave the warehouse (the queries in ``include/sql/quality_report/`` group and count),
and small cells are suppressed: a group with fewer than :data:`MIN_CELL` cases shows ``<10`` instead
of its case count and no rates. Every value written into the page is HTML-escaped.

``export_parquet`` writes the report of every month it exported, after the export: the export
clears the month's folder first (embedded: ``fs.rm``; production: DeleteObjects and UNLOAD's
CLEANPATH), so the report is always rewritten with the data it describes. The page holds no
timestamp or run id: the same warehouse state gives the same bytes, and a re-run overwrites it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dpc_elt.backends import get_backend
from dpc_elt.core import settings
from dpc_elt.core.params import validate_yyyymm

log = logging.getLogger(__name__)

REPORT_NAME = "_quality_report.html"
MIN_CELL = 10  # rates only where a group has at least this many cases; case counts below it hidden
SUPPRESSED = f"<{MIN_CELL}"


# ========================================================================================= data


@dataclass(frozen=True)
class FileRows:
    file_type: str
    source_file: str
    rows: int


@dataclass(frozen=True)
class Group:
    """Cases of one facility or MDC and how many of them are 7- / 30-day readmissions."""

    key: str
    cases: int
    readmissions_7d: int
    readmissions_30d: int

    @property
    def shown(self) -> bool:
        return self.cases >= MIN_CELL

    def rate(self, days: int) -> float | None:
        """Readmissions per case in percent, or None when the group is too small to show."""
        if not self.shown:
            return None
        count = self.readmissions_7d if days == 7 else self.readmissions_30d
        return 100.0 * count / self.cases


@dataclass(frozen=True)
class MonthQuality:
    yyyymm: str
    environment: str
    files: tuple[FileRows, ...]
    tables: Mapping[str, int]
    facilities: tuple[Group, ...]
    mdcs: tuple[Group, ...]
    cases_in_several_months: int
    rejected_lines: int = 0  # all or nothing: a month with one rejected line is not loaded at all

    @classmethod
    def from_rows(
        cls, yyyymm: str, environment: str, rows: Mapping[str, Sequence[Sequence[Any]]], tables: Mapping[str, int]
    ) -> MonthQuality:
        """From the rows of ``core.quality_queries.queries`` (keyed as there) and ``month_counts``."""
        files = tuple(
            FileRows(file_type=key.split(":", 1)[1], source_file=str(name), rows=int(count))
            for key in rows
            if key.startswith("file:")
            for name, count in rows[key]
        )

        def groups(key: str) -> tuple[Group, ...]:
            found = [
                Group(
                    key="" if k is None else str(k),
                    cases=int(n),
                    readmissions_7d=int(r7 or 0),
                    readmissions_30d=int(r30 or 0),
                )
                for k, n, r7, r30 in rows[key]
            ]
            return tuple(sorted(found, key=lambda g: (g.key == "", g.key)))

        (warnings,) = rows["warnings"]
        return cls(
            yyyymm=yyyymm,
            environment=environment,
            files=files,
            tables=dict(tables),
            facilities=groups("facilities"),
            mdcs=groups("mdcs"),
            cases_in_several_months=int(warnings[0]),
        )


def collect(yyyymm: str, cfg: settings.Settings) -> MonthQuality:
    """Everything the report shows for ``yyyymm``, from the configured backend."""
    validate_yyyymm(yyyymm)
    backend = get_backend(cfg)
    return MonthQuality.from_rows(
        yyyymm, cfg.environment, backend.quality_report_rows(yyyymm), backend.month_counts(yyyymm)
    )


# ======================================================================================= render


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _count(n: int) -> str:
    return f"{n:,}"


def _cases(group: Group) -> str:
    return _count(group.cases) if group.shown else SUPPRESSED


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _label(key: str, empty: str) -> str:
    return key if key else empty


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """An HTML table; ``rows`` are plain text, escaped here."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def rate_chart(groups: Sequence[Group], title: str, empty: str = "(none)") -> str:
    """Horizontal bars of the 7- and 30-day readmission rates per group, as inline SVG. A group
    with fewer than MIN_CELL cases gets a note instead of bars."""
    row_h, label_w, bar_w, top = 34, 150, 420, 40
    shown = [g.rate(30) for g in groups if g.shown]
    scale = max(10.0, *(r for r in shown if r is not None)) if shown else 10.0
    scale = float(int((scale + 9.999) // 10) * 10)  # round up to a multiple of 10 %
    height = top + row_h * max(1, len(groups)) + 30
    width = label_w + bar_w + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<text x="0" y="16" class="t">{_e(title)}</text>',
        f'<rect x="{label_w}" y="24" width="10" height="10" class="d7"/>'
        f'<text x="{label_w + 14}" y="33">7-day</text>'
        f'<rect x="{label_w + 70}" y="24" width="10" height="10" class="d30"/>'
        f'<text x="{label_w + 84}" y="33">30-day</text>',
    ]
    for i, group in enumerate(groups):
        y = top + i * row_h
        parts.append(f'<text x="0" y="{y + 19}">{_e(_label(group.key, empty))}</text>')
        if not group.shown:
            parts.append(f'<text x="{label_w}" y="{y + 19}" class="s">suppressed: fewer than {MIN_CELL} cases</text>')
            continue
        for j, (days, css) in enumerate(((7, "d7"), (30, "d30"))):
            rate = group.rate(days) or 0.0
            length = round(bar_w * rate / scale, 1)
            by = y + 4 + j * 13
            parts.append(f'<rect x="{label_w}" y="{by}" width="{length}" height="12" class="{css}"/>')
            parts.append(f'<text x="{label_w + length + 4}" y="{by + 10}" class="v">{_e(_rate(rate))}</text>')
    axis_y = top + row_h * max(1, len(groups)) + 4
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + bar_w}" y2="{axis_y}" class="ax"/>')
    parts.append(f'<text x="{label_w}" y="{axis_y + 16}" class="v">0 %</text>')
    parts.append(f'<text x="{label_w + bar_w}" y="{axis_y + 16}" class="v" text-anchor="end">{_e(_rate(scale))}</text>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:60em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9em}svg text{font-size:12px;fill:#222}svg text.t{font-weight:bold}
svg text.s{fill:#777;font-style:italic}svg text.v{fill:#444;font-size:11px}
.d7{fill:#4c78a8}.d30{fill:#f58518}.ax{stroke:#999}
"""


def render(quality: MonthQuality) -> str:
    """The report as one HTML document (UTF-8, no script, no external resource)."""
    month = quality.yyyymm
    file_rows = [(f.file_type, f.source_file, _count(f.rows)) for f in quality.files]
    total_file_rows = sum(f.rows for f in quality.files)
    table_rows = [(name, _count(n)) for name, n in quality.tables.items()]

    def group_rows(groups: Sequence[Group], empty: str) -> list[tuple[str, str, str, str]]:
        return [(_label(g.key, empty), _cases(g), _rate(g.rate(7)), _rate(g.rate(30))) for g in groups]

    warning_text = (
        f"{_count(quality.cases_in_several_months)} case(s) of this month have a key that is also in "
        "another loaded month's y1 file (dbt warning warn_case_keys_in_several_months; the case of the "
        "later month counts)."
        if quality.cases_in_several_months
        else "No case of this month has a key that is also in another loaded month's y1 file."
    )
    body = [
        f"<h1>DPC monthly quality report — {_e(month)}</h1>",
        f'<p class="note">Environment {_e(quality.environment)}. Written by the <code>export_parquet</code> '
        "step next to the month's Parquet files; rewritten whenever the month is exported again.</p>",
        "<h2>Rejected lines and warnings</h2>",
        f"<p><strong>Rejected lines: {_e(_count(quality.rejected_lines))}.</strong> The load is all or "
        "nothing: one rejected line (or any broken rule of the delivery) fails the run and loads nothing "
        "of the month, so a month with this report has no rejected line. Files in the month folder that "
        "the manifest does not list are ignored and named in the run's notification.</p>",
        f"<p>{_e(warning_text)}</p>",
        "<h2>Rows per file</h2>",
        '<p class="note">Data lines loaded from each file (each equals the record count of the manifest, '
        "which validate_manifest checked). Files without data lines are not listed.</p>",
        _table(["file type", "file", "rows"], [*file_rows, ("total", "", _count(total_file_rows))], numeric_from=2),
        "<h2>Rows per table for the month</h2>",
        _table(["table", "rows"], table_rows),
        "<h2>Cases and readmissions per facility</h2>",
        _table(
            ["facility", "cases", "7-day readmission rate", "30-day readmission rate"],
            group_rows(quality.facilities, "(none)"),
        ),
        rate_chart(quality.facilities, f"Readmission rates per facility, {month}"),
        "<h2>Cases and readmissions per MDC</h2>",
        _table(
            ["MDC", "cases", "7-day readmission rate", "30-day readmission rate"], group_rows(quality.mdcs, "(no MDC)")
        ),
        rate_chart(quality.mdcs, f"Readmission rates per MDC, {month}", empty="(no MDC)"),
        "<h2>Definitions</h2>",
        '<p class="note">A case is one stay of the month\'s y1 files (mart.fact_case_summary). Readmission '
        "rate: the share of the month's cases admitted 0–7 (7-day) or 0–30 (30-day) days after the same "
        "patient's previous discharge at the same facility, over every loaded month "
        "(is_readmission_7d / is_readmission_30d, data contract §3). "
        f"Small cells are suppressed: a group with fewer than {MIN_CELL} cases shows {_e(SUPPRESSED)} "
        "instead of its count and no rate, and readmission counts are never shown.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>DPC quality report {_e(month)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ======================================================================================== write


def report_uri(processed_root: str, yyyymm: str) -> str:
    return f"{processed_root.rstrip('/')}/yyyymm={validate_yyyymm(yyyymm)}/{REPORT_NAME}"


def write_report(yyyymm: str, cfg: settings.Settings) -> str:
    """Collect, render and (over)write the month's report; return its URI."""
    page = render(collect(yyyymm, cfg)).encode("utf-8")
    uri = report_uri(cfg.processed_root, yyyymm)
    fs, path = get_backend(cfg).filesystem(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, page)  # one PUT on S3; replaces the file on a re-run
    log.info("quality report of %s: %s (%d bytes)", yyyymm, uri, len(page))
    return uri
