"""Deterministic synthetic DPC data: month folders of y1 / ef_in / d files plus ``_manifest.json``.

Two layers:

* :class:`Stay` and :func:`write_months` render any list of stays into the month files exactly as
  ``shared/notes/dpc-data-contract.md`` §1–§2 describe them (cp932, CRLF, TAB, header line, manifest).
  Tests build exact scenarios with hand-made stays.
* :func:`generate_stays` is a seeded random scenario producer (a generator) covering readmissions,
  same-day second stays, stays across month ends, deaths, ward transfers, a patient id shared by two
  facilities and stays still open at the end of the last month.

Run it as ``PYTHONPATH=plugins python -m dpc_elt.dev.synthetic --facilities 3 --months 202503-202505
--out data/raw --seed 1``. Output streams: rows are rendered per stay and month and written through
buffered binary files while the SHA-256, byte and record counts of the manifest are updated; nothing
holds a whole file. Output depends only on the arguments (``random.Random(seed)``, no wall clock).

Choices made here (the contract leaves them open):

* Empty file types: every facility that appears in the stays gets all three files in every month, a
  file with no rows holding only its header line (``records`` 0 in the manifest).
* Header lines carry the Japanese survey names of the layout's columns (second field データ識別番号).
* y1 per case (summary_no ``0``): A000010, A000020, A000030, A000070 (sentinel when no previous
  discharge is reported), A000080 only when a readmission type is set, A006010/20/30, and A006040
  per comorbidity (item_seq 1, 2, …). A stay in more than one ward adds one A001010 row per ward
  segment (summary_no ``1``, ``2``, …: p1 ward code, p2 first day, p3 last day, p4 ward type).
* EF: per day one E row (データ区分 90 入院料, 行為明細番号 ``000``) and F rows (``001``…) from a fixed
  catalogue; D: per stay and month one データ区分 ``93`` row (算定開始日/終了日 = the stay's first and
  last day in that month, 起算日 = admission) plus fee-for-service rows (CT, surgery, anaesthesia,
  discharge guidance) on their days. EF/D rows carry no 回数管理番号, as in the real layouts.
* Codes and names are synthetic, shaped like the real ones; none is meant to be a valid master code.

Nothing here prints patient data: progress and summaries are counts only.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import hashlib
import itertools
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from dpc_elt.core.formats import (
    DATE_SENTINELS,
    EF_IN,
    ENCODING,
    FILE_TYPES,
    HEADER_SECOND_FIELDS,
    LAYOUTS,
    Y1,
    Y1_WHOLE_STAY_SUMMARY_NO,
    D,
    FileLayout,
)

__all__ = [
    "DEFAULT_DISCHARGES_PER_MONTH",
    "DEFAULT_EF_ROWS_PER_DAY",
    "MANIFEST_NAME",
    "Stay",
    "default_created_at",
    "generate_stays",
    "main",
    "month_dir_name",
    "month_range",
    "parse_months",
    "write_months",
]

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
DEFAULT_EF_ROWS_PER_DAY = 6
DEFAULT_DISCHARGES_PER_MONTH = 300
NOT_YET = "00000000"  # date not known yet (still admitted)
NOT_APPLICABLE = "99999999"
Y1_ITEM_VERSION = "20240601"
WARD_SEGMENT_ITEM = "A001010"  # y1 ward segment row: p1 ward code, p2 from, p3 to, p4 ward type
SEGMENT_SUMMARY_NOS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B")

_CRLF = "\r\n"
_WRITE_BUFFER = 1 << 18
_MONTH_RE = re.compile(r"^(?P<y>[0-9]{4})(?P<m>0[1-9]|1[0-2])$")
_ICD10_RE = re.compile(r"^[A-Z][0-9A-Z]{2,5}$")
_ADMISSION_TYPE_RE = re.compile(r"^(100|101|200|3[0-9]{2})$")
_CONTROL_RE = re.compile(r"[\t\r\n\x00]")
_CREATED_AT_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)

# ---------------------------------------------------------------------------------------------
# Header lines: the layout's columns translated to the survey's Japanese names.

_JA_NAMES: dict[str, str] = {
    "facility_cd": "施設コード",
    "patient_id": "データ識別番号",
    "admission_date": "入院年月日",
    "discharge_date": "退院年月日",
    "admission_seq_no": "回数管理番号",
    "summary_no": "統括診療情報番号",
    "item_code": "コード",
    "item_version": "バージョン",
    "item_seq": "連番",
    **{f"payload_{i}": f"ペイロード{i}" for i in range(1, 10)},
    "data_category": "データ区分",
    "order_no": "順序番号",
    "detail_no": "行為明細番号",
    "hospital_master_code": "病院点数マスタコード",
    "receipt_code": "レセプト電算処理システム用コード",
    "interpretation_no": "解釈番号",
    "item_name": "診療明細名称",
    "quantity": "使用量",
    "unit_code": "基準単位",
    "detail_points": "明細点数・金額",
    "yen_point_flag": "円・点区分",
    "ffs_points": "出来高実績点数",
    "detail_type": "行為明細区分情報",
    "act_points": "行為点数",
    "act_drug_cost": "行為薬剤料",
    "act_material_cost": "行為材料料",
    "act_count": "行為回数",
    "insurer_no": "保険者番号",
    "receipt_type": "レセプト種別コード",
    "performed_date": "実施年月日",
    "receipt_dept": "レセプト科区分",
    "clinical_dept": "診療科区分",
    "doctor_code": "医師コード",
    "ward_code": "病棟コード",
    "ward_type": "病棟区分",
    "inout_flag": "入外区分",
    "facility_type": "施設タイプ",
    "calc_start_date": "算定開始日",
    "calc_end_date": "算定終了日",
    "calc_base_date": "算定起算日",
    "dpc_code": "分類番号",
    "hospital_coefficient": "医療機関係数",
}
_JA_OVERRIDES: dict[str, dict[str, str]] = {"d": {"item_name": "診療行為名称"}}


def _header_line(layout: FileLayout) -> bytes:
    names = _JA_OVERRIDES.get(layout.file_type, {})
    fields = [names.get(c) or _JA_NAMES.get(c, c) for c in layout.columns]
    return ("\t".join(fields) + _CRLF).encode(ENCODING)


_HEADERS: dict[str, bytes] = {t: _header_line(layout) for t, layout in LAYOUTS.items()}
for _t, _h in _HEADERS.items():
    if _h.split(b"\t")[1].decode(ENCODING) not in HEADER_SECOND_FIELDS:  # pragma: no cover
        raise RuntimeError(f"header of {_t} does not carry the データ識別番号 column second")

# ---------------------------------------------------------------------------------------------
# Small helpers


def _ymd(d: date) -> str:
    return d.isoformat().replace("-", "")


def _yyyymm(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}"


def _check_month(yyyymm: str) -> tuple[int, int]:
    match = _MONTH_RE.match(yyyymm)
    if not match:
        raise ValueError(f"month must be YYYYMM, got {yyyymm!r}")
    return int(match["y"]), int(match["m"])


def _month_bounds(yyyymm: str) -> tuple[date, date]:
    year, month = _check_month(yyyymm)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive, as YYYYMM strings."""
    y, m = _check_month(first)
    end = _check_month(last)
    if (y, m) > end:
        raise ValueError(f"month range {first}-{last} is reversed")
    out = []
    while (y, m) <= end:
        out.append(f"{y:04d}{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def parse_months(spec: str) -> list[str]:
    """``202503``, ``202503-202505`` or a comma list of both, sorted and de-duplicated."""
    months: dict[str, None] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            for m in month_range(first.strip(), last.strip()):
                months[m] = None
        else:
            _check_month(part)
            months[part] = None
    if not months:
        raise ValueError("no month given")
    return sorted(months)


def _normalize_months(months: Iterable[str]) -> list[str]:
    out = sorted({str(m) for m in months})
    for m in out:
        _check_month(m)
    if not out:
        raise ValueError("no month given")
    return out


def month_dir_name(yyyymm: str) -> str:
    return f"yyyymm={yyyymm}"


def default_created_at(yyyymm: str) -> str:
    """The fixed manifest time of a month: the 8th of the next month, 09:00 JST."""
    y, m = _check_month(yyyymm)
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return f"{y:04d}-{m:02d}-08T09:00:00+09:00"


def _ward_type(ward_code: str) -> str:
    return "2" if ward_code.upper() in {"ICU", "HCU", "CCU", "SCU", "NICU"} else "1"


# ---------------------------------------------------------------------------------------------
# The stay model


@dataclass(frozen=True)
class Stay:
    """One inpatient stay (one 様式1 case). Only the first three fields are required.

    ``discharge_date`` None means still admitted at the end of the last written month.
    ``wards`` lists the ward codes in the order the patient stayed in them; with more than one
    ward, ``ward_transfer_dates`` are the first days in ``wards[1:]`` (strictly increasing, after
    admission). Left empty they are spread evenly over the stay (7 days per ward while undischarged).
    More than one ward adds y1 ward segment rows (summary_no ``1``, ``2``, …).
    ``prev_discharge_date`` is the previous discharge *as reported by the hospital* (A000070); when
    None, A000070 carries ``prev_discharge_sentinel``. ``readmission_type`` (``1`` planned, ``2``
    unplanned) adds an A000080 row when set.
    """

    facility_cd: str
    patient_id: str
    admission_date: date
    admission_seq_no: int = 1
    discharge_date: date | None = None
    admission_type: str = "100"
    discharge_outcome: str = "1"
    birth_date: date = date(1950, 1, 1)
    sex: str = "1"
    main_icd10: str = "I509"
    trigger_icd10: str | None = None  # None: same as main_icd10
    resource_icd10: str | None = None  # None: same as main_icd10
    disease_name: str = "心不全"
    dpc_code: str = "050130xx9900xx"
    wards: tuple[str, ...] = ("3A",)
    ward_transfer_dates: tuple[date, ...] = ()
    prev_discharge_date: date | None = None
    prev_discharge_sentinel: str = NOT_YET
    readmission_type: str | None = None
    admission_route: str = "1"
    discharge_destination: str = "1"
    comorbidities: tuple[str, ...] = ()
    hospital_coefficient: str = "1.4523"
    insurer_no: str = "06130012"
    clinical_dept: str = "010"
    doctor_code: str = "D00001"
    _spans: tuple[tuple[str, date, date | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("wards", "ward_transfer_dates", "comorbidities"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if not re.fullmatch(r"[0-9]{9}", self.facility_cd):
            raise ValueError("facility_cd must be 9 digits")
        if len(self.patient_id) != 10:
            raise ValueError("patient_id must be 10 characters")
        if not isinstance(self.admission_seq_no, int) or self.admission_seq_no < 1:
            raise ValueError("admission_seq_no must be a positive int")
        if self.discharge_date is not None and self.discharge_date < self.admission_date:
            raise ValueError("discharge_date is before admission_date")
        if not _ADMISSION_TYPE_RE.match(self.admission_type):
            raise ValueError("admission_type must be 100, 101, 200 or 3xx")
        if len(self.dpc_code) != 14 or not ("01" <= self.dpc_code[:2] <= "18"):
            raise ValueError("dpc_code must be 14 characters starting with MDC 01..18")
        for icd in (self.main_icd10, self.trigger_icd10, self.resource_icd10, *self.comorbidities):
            if icd is not None and not _ICD10_RE.match(icd):
                raise ValueError("ICD-10 codes are written without the dot, e.g. I509")
        if self.sex not in ("1", "2"):
            raise ValueError("sex must be '1' or '2'")
        if self.prev_discharge_sentinel not in DATE_SENTINELS:
            raise ValueError("prev_discharge_sentinel must be 00000000 or 99999999")
        if self.readmission_type not in (None, "1", "2"):
            raise ValueError("readmission_type must be None, '1' or '2'")
        if not self.wards or len(self.wards) > len(SEGMENT_SUMMARY_NOS):
            raise ValueError(f"wards must hold 1..{len(SEGMENT_SUMMARY_NOS)} ward codes")
        texts = [
            self.patient_id,
            self.disease_name,
            self.admission_route,
            self.discharge_destination,
            self.discharge_outcome,
            self.hospital_coefficient,
            self.insurer_no,
            self.clinical_dept,
            self.doctor_code,
            *self.wards,
        ]
        joined = "|".join(texts)
        if _CONTROL_RE.search(joined):
            raise ValueError("text fields must not hold TAB, CR, LF or NUL")
        joined.encode(ENCODING)  # raises UnicodeEncodeError for characters outside cp932
        object.__setattr__(self, "_spans", self._compute_ward_spans())  # validates transfer dates

    @property
    def key(self) -> tuple[str, str, date, int]:
        return (self.facility_cd, self.patient_id, self.admission_date, self.admission_seq_no)

    def ward_spans(self) -> tuple[tuple[str, date, date | None], ...]:
        """(ward code, first day, last day or None while undischarged) for every ward in order."""
        return self._spans

    def _compute_ward_spans(self) -> tuple[tuple[str, date, date | None], ...]:
        n = len(self.wards)
        starts: list[date]
        if n == 1:
            starts = [self.admission_date]
        elif self.ward_transfer_dates:
            if len(self.ward_transfer_dates) != n - 1:
                raise ValueError("ward_transfer_dates needs one date per ward after the first")
            starts = [self.admission_date, *self.ward_transfer_dates]
        elif self.discharge_date is None:
            starts = [self.admission_date + timedelta(days=7 * i) for i in range(n)]
        else:
            days = (self.discharge_date - self.admission_date).days + 1
            if days < n:
                raise ValueError("stay is shorter than one day per ward")
            starts = [self.admission_date + timedelta(days=(i * days) // n) for i in range(n)]
        for a, b in itertools.pairwise(starts):
            if b <= a:
                raise ValueError("ward transfer dates must increase and follow admission")
        if self.discharge_date is not None and starts[-1] > self.discharge_date:
            raise ValueError("ward transfer after discharge")
        spans = []
        for i, (code, start) in enumerate(zip(self.wards, starts, strict=True)):
            end = starts[i + 1] - timedelta(days=1) if i + 1 < n else self.discharge_date
            spans.append((code, start, end))
        return tuple(spans)


# ---------------------------------------------------------------------------------------------
# Catalogues (synthetic: codes are invented in the shape of the real ones)

# (main ICD-10, disease name, DPC code)
_DISEASES: tuple[tuple[str, str, str], ...] = (
    ("I509", "心不全", "050130xx9900xx"),
    ("J189", "肺炎、詳細不明", "040080xx99x0xx"),
    ("I639", "脳梗塞、詳細不明", "010060xx99x40x"),
    ("K802", "胆のう結石（胆のう炎を伴わないもの）", "060330xx02xxxx"),
    ("S7200", "大腿骨頸部骨折（閉鎖性）", "160800xx01xxxx"),
    ("C169", "胃の悪性新生物、胃、部位不明", "060020xx04xxxx"),
    ("C341", "上葉、気管支又は肺の悪性新生物", "040040xx9904xx"),
    ("N390", "尿路感染症、部位不明", "110310xx99xxxx"),
    ("E119", "２型糖尿病、合併症を伴わないもの", "100070xx99x100"),
    ("K359", "急性虫垂炎、詳細不明", "060150xx03xxxx"),
    ("I214", "急性心内膜下心筋梗塞", "050030xx03000x"),
    ("J441", "急性増悪を伴う慢性閉塞性肺疾患", "040120xx99000x"),
    ("H251", "老人性核白内障", "020110xx97xxx0"),
    ("A090", "感染性胃腸炎", "150010xxxxx0xx"),
    ("A419", "敗血症、詳細不明", "180010x0xxx0xx"),
    ("H811", "良性発作性めまい", "030400xx99xxxx"),
    ("M4806", "脊柱管狭窄（腰部）", "070343xx01x0xx"),
    ("L031", "蜂巣炎", "080011xx99xxxx"),
    ("D509", "鉄欠乏性貧血、詳細不明", "130070xx99x0xx"),
    ("O800", "頭位自然分娩", "120260xx01xxxx"),
    ("P073", "早産児", "140010x199x0xx"),
    ("T424", "ベンゾジアゼピン系薬物中毒", "161070xxxxx00x"),
    ("F329", "うつ病エピソード、詳細不明", "170040xxxxxxxx"),
    ("K566", "腸閉塞", "060210xx99000x"),
)
_COMORBIDITIES = ("E119", "I10", "E785", "N183", "K219", "I480", "F03")


def _weights(*pairs: tuple[object, int]) -> tuple[tuple[object, ...], tuple[int, ...], int]:
    values = tuple(v for v, _w in pairs)
    cum = tuple(itertools.accumulate(w for _v, w in pairs))
    return values, cum, cum[-1]


def _pick(rng: random.Random, table: tuple[tuple[Any, ...], tuple[int, ...], int]) -> Any:
    """A weighted choice (cheaper than ``Random.choices`` for one value)."""
    values, cum, total = table
    return values[bisect.bisect_right(cum, int(rng.random() * total))]


def _choice(rng: random.Random, values: Sequence[Any]) -> Any:
    """``Random.choice`` with one float draw (cheaper; deterministic per seed all the same)."""
    return values[int(rng.random() * len(values))]


_ADMISSION_TYPE_PICK = _weights(
    ("100", 45), ("101", 5), ("200", 20), ("301", 10), ("302", 5), ("303", 5), ("305", 5), ("311", 5)
)
_AGE_BANDS = _weights(((0, 15), 8), ((15, 65), 32), ((65, 100), 60))
_OUTCOMES_ALIVE = _weights(("1", 70), ("2", 10), ("3", 15), ("4", 5))
_ADMISSION_ROUTES = _weights(("1", 80), ("4", 15), ("5", 5))
_DESTINATIONS = _weights(("1", 70), ("2", 10), ("4", 15), ("5", 5))
_STAYS_PER_PATIENT = _weights((1, 55), (2, 25), (3, 12), (4, 5), (5, 3))
_READMISSION_GAPS = _weights(((0, 7), 20), ((8, 30), 30), ((31, 120), 50))
_LENGTHS_OF_STAY = _weights(((1, 1), 6), ((2, 7), 40), ((8, 20), 42), ((21, 45), 12))
_PLANNED = ("100", "101")
_PREFECTURES = (13, 27, 14, 23, 1, 40, 11, 12, 28, 22, 34, 4)
_WARDS = ("3A", "3B", "4A", "4B", "5A", "5B", "6E", "6W", "ICU", "HCU")
_DEPTS = ("010", "020", "050", "060", "080", "100", "130", "150", "170", "200")

# EF: the daily admission fee (the E row, detail 000) and acts of F rows.
# Detail: (name, receipt code, hospital master code, interpretation no, quantity, points, yen flag)
_Detail = tuple[str, str, str, str, float, int, str]
_E_DETAIL: _Detail = ("急性期一般入院料１", "190077410", "H90001", "A100", 1, 1688, "0")
_ACTS: dict[str, tuple[str, tuple[_Detail, ...]]] = {
    "blood": (
        "60",
        (
            ("末梢血液一般検査", "160008010", "H60001", "D005", 1, 21, "0"),
            ("血液検査　生化学的検査（１）１０項目以上", "160019410", "H60002", "D007", 1, 103, "0"),
            ("ＣＲＰ", "160017410", "H60003", "D015", 1, 16, "0"),
        ),
    ),
    "drip": (
        "33",
        (
            ("点滴注射", "130003510", "H33001", "G004", 1, 102, "0"),
            ("ｿﾘﾀ-T3号輸液　５００ｍＬ", "620007209", "Y33001", "", 2, 36, "0"),
            ("生理食塩液　１００ｍＬ", "620007413", "Y33002", "", 1, 15, "0"),
        ),
    ),
    "antibiotic": (
        "33",
        (
            ("点滴注射", "130003510", "H33001", "G004", 1, 102, "0"),
            ("ｾﾌｧｿﾞﾘﾝNa点滴静注用1gﾊﾞｯｸﾞ", "620004856", "Y33003", "", 1, 72, "0"),
        ),
    ),
    "oral": (
        "21",
        (
            ("ﾛｷｿﾆﾝ錠60mg", "620098801", "Y21001", "", 3, 3, "0"),
            ("酸化マグネシウム錠３３０ｍｇ", "620007825", "Y21002", "", 3, 1, "0"),
        ),
    ),
    "xray": ("70", (("胸部単純撮影（デジタル撮影）", "170000410", "H70001", "E001", 1, 210, "0"),)),
    "rehab": ("80", (("運動器リハビリテーション料（１）", "180027610", "H80001", "H002", 2, 370, "0"),)),
    "wound": (
        "40",
        (("創傷処置（１００平方センチメートル未満）", "140000610", "H40001", "J000", 1, 52, "0"),),
    ),
    "guidance": ("13", (("薬剤管理指導料１", "113009910", "H13001", "B008", 1, 380, "0"),)),
    "material": ("40", (("ﾌｨﾙﾑ　ﾄﾞﾚｯｼﾝｸﾞ材", "700000001", "M40001", "", 1, 250, "1"),)),
    "correction": ("60", (("末梢血液一般検査（訂正）", "160008010", "H60001", "D005", 1, -21, "0"),)),
}
_FIRST_DAY_ACTS = ("blood", "xray", "drip")
_DAILY_ACTS = ("blood", "drip", "antibiotic", "oral", "rehab", "wound", "guidance", "material", "oral")

# D: fee-for-service rows outside the DPC bundle: (category, master, receipt, interp, name, points)
_D_SURGERY = (
    ("50", "H50001", "150254010", "K672", "腹腔鏡下胆嚢摘出術", 21500),
    ("50", "H50002", "150049610", "K046", "骨折観血的手術（大腿）", 21630),
    ("50", "H50003", "150285010", "K655", "胃切除術（悪性腫瘍手術）", 55870),
)
_D_ANESTHESIA = ("54", "H54001", "150243710", "L008", "閉鎖循環式全身麻酔５", 6000)
_D_CT = ("70", "H70002", "170033410", "E200", "ＣＴ撮影（６４列以上のマルチスライス型の機器）", 1000)
_D_DISCHARGE = ("13", "H13002", "113003310", "B014", "退院時薬剤情報管理指導料", 90)


def _check_catalogue() -> None:
    for icd, name, dpc in _DISEASES:
        if len(dpc) != 14 or not _ICD10_RE.match(icd):
            raise RuntimeError(f"bad disease entry {icd}")
        name.encode(ENCODING)
    for _cat, details in _ACTS.values():
        for detail in details:
            detail[0].encode(ENCODING)


_check_catalogue()

# EF rows are rendered from bytes pieces: <prefix><item><suffix><date><rest>.
#   prefix  columns before the first item column (facility, patient, dates): per stay and month
#   item    the item columns (データ区分 … 行為回数): per row of a day pattern, rendered once per run
#   suffix  the remaining columns before 実施年月日 (保険者番号, レセプト種別): per stay
#   date    実施年月日: per day;  rest  the columns after it (科, 医師, 病棟, …): per stay and ward
# The column positions come from formats.EF_IN; the import fails loudly if the layout no longer
# keeps the item columns together before 実施年月日.
_EF_ITEM_COLUMNS = frozenset(
    {
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
    }
)
_EF_DATE_AT = EF_IN.columns.index("performed_date")
_EF_ITEM_FROM = min(EF_IN.columns.index(c) for c in _EF_ITEM_COLUMNS)
_EF_ITEM_TO = max(EF_IN.columns.index(c) for c in _EF_ITEM_COLUMNS) + 1
if len(_EF_ITEM_COLUMNS) != _EF_ITEM_TO - _EF_ITEM_FROM or _EF_ITEM_TO > _EF_DATE_AT:  # pragma: no cover
    raise RuntimeError("EF layout changed: item columns must be contiguous and precede performed_date")
_EF_PREFIX_COLUMNS = EF_IN.columns[:_EF_ITEM_FROM]
_EF_ITEM_COLUMN_ORDER = EF_IN.columns[_EF_ITEM_FROM:_EF_ITEM_TO]
_EF_SUFFIX_COLUMNS = EF_IN.columns[_EF_ITEM_TO:_EF_DATE_AT]
_EF_REST_COLUMNS = EF_IN.columns[_EF_DATE_AT + 1 :]

_Y1_AT = {c: i for i, c in enumerate(Y1.columns)}
_D_AT = {c: i for i, c in enumerate(D.columns)}
_Y1_PAYLOAD = {i: _Y1_AT[f"payload_{i}"] for i in range(1, 10)}


def _join(columns: Sequence[str], values: Mapping[str, str]) -> str:
    return "\t".join([values.get(c, "") for c in columns])


def _quantity(q: float) -> str:
    return f"{q:011.3f}"


def _ef_pattern(acts: Sequence[str], rows: int) -> tuple[bytes, ...]:
    """The item pieces of one day: the admission fee E row (detail 000), then F rows of ``acts``."""
    e_name, e_code, e_master, e_interp, _q, e_points, _y = _E_DETAIL
    items = [
        {
            "data_category": "90",
            "order_no": "1",
            "detail_no": "000",
            "hospital_master_code": e_master,
            "receipt_code": e_code,
            "interpretation_no": e_interp,
            "item_name": e_name,
            "quantity": _quantity(1),
            "detail_points": str(e_points),
            "yen_point_flag": "0",
            "ffs_points": str(e_points),
            "act_points": str(e_points),
            "act_drug_cost": "0",
            "act_material_cost": "0",
            "act_count": "1",
        }
    ]
    order = 2
    for act in acts:
        if len(items) >= rows:
            break
        category, details = _ACTS[act]
        act_points = sum(d[5] for d in details if d[6] == "0")
        for n, (name, code, master, interp, qty, points, yen) in enumerate(details, 1):
            if len(items) >= rows:
                break
            is_drug = category in ("21", "33") and not interp
            items.append(
                {
                    "data_category": category,
                    "order_no": str(order),
                    "detail_no": f"{n:03d}",
                    "hospital_master_code": master,
                    "receipt_code": code,
                    "interpretation_no": interp,
                    "item_name": name,
                    "quantity": _quantity(qty),
                    "detail_points": str(abs(points)),
                    "yen_point_flag": yen,
                    "ffs_points": str(points),
                    "detail_type": "1" if is_drug else "",
                    "act_points": str(act_points),
                    "act_drug_cost": str(points) if is_drug else "0",
                    "act_material_cost": str(points) if yen == "1" else "0",
                    "act_count": "1",
                }
            )
        order += 1
    # Pad short catalogues: repeat the last F row with the next detail numbers.
    while len(items) < rows:
        last = dict(items[-1])
        last["detail_no"] = f"{int(last['detail_no']) + 1:03d}"
        items.append(last)
    return tuple(("\t" + _join(_EF_ITEM_COLUMN_ORDER, item)).encode(ENCODING) for item in items)


_FIRST_PATTERN_COUNT = 4
_DAILY_PATTERN_COUNT = 16


@cache
def _ef_library(rows: int) -> tuple[tuple[tuple[bytes, ...], ...], tuple[tuple[bytes, ...], ...]]:
    """Day patterns shared by all stays: (admission-day patterns, other-day patterns)."""
    rng = random.Random(f"ef-library:{rows}")  # noqa: S311 - deterministic synthetic data
    first = tuple(
        _ef_pattern([*_FIRST_DAY_ACTS, *rng.sample(_DAILY_ACTS, 3)], rows) for _ in range(_FIRST_PATTERN_COUNT)
    )
    daily = []
    for i in range(_DAILY_PATTERN_COUNT):
        acts = rng.sample(_DAILY_ACTS, 5)
        if i % 8 == 7:  # now and then a correction with a negative 出来高実績点数
            acts = ["correction", *acts]
        daily.append(_ef_pattern(acts, rows))
    return first, tuple(daily)


def _stay_bits(stay: Stay) -> int:
    """64 deterministic bits per stay key (independent of PYTHONHASHSEED)."""
    key = f"{stay.facility_cd}|{stay.patient_id}|{_ymd(stay.admission_date)}|{stay.admission_seq_no}"
    return int.from_bytes(hashlib.blake2b(key.encode(ENCODING), digest_size=8).digest(), "big")


class _StayRenderer:
    """Renders the rows of one stay; per-stay pieces are computed once."""

    __slots__ = (
        "bits",
        "d_base",
        "d_items",
        "daily",
        "first",
        "rest_by_ward",
        "spans",
        "stay",
        "stay_values",
        "suffix",
    )

    def __init__(self, stay: Stay, ef_rows_per_day: int) -> None:
        self.stay = stay
        self.bits = bits = _stay_bits(stay)
        age = stay.admission_date.year - stay.birth_date.year
        self.stay_values = {
            "insurer_no": stay.insurer_no,
            "receipt_type": "1318" if age >= 75 else "1112",
            "receipt_dept": stay.clinical_dept[:2],
            "clinical_dept": stay.clinical_dept,
            "doctor_code": stay.doctor_code,
            "inout_flag": "1",
            "facility_type": "",
            "hospital_coefficient": stay.hospital_coefficient,
            "dpc_code": stay.dpc_code,
        }
        first_patterns, daily_patterns = _ef_library(ef_rows_per_day)
        self.first = first_patterns[bits % _FIRST_PATTERN_COUNT]
        self.daily = tuple(daily_patterns[(bits >> (4 + 4 * i)) % _DAILY_PATTERN_COUNT] for i in range(3))
        self.suffix = ("\t" + _join(_EF_SUFFIX_COLUMNS, self.stay_values) + "\t").encode(ENCODING)
        self.spans = stay.ward_spans()
        self.rest_by_ward: dict[str, bytes] = {}
        for code, _start, _end in self.spans:
            values = {**self.stay_values, "ward_code": code, "ward_type": _ward_type(code)}
            self.rest_by_ward[code] = ("\t" + _join(_EF_REST_COLUMNS, values) + _CRLF).encode(ENCODING)
        self.d_items = self._d_items(bits >> 20)
        self.d_base: list[str] | None = None

    def _d_items(self, bits: int) -> list[tuple[date, tuple[str, str, str, str, str, int]]]:
        stay = self.stay
        items: list[tuple[date, tuple[str, str, str, str, str, int]]] = []
        if bits % 10 < 7:
            items.append((stay.admission_date, _D_CT))
        if stay.dpc_code[8:10] not in ("99", "xx", "97"):  # a surgical DPC code
            day = stay.admission_date + timedelta(days=1)
            if stay.discharge_date is not None and day > stay.discharge_date:
                day = stay.discharge_date
            items.append((day, _D_SURGERY[(bits >> 4) % len(_D_SURGERY)]))
            items.append((day, _D_ANESTHESIA))
        if stay.discharge_date is not None:
            items.append((stay.discharge_date, _D_DISCHARGE))
        return items

    def ward_on(self, day: date) -> str:
        for code, start, end in self.spans:
            if start <= day and (end is None or day <= end):
                return code
        return self.spans[-1][0]

    # --- y1 ------------------------------------------------------------------------------------
    def y1_chunk(self) -> tuple[bytes, int]:
        stay = self.stay
        assert stay.discharge_date is not None
        at = _Y1_AT
        p1, p2, p3, p4, p5, p9 = (_Y1_PAYLOAD[i] for i in (1, 2, 3, 4, 5, 9))
        item, seq_at, summary_at = at["item_code"], at["item_seq"], at["summary_no"]
        base = [""] * Y1.column_count
        base[at["facility_cd"]] = stay.facility_cd
        base[at["patient_id"]] = stay.patient_id
        base[at["admission_date"]] = admission = _ymd(stay.admission_date)
        base[at["admission_seq_no"]] = str(stay.admission_seq_no)
        base[summary_at] = Y1_WHOLE_STAY_SUMMARY_NO
        base[at["item_version"]] = Y1_ITEM_VERSION
        base[seq_at] = "1"
        main = stay.main_icd10
        trigger = stay.trigger_icd10 or main
        resource = stay.resource_icd10 or main
        name = stay.disease_name
        prev = stay.prev_discharge_date
        rows: list[tuple[tuple[int, str], ...]] = [
            ((item, "A000010"), (p1, _ymd(stay.birth_date)), (p2, stay.sex)),
            ((item, "A000020"), (p1, admission), (p2, stay.admission_route), (p5, stay.admission_type)),
            (
                (item, "A000030"),
                (p1, _ymd(stay.discharge_date)),
                (p2, stay.discharge_destination),
                (p3, stay.discharge_outcome),
            ),
            ((item, "A000070"), (p1, _ymd(prev) if prev is not None else stay.prev_discharge_sentinel)),
        ]
        if stay.readmission_type is not None:
            rows.append(((item, "A000080"), (p2, stay.readmission_type)))
        rows.append(((item, "A006010"), (p2, main), (p9, name)))
        rows.append(((item, "A006020"), (p2, trigger), (p9, name if trigger == main else "")))
        rows.append(((item, "A006030"), (p2, resource), (p9, name if resource == main else "")))
        for seq, icd in enumerate(stay.comorbidities, 1):
            rows.append(((item, "A006040"), (seq_at, str(seq)), (p2, icd)))
        if len(self.spans) > 1:
            for summary_no, (code, start, end) in zip(SEGMENT_SUMMARY_NOS, self.spans, strict=False):
                rows.append(
                    (
                        (summary_at, summary_no),
                        (item, WARD_SEGMENT_ITEM),
                        (p1, code),
                        (p2, _ymd(start)),
                        (p3, _ymd(end) if end is not None else NOT_YET),
                        (p4, _ward_type(code)),
                    )
                )
        return _render_rows(base, rows), len(rows)

    # --- EF ------------------------------------------------------------------------------------
    def ef_chunk(self, first: date, last: date, discharge_field: str, dates: _DateCache) -> tuple[bytes, int]:
        stay = self.stay
        prefix = _join(
            _EF_PREFIX_COLUMNS,
            {
                "facility_cd": stay.facility_cd,
                "patient_id": stay.patient_id,
                "discharge_date": discharge_field,
                "admission_date": dates.text(stay.admission_date),
                **self.stay_values,
            },
        ).encode(ENCODING)
        suffix = self.suffix
        first_heads = [prefix + item + suffix for item in self.first]
        daily_heads = [[prefix + item + suffix for item in pattern] for pattern in self.daily]
        days: list[bytes] = []
        append = days.append
        admission = stay.admission_date
        date_bytes = dates.bytes_
        for code, start, end in self.spans:
            d0 = max(first, start)
            d1 = last if end is None else min(last, end)
            if d1 < d0:
                continue
            rest = self.rest_by_ward[code]
            offset = (d0 - admission).days
            for ordinal in range(d0.toordinal(), d1.toordinal() + 1):
                tail = date_bytes(ordinal) + rest
                # every row of the day is <head><tail>: join the heads with the tail, end with it
                append(tail.join(first_heads if offset == 0 else daily_heads[offset % 3]))
                append(tail)
                offset += 1
        return b"".join(days), len(days) // 2 * len(first_heads)

    # --- D -------------------------------------------------------------------------------------
    def d_chunk(self, first: date, last: date, discharge_field: str, dates: _DateCache) -> tuple[bytes, int]:
        stay = self.stay
        at = _D_AT
        if self.d_base is None:
            self.d_base = _fields(
                D,
                {
                    **self.stay_values,
                    "facility_cd": stay.facility_cd,
                    "patient_id": stay.patient_id,
                    "admission_date": dates.text(stay.admission_date),
                    "act_drug_cost": "0",
                    "act_material_cost": "0",
                    "yen_point_flag": "0",
                    "act_count": "1",
                },
            )
        base = self.d_base.copy()
        base[at["discharge_date"]] = discharge_field
        days = (last - first).days + 1
        coefficient = float(stay.hospital_coefficient) if _is_number(stay.hospital_coefficient) else 1.0
        group = stay.dpc_code[:6]
        daily = 2400 + (int(group) % 1200 if group.isdigit() else 0)
        last_ward = self.ward_on(last)
        rows: list[tuple[tuple[int, str], ...]] = [
            (
                (at["data_category"], "93"),
                (at["order_no"], "1"),
                (at["hospital_master_code"], "DPC93"),
                (at["receipt_code"], "930000000"),
                (at["item_name"], "診断群分類包括評価"),
                (at["act_points"], str(int(daily * days * coefficient))),
                (at["act_count"], str(days)),
                (at["ward_code"], last_ward),
                (at["ward_type"], _ward_type(last_ward)),
                (at["calc_start_date"], dates.text(first)),
                (at["calc_end_date"], dates.text(last)),
                (at["calc_base_date"], dates.text(stay.admission_date)),
            )
        ]
        for day, (category, master, code, interp, name, points) in self.d_items:
            if first <= day <= last:
                ward = self.ward_on(day)
                rows.append(
                    (
                        (at["data_category"], category),
                        (at["order_no"], str(len(rows) + 1)),
                        (at["hospital_master_code"], master),
                        (at["receipt_code"], code),
                        (at["interpretation_no"], interp),
                        (at["item_name"], name),
                        (at["act_points"], str(points)),
                        (at["performed_date"], dates.text(day)),
                        (at["ward_code"], ward),
                        (at["ward_type"], _ward_type(ward)),
                    )
                )
        return _render_rows(base, rows), len(rows)


def _render_rows(base: list[str], rows: Sequence[Sequence[tuple[int, str]]]) -> bytes:
    """Lines of ``base`` with each row's (column index, value) pairs set, CRLF-terminated, cp932."""
    lines = []
    for row in rows:
        fields = base.copy()
        for i, value in row:
            fields[i] = value
        lines.append("\t".join(fields))
    lines.append("")
    return _CRLF.join(lines).encode(ENCODING)


def _fields(layout: FileLayout, values: Mapping[str, str]) -> list[str]:
    return [values.get(c, "") for c in layout.columns]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _DateCache:
    """yyyymmdd texts and bytes by date, computed once per date."""

    def __init__(self) -> None:
        self._text: dict[date, str] = {}
        self._bytes: dict[int, bytes] = {}

    def text(self, d: date) -> str:
        value = self._text.get(d)
        if value is None:
            value = self._text[d] = _ymd(d)
        return value

    def bytes_(self, ordinal: int) -> bytes:
        value = self._bytes.get(ordinal)
        if value is None:
            value = self._bytes[ordinal] = _ymd(date.fromordinal(ordinal)).encode("ascii")
        return value


# ---------------------------------------------------------------------------------------------
# Writing month folders


class _Sink:
    """One output file: buffered binary writer plus the running SHA-256, byte and record counts."""

    __slots__ = ("facility_cd", "fh", "file_type", "hasher", "n_bytes", "path", "records")

    def __init__(self, path: Path, file_type: str, facility_cd: str) -> None:
        self.path = path
        self.file_type = file_type
        self.facility_cd = facility_cd
        self.hasher = hashlib.sha256()
        self.n_bytes = 0
        self.records = 0
        self.fh: BinaryIO | None = open(path, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        header = _HEADERS[file_type]
        self.fh.write(header)
        self.hasher.update(header)
        self.n_bytes += len(header)

    def write(self, chunk: bytes, records: int) -> None:
        if self.fh is None:  # the facility came back after others: append where we left off
            self.fh = open(self.path, "ab", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self.fh.write(chunk)
        self.hasher.update(chunk)
        self.n_bytes += len(chunk)
        self.records += records

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def entry(self) -> dict[str, object]:
        return {
            "file_type": self.file_type,
            "facility_cd": self.facility_cd,
            "path": self.path.name,
            "sha256": self.hasher.hexdigest(),
            "bytes": self.n_bytes,
            "records": self.records,
        }


class _MonthsWriter:
    def __init__(
        self,
        months: list[str],
        out_dir: Path,
        ef_rows_per_day: int,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.months = months
        self.bounds = [_month_bounds(m) for m in months]
        self.dirs = [out_dir / month_dir_name(m) for m in months]
        self.month_index = {m: i for i, m in enumerate(months)}
        self.window_last = self.bounds[-1][1]
        self.ef_rows_per_day = ef_rows_per_day
        self.progress = progress
        self.sinks: dict[tuple[int, str, str], _Sink] = {}
        self.open_sinks: list[_Sink] = []
        self.facilities: dict[str, None] = {}  # insertion-ordered set
        self.current: str | None = None
        self.facility_rows = dict.fromkeys(FILE_TYPES, 0)
        self.total_rows = 0
        self.started = time.monotonic()
        self.dates = _DateCache()
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)

    def _sink(self, month_i: int, facility_cd: str, file_type: str) -> _Sink:
        key = (month_i, facility_cd, file_type)
        sink = self.sinks.get(key)
        if sink is None:
            name = LAYOUTS[file_type].file_name(facility_cd, self.months[month_i])
            sink = self.sinks[key] = _Sink(self.dirs[month_i] / name, file_type, facility_cd)
            self.open_sinks.append(sink)
        elif sink.fh is None:
            self.open_sinks.append(sink)
        return sink

    def _close_facility(self) -> None:
        for sink in self.open_sinks:
            sink.close()
        self.open_sinks = []
        if self.current is not None:
            self.total_rows += sum(self.facility_rows.values())
            if self.progress is not None:
                counts = " ".join(f"{t}={n}" for t, n in self.facility_rows.items())
                self.progress(
                    f"facility {len(self.facilities)} done: {counts} rows; "
                    f"{self.total_rows:,} rows written, {self._rate()}"
                )
        self.facility_rows = dict.fromkeys(FILE_TYPES, 0)

    def _rate(self) -> str:
        seconds = time.monotonic() - self.started
        return f"{self.total_rows / seconds:,.0f} rows/s" if seconds > 0 else "- rows/s"

    def add(self, stay: Stay) -> None:
        if stay.facility_cd != self.current:
            self._close_facility()
            self.current = stay.facility_cd
            self.facilities[stay.facility_cd] = None
        last_day = stay.discharge_date or self.window_last
        renderer: _StayRenderer | None = None
        for i, (m_first, m_last) in enumerate(self.bounds):
            if m_last < stay.admission_date:
                continue
            if m_first > last_day:
                break
            if renderer is None:
                renderer = _StayRenderer(stay, self.ef_rows_per_day)
            d0 = max(stay.admission_date, m_first)
            d1 = min(last_day, m_last)
            if stay.discharge_date is not None and stay.discharge_date <= m_last:
                discharge_field = self.dates.text(stay.discharge_date)
            else:
                discharge_field = NOT_YET
            chunk, n = renderer.ef_chunk(d0, d1, discharge_field, self.dates)
            self._sink(i, stay.facility_cd, "ef_in").write(chunk, n)
            self.facility_rows["ef_in"] += n
            chunk, n = renderer.d_chunk(d0, d1, discharge_field, self.dates)
            self._sink(i, stay.facility_cd, "d").write(chunk, n)
            self.facility_rows["d"] += n
        if stay.discharge_date is not None:
            month_i = self.month_index.get(_yyyymm(stay.discharge_date))
            if month_i is not None:
                if renderer is None:  # pragma: no cover - a discharge month always overlaps
                    renderer = _StayRenderer(stay, self.ef_rows_per_day)
                chunk, n = renderer.y1_chunk()
                self._sink(month_i, stay.facility_cd, "y1").write(chunk, n)
                self.facility_rows["y1"] += n

    def finish(self, created_at: str | datetime | None, extra_facilities: Iterable[str]) -> list[Path]:
        self._close_facility()
        for facility_cd in extra_facilities:
            if not re.fullmatch(r"[0-9]{9}", facility_cd):
                raise ValueError("facility_cd must be 9 digits")
            self.facilities.setdefault(facility_cd, None)
        for i in range(len(self.months)):
            for facility_cd in self.facilities:
                for file_type in FILE_TYPES:
                    self._sink(i, facility_cd, file_type)  # header-only file when it has no rows
            for sink in self.open_sinks:
                sink.close()
            self.open_sinks = []
        if not self.facilities:
            raise ValueError("no stays and no facilities: a manifest needs at least one file")
        type_order = {t: n for n, t in enumerate(FILE_TYPES)}
        manifests = []
        for i, yyyymm in enumerate(self.months):
            entries = [s for (mi, _f, _t), s in self.sinks.items() if mi == i]
            entries.sort(key=lambda s: (type_order[s.file_type], s.facility_cd))
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "yyyymm": yyyymm,
                "created_at": _created_at_text(created_at, yyyymm),
                "files": [s.entry() for s in entries],
            }
            path = self.dirs[i] / MANIFEST_NAME
            tmp = path.with_name(f".{MANIFEST_NAME}.tmp")
            tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
            manifests.append(path)
            if self.progress is not None:
                counts = " ".join(f"{t}={sum(s.records for s in entries if s.file_type == t)}" for t in FILE_TYPES)
                sizes = " ".join(f"{t}={sum(s.n_bytes for s in entries if s.file_type == t):,}" for t in FILE_TYPES)
                self.progress(
                    f"month {i + 1}/{len(self.months)} {yyyymm}: manifest written, {len(entries)} files, "
                    f"{counts} rows, bytes {sizes}"
                )
        if self.progress is not None:
            seconds = time.monotonic() - self.started
            self.progress(
                f"done: {len(self.months)} months, {len(self.sinks)} files, {self.total_rows:,} rows "
                f"in {seconds:,.1f} s ({self._rate()})"
            )
        return manifests


def _created_at_text(created_at: str | datetime | None, yyyymm: str) -> str:
    if created_at is None:
        return default_created_at(yyyymm)
    if isinstance(created_at, datetime):
        if created_at.tzinfo is None:
            raise ValueError("created_at needs a time zone")
        return created_at.isoformat(timespec="seconds")
    if not _CREATED_AT_RE.match(created_at):
        raise ValueError("created_at must look like 2025-05-08T09:00:00+09:00")
    datetime.fromisoformat(created_at.replace("Z", "+00:00"))  # a real date and time
    return created_at


def write_months(
    stays: Iterable[Stay],
    months: Iterable[str],
    out_dir: str | os.PathLike[str],
    *,
    created_at: str | datetime | None = None,
    ef_rows_per_day: int = DEFAULT_EF_ROWS_PER_DAY,
    facilities: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Render ``stays`` into ``<out_dir>/yyyymm=<YYYYMM>/`` for each of ``months``; return the manifests.

    A stay's y1 rows go to the y1 file of its discharge month (when that month is written); its EF
    and D rows go to every written month its days fall in, 退院年月日 ``00000000`` in months it is
    still admitted at month end. Days outside ``months`` are not written. Every facility of
    ``stays`` (plus ``facilities``) gets all three files in every month, header-only when empty.
    Stays are consumed once, in order; grouping them by facility keeps the fewest files open.
    ``created_at`` (default: :func:`default_created_at` per month) goes into every manifest.
    Existing files of the same names are overwritten; other files in the folders are left alone.
    """
    if ef_rows_per_day < 1:
        raise ValueError("ef_rows_per_day must be at least 1")
    month_list = _normalize_months(months)
    _created_at_text(created_at, month_list[0])  # fail before writing anything
    writer = _MonthsWriter(month_list, Path(out_dir), ef_rows_per_day, progress)
    try:
        for stay in stays:
            writer.add(stay)
    except BaseException:
        for sink in writer.sinks.values():
            sink.close()
        raise
    return writer.finish(created_at, facilities)


# ---------------------------------------------------------------------------------------------
# Random scenario producer


@dataclass(frozen=True)
class _Facility:
    index: int
    facility_cd: str
    coefficient: str
    wards: tuple[str, ...]
    pid_offset: int


class _Patient:
    """Demographics and history of one synthetic patient at one facility."""

    def __init__(self, rng: random.Random, facility: _Facility, patient_id: str, first_admission: date) -> None:
        self.rng = rng
        self.facility = facility
        self.patient_id = patient_id
        low, high = _pick(rng, _AGE_BANDS)
        age = rng.randrange(low, high)
        self.birth_date = first_admission - timedelta(days=365 * age + rng.randrange(365))
        self.sex = _choice(rng, ("1", "2"))
        self.insurer_no = _choice(rng, ("06130012", "138057", "39131015", "01130012", "32130318"))
        self.doctor_code = f"D{rng.randrange(1, 400):05d}"
        self.prev: Stay | None = None

    def stay(
        self,
        admission: date,
        los: int,
        window_last: date,
        *,
        outcome: str | None = None,
        admission_type: str | None = None,
        transfer: bool | None = None,
    ) -> Stay:
        """The next stay: ``los`` days counted inclusively (1 = discharged on the admission day)."""
        rng = self.rng
        prev = self.prev
        seq = 1
        if prev is not None and prev.admission_date == admission:
            seq = prev.admission_seq_no + 1
        icd, name, dpc = _choice(rng, _DISEASES)
        discharge = admission + timedelta(days=los - 1)
        if admission_type is None:
            admission_type = _pick(rng, _ADMISSION_TYPE_PICK)
        if outcome is None:
            age = admission.year - self.birth_date.year
            death = rng.random() < (0.03 if age >= 65 else 0.005)
            outcome = _choice(rng, ("6", "7")) if death else _pick(rng, _OUTCOMES_ALIVE)
        wards = [_choice(rng, self.facility.wards)]
        transfers: list[date] = []
        if transfer is None:
            transfer = los >= 3 and rng.random() < 0.12
        if transfer and los >= 3:
            n = 3 if los >= 6 and rng.random() < 0.3 else 2
            while len(wards) < n:
                ward = _choice(rng, self.facility.wards)
                if ward != wards[-1]:
                    wards.append(ward)
            transfers = [admission + timedelta(days=o) for o in sorted(rng.sample(range(1, los), n - 1))]
        prev_reported = None
        readmission_type = None
        if prev is not None and prev.discharge_date is not None:
            if rng.random() < 0.9:
                prev_reported = prev.discharge_date
            if (admission - prev.discharge_date).days <= 28:
                readmission_type = "1" if admission_type in _PLANNED else "2"
        trigger = icd if rng.random() < 0.85 else _choice(rng, _DISEASES)[0]
        resource = icd if rng.random() < 0.9 else _choice(rng, _COMORBIDITIES)
        comorbidities = tuple(rng.sample(_COMORBIDITIES, _choice(rng, (0, 0, 1, 2))))
        dead = outcome in ("6", "7")
        stay = Stay(
            facility_cd=self.facility.facility_cd,
            patient_id=self.patient_id,
            admission_date=admission,
            admission_seq_no=seq,
            discharge_date=discharge if discharge <= window_last else None,
            admission_type=admission_type,
            discharge_outcome=outcome,
            birth_date=self.birth_date,
            sex=self.sex,
            main_icd10=icd,
            trigger_icd10=trigger,
            resource_icd10=resource,
            disease_name=name,
            dpc_code=dpc,
            wards=tuple(wards),
            ward_transfer_dates=tuple(transfers),
            prev_discharge_date=prev_reported,
            prev_discharge_sentinel=_choice(rng, (NOT_YET, NOT_APPLICABLE)),
            readmission_type=readmission_type,
            admission_route=_pick(rng, _ADMISSION_ROUTES),
            discharge_destination="9" if dead else _pick(rng, _DESTINATIONS),
            comorbidities=comorbidities,
            hospital_coefficient=self.facility.coefficient,
            insurer_no=self.insurer_no,
            clinical_dept=_DEPTS[int(dpc[:2]) % len(_DEPTS)],
            doctor_code=self.doctor_code,
        )
        self.prev = stay
        return stay


def _facility_codes(rng: random.Random, n: int) -> list[str]:
    codes: list[str] = []
    while len(codes) < n:
        code = f"{_choice(rng, _PREFECTURES):02d}1{rng.randrange(10**6):06d}"
        if code not in codes:
            codes.append(code)
    return codes


def _patient_id(facility: _Facility, serial: int) -> str:
    """10 digits: facility number (001..999) and a permutation of the serial; 000… is the shared one."""
    if serial >= 10**7:
        raise ValueError("too many patients for one facility")
    return f"{facility.index + 1:03d}{(serial * 7_654_321 + facility.pid_offset) % 10**7:07d}"


def _in_window(stay: Stay, window_first: date, window_last: date) -> bool:
    return stay.admission_date <= window_last and (stay.discharge_date is None or stay.discharge_date >= window_first)


def _planted(
    rng: random.Random, facility: _Facility, n_facilities: int, shared_pid: str, first: date, last: date
) -> Iterator[Stay]:
    """Fixed scenarios placed in every facility, so coverage never depends on luck."""
    serial = 0

    def patient(pid: str | None = None, when: date = first) -> _Patient:
        nonlocal serial
        serial += 1
        return _Patient(rng, facility, pid or _patient_id(facility, serial), when)

    def chain(p: _Patient, plan: list[tuple[int, int, dict]]) -> Iterator[Stay]:
        """plan: (gap in days after the previous discharge or offset from the window start, los, kw)."""
        for gap, los, kwargs in plan:
            if p.prev is None:
                admission = first + timedelta(days=gap)
            elif p.prev.discharge_date is None:
                return
            else:
                admission = p.prev.discharge_date + timedelta(days=gap)
            if admission > last:
                return
            yield p.stay(admission, los, last, **kwargs)

    plain = {"outcome": "1", "transfer": False}
    # readmissions 3, 15 and 45 days after a discharge
    yield from chain(patient(), [(2, 5, plain), (3, 4, {**plain, "admission_type": "200"})])
    yield from chain(patient(), [(5, 6, plain), (15, 7, {**plain, "admission_type": "100"})])
    yield from chain(patient(), [(1, 4, plain), (45, 5, {**plain, "admission_type": "301"})])
    # two stays on one admission date: a same-day discharge, then admission_seq_no 2
    yield from chain(patient(), [(8, 1, plain), (0, 6, {**plain, "admission_type": "302"})])
    # a stay across the first month end
    month_end = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
    p = patient()
    yield p.stay(month_end - timedelta(days=3), 9, last, outcome="1", transfer=False)
    # ward transfers (two or three wards): y1 ward segment rows
    yield from chain(patient(), [(12, 10, {"outcome": "2", "transfer": True})])
    # a death after an earlier stay; nothing follows it
    yield from chain(patient(), [(3, 4, plain), (20, 8, {"outcome": "6", "transfer": False})])
    # still admitted at the end of the last month
    p = patient()
    yield p.stay(last - timedelta(days=4), 30, last, outcome="1", transfer=False)
    # one patient id seen at two facilities (facilities never link patients)
    if n_facilities > 1 and facility.index in (0, 1):
        offset = 6 if facility.index == 0 else 20
        yield from chain(patient(shared_pid), [(offset, 3 + facility.index * 2, plain)])


def generate_stays(
    facilities: int | Sequence[str],
    months: Iterable[str],
    seed: int,
    discharges_per_month: int = DEFAULT_DISCHARGES_PER_MONTH,
) -> Iterator[Stay]:
    """Yield random but realistic stays, facility by facility, each patient's stays in time order.

    Only stays with days inside the span of ``months`` are yielded. Per facility, patients are drawn
    until about ``discharges_per_month`` stays per month are discharged inside the span (plus a few
    fixed scenarios, see ``_planted``). ``facilities`` is a count or a list of 9-digit codes.
    """
    month_list = _normalize_months(months)
    first = _month_bounds(month_list[0])[0]
    last = _month_bounds(month_list[-1])[1]
    span_days = (last - first).days + 1
    rng = random.Random(seed)  # noqa: S311 - deterministic synthetic data, not security
    if isinstance(facilities, int):
        if not 1 <= facilities <= 999:
            raise ValueError("facilities must be 1..999")
        codes = _facility_codes(rng, facilities)
    else:
        codes = list(facilities)
        if len(set(codes)) != len(codes) or not all(re.fullmatch(r"[0-9]{9}", c) for c in codes):
            raise ValueError("facility codes must be unique 9-digit strings")
    seeds = [rng.getrandbits(64) for _ in codes]
    shared_pid = f"000{rng.randrange(10**7):07d}"
    target = max(0, discharges_per_month) * len(month_list)
    for index, (code, facility_seed) in enumerate(zip(codes, seeds, strict=True)):
        frng = random.Random(facility_seed)  # noqa: S311
        wards = tuple(frng.sample(_WARDS, 6))
        facility = _Facility(
            index=index,
            facility_cd=code,
            coefficient=f"{1.3 + frng.random() * 0.35:.4f}",
            wards=wards,
            pid_offset=frng.randrange(10**7),
        )
        discharged = 0
        for stay in _planted(frng, facility, len(codes), shared_pid, first, last):
            discharged += stay.discharge_date is not None and stay.discharge_date >= first
            yield stay
        serial = 1000  # planted patients use the serials below
        while discharged < target:
            serial += 1
            admission = first + timedelta(days=frng.randrange(-40, span_days))
            p = _Patient(frng, facility, _patient_id(facility, serial), admission)
            n_stays = _pick(frng, _STAYS_PER_PATIENT)
            for n in range(n_stays):
                if n:
                    assert p.prev is not None and p.prev.discharge_date is not None
                    low, high = _pick(frng, _READMISSION_GAPS)
                    admission = p.prev.discharge_date + timedelta(days=frng.randint(low, high))
                    if admission > last:
                        break
                low, high = _pick(frng, _LENGTHS_OF_STAY)
                stay = p.stay(admission, frng.randint(low, high), last)
                if _in_window(stay, first, last):
                    discharged += stay.discharge_date is not None
                    yield stay
                if stay.discharge_date is None or stay.discharge_outcome in ("6", "7"):
                    break


# ---------------------------------------------------------------------------------------------
# CLI


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dpc_elt.dev.synthetic",
        description="Write deterministic synthetic DPC month folders (y1, ef_in, d, _manifest.json).",
    )
    parser.add_argument("--facilities", type=int, default=3, help="number of facilities (default 3)")
    parser.add_argument("--months", required=True, help="YYYYMM, YYYYMM-YYYYMM or a comma list")
    parser.add_argument("--out", required=True, help="raw root folder; month folders go below it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--discharges-per-month", type=int, default=DEFAULT_DISCHARGES_PER_MONTH)
    parser.add_argument("--ef-rows-per-day", type=int, default=DEFAULT_EF_ROWS_PER_DAY)
    parser.add_argument("--created-at", default=None, help="ISO-8601 with offset; default 8th of next month")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        months = parse_months(args.months)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"[synthetic] {message}", file=sys.stderr, flush=True)

    manifests = write_months(
        generate_stays(args.facilities, months, args.seed, args.discharges_per_month),
        months,
        args.out,
        created_at=args.created_at,
        ef_rows_per_day=args.ef_rows_per_day,
        progress=None if args.quiet else progress,
    )
    for path in manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        counts = " ".join(f"{t}={sum(f['records'] for f in files if f['file_type'] == t)}" for t in FILE_TYPES)
        print(f"{manifest['yyyymm']}: {len(files)} files, rows {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
