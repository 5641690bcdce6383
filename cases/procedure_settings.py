"""The `procedure:` and `sla:` sections of the settings file: the penalty procedure's periods, the working-day
calendar they and the bureau's target are counted in, and the target itself."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from cases.procedure import Procedure
from cases.sla import SlaClock
from cases.workdays import BUREAU_TZ, WorkCalendar
from feixian.domain import StrictModel


class SlaSettings(StrictModel):
    """The bureau's target, discovery to execution, and the working days it is counted in."""

    target_working_days: int = Field(
        default=3,
        ge=1,
        le=60,
        description="Working days from discovery to execution, the day of discovery not counted; the time a case "
        "waits on its party (correction, statement window, payment) is added, never taken from the party.",
    )
    at_risk_hours: float = Field(
        default=24.0, gt=0, le=720, description="A case still open this close to its target (or past it) is at risk."
    )
    timezone: str = Field(default=BUREAU_TZ, description="The bureau's clock: where a working day begins and ends.")
    holidays: list[date] = Field(default_factory=list, description="Public holidays: weekdays that are not worked.")
    extra_workdays: list[date] = Field(
        default_factory=list, description="Weekend days worked to bridge a holiday (调休): they count as working days."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        return tz

    def calendar(self) -> WorkCalendar:
        return WorkCalendar.of(self.timezone, self.holidays, self.extra_workdays)

    def clock(self) -> SlaClock:
        return SlaClock(self.calendar(), self.target_working_days, self.at_risk_hours)


class ProcedureSettings(StrictModel):
    """The penalty procedure's periods, in working days of the `sla:` calendar."""

    statement_days: int = Field(
        default=3,
        ge=1,
        le=30,
        description="The statement window a notice opens (陈述申辩期); no decision before it closes unless waived.",
    )
    recheck_days: int = Field(
        default=7, ge=1, le=90, description="The period a warning's order to correct gives before the recheck."
    )

    def procedure(self, sla: SlaSettings) -> Procedure:
        return Procedure(sla.calendar(), self.statement_days, self.recheck_days)
