"""The DPC file layouts: the single source of column lists, file names and date rules.

Everything here follows ../shared/notes/dpc-data-contract.md §1. Column names are the English
snake_case names used in the raw tables, the dbt sources and the stage models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENCODING = "cp932"
FIELD_SEPARATOR = b"\t"
HEADER_SECOND_FIELDS = frozenset({"データ識別番号", "ﾃﾞｰﾀ識別番号"})
DATE_SENTINELS = frozenset({"00000000", "99999999"})

# Lineage columns that every raw table carries before the source columns.
LINEAGE_COLUMNS: tuple[str, ...] = ("yyyymm", "source_file", "line_no")


@dataclass(frozen=True)
class FileLayout:
    file_type: str
    survey_name: str
    name_prefix: str
    raw_table: str
    columns: tuple[str, ...]
    # Columns that must hold a real yyyymmdd date or a sentinel; never empty.
    required_date_columns: tuple[str, ...]
    # Columns that may be empty, and otherwise hold a real date or a sentinel.
    optional_date_columns: tuple[str, ...] = ()

    @property
    def column_count(self) -> int:
        return len(self.columns)

    @property
    def name_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.name_prefix)}_(?P<facility_cd>[0-9]{{9}})_(?P<yymm>[0-9]{{4}})\.txt$")

    def file_name(self, facility_cd: str, yyyymm: str) -> str:
        return f"{self.name_prefix}_{facility_cd}_{yyyymm[2:]}.txt"

    def date_column_indexes(self) -> tuple[tuple[int, str, bool], ...]:
        """(0-based index, column name, required) for every date column."""
        required = [(self.columns.index(c), c, True) for c in self.required_date_columns]
        optional = [(self.columns.index(c), c, False) for c in self.optional_date_columns]
        return tuple(sorted(required + optional))


Y1 = FileLayout(
    file_type="y1",
    survey_name="様式1",
    name_prefix="FF1",
    raw_table="y1",
    columns=(
        "facility_cd",
        "patient_id",
        "admission_date",
        "admission_seq_no",
        "summary_no",
        "item_code",
        "item_version",
        "item_seq",
        *(f"payload_{i}" for i in range(1, 10)),
    ),
    required_date_columns=("admission_date",),
)

EF_IN = FileLayout(
    file_type="ef_in",
    survey_name="入院EF統合ファイル",
    name_prefix="EFn",
    raw_table="ef_in",
    columns=(
        "facility_cd",
        "patient_id",
        "discharge_date",
        "admission_date",
        "data_category",
        "order_no",
        "detail_no",
        "hospital_master_code",
        "receipt_code",
        "interpretation_no",
        "item_name",
        "quantity",
        "unit_code",
        "detail_points",
        "yen_point_flag",
        "ffs_points",
        "detail_type",
        "act_points",
        "act_drug_cost",
        "act_material_cost",
        "act_count",
        "insurer_no",
        "receipt_type",
        "performed_date",
        "receipt_dept",
        "clinical_dept",
        "doctor_code",
        "ward_code",
        "ward_type",
        "inout_flag",
        "facility_type",
    ),
    required_date_columns=("discharge_date", "admission_date"),
    optional_date_columns=("performed_date",),
)

D = FileLayout(
    file_type="d",
    survey_name="Dファイル",
    name_prefix="Dn",
    raw_table="d",
    columns=(
        "facility_cd",
        "patient_id",
        "discharge_date",
        "admission_date",
        "data_category",
        "order_no",
        "hospital_master_code",
        "receipt_code",
        "interpretation_no",
        "item_name",
        "act_points",
        "act_drug_cost",
        "act_material_cost",
        "yen_point_flag",
        "act_count",
        "insurer_no",
        "receipt_type",
        "performed_date",
        "receipt_dept",
        "clinical_dept",
        "doctor_code",
        "ward_code",
        "ward_type",
        "inout_flag",
        "facility_type",
        "calc_start_date",
        "calc_end_date",
        "calc_base_date",
        "dpc_code",
        "hospital_coefficient",
    ),
    required_date_columns=("discharge_date", "admission_date"),
    optional_date_columns=("performed_date", "calc_start_date", "calc_end_date", "calc_base_date"),
)

LAYOUTS: dict[str, FileLayout] = {layout.file_type: layout for layout in (Y1, EF_IN, D)}
FILE_TYPES: tuple[str, ...] = tuple(LAYOUTS)

# y1 payload columns that hold dates, by item code (contract §1, case-level attributes).
Y1_DATE_PAYLOADS: dict[str, tuple[str, ...]] = {
    "A000010": ("payload_1",),  # birth_date
    "A000020": ("payload_1",),  # admission_date
    "A000030": ("payload_1",),  # discharge_date
    "A000070": ("payload_1",),  # prev_discharge_date
}

# D 分類番号 (dpc_code): 14 characters, the first 6 the disease group (digits), the rest digits or x.
# Required on DPC bundled rows (データ区分 93), optional on fee-for-service rows. Checked by the loader.
DPC_CODE_PATTERN = re.compile(r"[0-9]{6}[0-9x]{8}")
DPC_BUNDLED_CATEGORY = "93"

# y1 rows with this summary_no describe the whole stay; others are ward-group segments.
Y1_WHOLE_STAY_SUMMARY_NO = "0"


def is_header(first_line: bytes) -> bool:
    """True when the first line of a file is the column header (contract §1)."""
    fields = first_line.rstrip(b"\r\n").split(FIELD_SEPARATOR)
    if len(fields) < 2:
        return False
    try:
        return fields[1].decode(ENCODING).strip() in HEADER_SECOND_FIELDS
    except UnicodeDecodeError:
        return False


def layout_for_name(name: str) -> FileLayout | None:
    """The layout whose file-name pattern matches ``name``, if any."""
    for layout in LAYOUTS.values():
        if layout.name_pattern.match(name):
            return layout
    return None
