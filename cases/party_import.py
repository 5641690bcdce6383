"""Parties from a CSV file (UTF-8, a header row): all rows or none. Every row is checked first and every error is
reported with its line; only a clean file is written, in one transaction, so nothing is ever half-imported. A row
whose key is already stored (a merchant's licence number, a vehicle's plate) updates that party; afterwards every
case without a party is bound to the one now found for it (`PartyService.bind_unbound`). The review UI's party forms
check one party's fields with the same rules (`check_party`) and write it the same way (`save_party`); every
addition and edit is recorded (`PartyChange`) with its actor and time.

Columns: merchants `name,shop,licence_no,contact,point_id,zones` (zones of the point, separated by `;`); vehicles
`plate,company,licence_no,contact` (the company's licence number and the contact may be empty).

>>> rows = read_rows("merchant", "name,shop,licence_no,contact,point_id,zones\\n"
...     "张三,张记水果,91310115MA1K4AB30P,13800000000,JDZ-001,front;side\\n", {"JDZ-001": {"front", "side"}})
>>> rows[0].zones, rows[0].line
(['front', 'side'], 2)
>>> read_rows("vehicle", "plate,company,licence_no,contact\\nX1,,,\\n", None)
Traceback (most recent call last):
...
cases.party_import.PartyImportError: 第 2 行 / line 2: plate: 车牌格式不对 / not a plate: 'X1'; company: 必填 / required
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cases.models import Party, PartyChange, PartyZone
from cases.parties import PartyService, normalise_plate, party_json

Kind = Literal["merchant", "vehicle"]
# Mainland plates: province, letter, 5 (ordinary) or 6 (new-energy) letters or digits, maybe 挂/学/警/领 last.
_PLATE_RE = re.compile(r"[\u4e00-\u9fa5][A-Z][A-HJ-NP-Z0-9]{5,6}[挂学警领]?")
# The unified social credit code (GB 32100-2015, 18 characters) or an older business licence number (15 digits).
_LICENCE_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}|\d{15}")


class PartyImportError(ValueError):
    """The file was refused; every line at fault is named (zh-CN first, English second), nothing was written."""


class PartyFieldsError(ValueError):
    """One party's fields were refused: `errors` maps each field at fault to why (zh-CN first, English second)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {why}" for field, why in errors.items()))
        self.errors = errors


def _licence(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if not _LICENCE_RE.fullmatch(value):
        raise ValueError(f"营业执照号/统一社会信用代码格式不对 / not a licence number or credit code: {value!r}")
    return value


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line: int = Field(exclude=True)
    contact: str | None = Field(default=None, max_length=256)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("licence_no", check_fields=False)
    @classmethod
    def _licence(cls, value: str | None) -> str | None:
        return _licence(value)


class MerchantRow(_Row):
    """A merchant: the operator's name, the shop, its licence number (the key) and the zones it fronts."""

    name: str = Field(min_length=1, max_length=128)
    shop: str = Field(min_length=1, max_length=128)
    licence_no: str
    point_id: str = Field(min_length=1, max_length=32)
    zones: list[str] = Field(min_length=1)

    @field_validator("zones", mode="before")
    @classmethod
    def _split(cls, value):
        return [z.strip() for z in value.split(";") if z.strip()] if isinstance(value, str) else value

    @property
    def key(self) -> str:
        return self.licence_no


class VehicleRow(_Row):
    """A vehicle: its plate (the key) and its transport company, the party a notice goes to."""

    plate: str
    company: str = Field(min_length=1, max_length=128)
    licence_no: str | None = None

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        plate = normalise_plate(value)
        if not _PLATE_RE.fullmatch(plate):
            raise ValueError(f"车牌格式不对 / not a plate: {value!r}")
        return plate

    @property
    def key(self) -> str:
        return self.plate


ROWS: dict[str, type[MerchantRow] | type[VehicleRow]] = {"merchant": MerchantRow, "vehicle": VehicleRow}


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    created: int
    updated: int
    cases_bound: int


def read_rows(kind: Kind, text: str, known_zones: Mapping[str, set[str]] | None) -> list[MerchantRow | VehicleRow]:
    """The checked rows of a CSV `text`, or a `PartyImportError` naming every faulty line. `known_zones`: the
    zones of each configured point (None: not checked)."""
    model = ROWS[kind]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = set(model.model_fields) - {"line"}
    header = set(reader.fieldnames or ())
    if header != columns:
        raise PartyImportError(
            f"第 1 行 / line 1: 表头应为 / the header must be {','.join(sorted(columns))}"
            f"（缺 / missing: {sorted(columns - header)}，多 / unknown: {sorted(header - columns)}）"
        )
    rows, errors, seen = [], [], {}
    for raw in reader:
        line = reader.line_num
        try:
            row = check_party(kind, raw, known_zones, line)
        except PartyFieldsError as e:
            errors.append(f"第 {line} 行 / line {line}: {e}")
            continue
        problem = _repeat(row, seen)
        errors += [f"第 {line} 行 / line {line}: {problem}"] if problem else []
        rows.append(row)
    if errors or not rows:
        raise PartyImportError("\n".join(errors) or "文件中没有数据行 / the file has no rows")
    return rows


def check_party(
    kind: Kind, fields: Mapping[str, Any], known_zones: Mapping[str, set[str]] | None, line: int = 0
) -> MerchantRow | VehicleRow:
    """One party's `fields` (a CSV row, or the review UI's form) checked; else a `PartyFieldsError` naming each field.

    >>> check_party("vehicle", {"plate": "沪d·62819", "company": "浦东运输"}, None).plate
    '沪D62819'
    >>> check_party("merchant", {"name": "张三", "shop": "", "licence_no": "91310115MA1K4AB30P", "contact": "",
    ...     "point_id": "JDZ-001", "zones": "back"}, {"JDZ-001": {"front"}})
    Traceback (most recent call last):
    ...
    cases.party_import.PartyFieldsError: shop: 必填 / required
    """
    try:
        row = ROWS[kind].model_validate(dict(fields) | {"line": line})
    except ValidationError as e:
        errors: dict[str, str] = {}
        for err in e.errors():
            field = ".".join(map(str, err["loc"])) or "row"
            errors[field] = "; ".join(filter(None, (errors.get(field), _message(err))))
        raise PartyFieldsError(errors) from None
    problem = _zone_problem(row, known_zones)
    if problem:
        raise PartyFieldsError(dict([problem]))
    return row


def _message(err) -> str:
    # An empty cell reaches a required column as None (an empty zone list as []): say so, rather than pydantic's words.
    empty = err["type"] == "string_type" and err.get("input") is None
    if err["type"] == "missing" or empty or (err["type"] == "too_short" and not err.get("input")):
        return "必填 / required"
    if err["type"] == "string_too_long":
        n = err["ctx"]["max_length"]
        return f"最多 {n} 个字符 / at most {n} characters"
    return err["msg"].removeprefix("Value error, ")


def _zone_problem(row: MerchantRow | VehicleRow, known: Mapping[str, set[str]] | None) -> tuple[str, str] | None:
    if known is None or not isinstance(row, MerchantRow):
        return None
    if row.point_id not in known:
        return "point_id", f"没有点位 {row.point_id} / no point {row.point_id}"
    unknown = sorted(set(row.zones) - known[row.point_id])
    if unknown:
        return "zones", f"点位 {row.point_id} 没有区域 {unknown} / point {row.point_id} has no zone {unknown}"
    return None


def _repeat(row: MerchantRow | VehicleRow, seen: dict[str, int]) -> str | None:
    first = seen.setdefault(row.key, row.line)
    return None if first == row.line else f"{row.key} 与第 {first} 行重复 / {row.key} repeats line {first}"


def import_parties(
    s: Session, parties: PartyService, rows: list[MerchantRow | VehicleRow], actor: str, at: datetime
) -> ImportResult:
    """Write checked `rows` in the session's transaction (the caller commits) as `actor` at `at`, and bind the cases
    they identify."""
    created = updated = 0
    for row in rows:
        party = stored_party(s, row)
        created, updated = (created + 1, updated) if party is None else (created, updated + 1)
        save_party(s, party or Party(kind=row_kind(row)), row, actor, at)
    s.flush()
    return ImportResult(created, updated, parties.bind_unbound(s))


def row_kind(row: MerchantRow | VehicleRow) -> Kind:
    return "merchant" if isinstance(row, MerchantRow) else "vehicle"


def stored_party(s: Session, row: MerchantRow | VehicleRow) -> Party | None:
    """The party already stored under the row's key (a merchant's licence number, a vehicle's plate), if any."""
    if isinstance(row, MerchantRow):
        match = (Party.kind == "merchant", Party.licence_no == row.licence_no)
    else:
        match = (Party.kind == "vehicle", Party.plate == row.plate)
    return s.scalar(select(Party).where(*match))


def save_party(s: Session, party: Party, row: MerchantRow | VehicleRow, actor: str, at: datetime) -> None:
    """Write `row` into `party` (new or stored) and its zones, recording each changed field [before, after] with
    `actor` and `at`; nothing is recorded when the row changes nothing."""
    before = _record(s, party) if party.id is not None else {}
    _fill(party, row)
    s.add(party)
    s.flush()
    if isinstance(row, MerchantRow):
        s.execute(delete(PartyZone).where(PartyZone.party_id == party.id))
        s.add_all(PartyZone(party_id=party.id, point_id=row.point_id, zone_id=z) for z in dict.fromkeys(row.zones))
        s.flush()
    after = _record(s, party)
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if changes:
        action = "updated" if before else "created"
        s.add(PartyChange(party_id=party.id, actor=actor, at=at, action=action, changes=changes))


def party_zones(s: Session, party_id: int) -> list[tuple[str, str]]:
    """The (point, zone) pairs a merchant is bound to, in a stable order."""
    query = select(PartyZone.point_id, PartyZone.zone_id).where(PartyZone.party_id == party_id)
    return [tuple(pair) for pair in s.execute(query.order_by(PartyZone.point_id, PartyZone.zone_id))]


def _record(s: Session, party: Party) -> dict[str, Any]:
    zones = party_zones(s, party.id)
    fields = {k: v for k, v in party_json(party).items() if k not in ("id", "kind")}
    return fields | {"zones": [f"{point}/{zone}" for point, zone in zones]} if party.kind == "merchant" else fields


def _fill(party: Party, row: MerchantRow | VehicleRow) -> None:
    party.contact, party.licence_no = row.contact, row.licence_no
    if isinstance(row, MerchantRow):
        party.name, party.shop = row.name, row.shop
    else:
        party.name, party.company, party.plate = row.company, row.company, row.plate
