"""Each organisation's time zone and locale: what "today" is for it, and how its people write dates and amounts.

Set from Xero's Organisation when it connects (integrations.connections.bind), or by an admin in Settings (which
then wins over Xero). Without either: UTC and ISO only (YYYY-MM-DD, a point before the decimals).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class Locale:
    code: str
    label: str
    date_formats: tuple[str, ...] = ()  # strptime formats accepted besides ISO, which is always accepted
    date_hint: str = "YYYY-MM-DD"
    decimal_comma: bool = False
    # "/" between day and month, in an order another locale reverses (03/04/2026: 3 April here, 4 March in the US):
    # such a date is read this locale's way and shown back in ISO to be confirmed.
    slash_day_month: bool = False

    @property
    def date_help(self) -> str:
        return "YYYY-MM-DD" if self.date_hint == "YYYY-MM-DD" else f"{self.date_hint} or YYYY-MM-DD"

    @property
    def number_example(self) -> str:
        return "1.234,50" if self.decimal_comma else "1234.50"


ISO = Locale(code="", label="ISO only: 2026-12-03, 1234.50")


def _day_first(code: str, country: str) -> Locale:
    return Locale(code, f"English ({country}): 03/12/2026, 1234.50", ("%d/%m/%Y",), "DD/MM/YYYY", slash_day_month=True)


LOCALES: dict[str, Locale] = {
    locale.code: locale
    for locale in [
        _day_first("en-AU", "Australia"),
        _day_first("en-NZ", "New Zealand"),
        _day_first("en-GB", "UK"),
        _day_first("en-IE", "Ireland"),
        _day_first("en-SG", "Singapore"),
        Locale("en-US", "English (US): 12/03/2026, 1234.50", ("%m/%d/%Y",), "MM/DD/YYYY", slash_day_month=True),
        Locale("en-CA", "English (Canada): 2026-12-03, 1234.50"),
        Locale("en-ZA", "English (South Africa): 2026/12/03, 1234.50", ("%Y/%m/%d",), "YYYY/MM/DD"),
        Locale("de-DE", "Deutsch (Deutschland): 03.12.2026, 1.234,50", ("%d.%m.%Y",), "DD.MM.YYYY", True),
        Locale("fr-FR", "Français (France): 03/12/2026, 1 234,50", ("%d/%m/%Y",), "DD/MM/YYYY", True, True),
        Locale("nl-NL", "Nederlands (Nederland): 03-12-2026, 1.234,50", ("%d-%m-%Y",), "DD-MM-YYYY", True),
    ]
}


def locale_get(code: str) -> Locale:
    return LOCALES.get(code or "", ISO)


def locale_of(organisation) -> Locale:
    return locale_get(getattr(organisation, "locale", "") if organisation is not None else "")


def zone_get(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo(settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def zone_of(organisation) -> dt.tzinfo:
    return zone_get(getattr(organisation, "time_zone", "") if organisation is not None else "")


def today_for(organisation, *, now: dt.datetime | None = None) -> dt.date:
    """Today's date where the organisation is: at 08:00 in Sydney it is already tomorrow in UTC terms."""
    return timezone.localdate(now or timezone.now(), timezone=zone_of(organisation))


def zone_choices() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/")))
    return [("UTC", "UTC"), *((z, z.replace("_", " ")) for z in zones)]


# ---------------------------------------------------------------- reading what people type


@dataclass(frozen=True)
class DateReading:
    value: dt.date
    iso: bool  # typed as YYYY-MM-DD
    ambiguous: bool  # 03/04/2026: day and month could be swapped; shown back in ISO to be confirmed


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_read(text: str, locale: Locale) -> DateReading | None:
    """ISO always; else the locale's formats. None when it is no date in either."""
    text = (text or "").strip()
    if _ISO_DATE.match(text):
        try:
            return DateReading(dt.date.fromisoformat(text), iso=True, ambiguous=False)
        except ValueError:
            return None
    for fmt in locale.date_formats:
        try:
            value = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        ambiguous = locale.slash_day_month and value.day <= 12 and value.month <= 12 and value.day != value.month
        return DateReading(value, iso=False, ambiguous=ambiguous)
    return None


class NumberUnreadable(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_SPACES = " \u00a0\u202f"  # French groups thousands with a (narrow) no-break space
_COMMA_DECIMAL = re.compile(r"^[+-]?(?:\d{1,3}(?:[.' \u00a0\u202f]\d{3})+|\d+),\d+$")
_GROUPED_ONLY = re.compile(r"^[+-]?\d{1,3}(?:(?:\.\d{3}){2,}|(?:[ \u00a0\u202f]\d{3})+)$")
_ONE_POINT_GROUP = re.compile(r"^[+-]?\d{1,3}\.\d{3}$")


def decimal_comma_read(text: str) -> Decimal:
    """A number as a decimal-comma locale writes it: "12,50" = 12.50, "1.234,50" = 1234.50, "1 234,50" = 1234.50.

    A point alone is read as a decimal point ("12.5", what a browser's number field sends), except "1.234", which
    a person here means as 1234 and a machine as 1.234: refused, with both ways to write it.
    """
    text = (text or "").strip()
    if _COMMA_DECIMAL.match(text):
        whole, decimals = text.rsplit(",", 1)
        text = re.sub(r"[.'" + _SPACES + "]", "", whole) + "." + decimals
    elif _GROUPED_ONLY.match(text):
        text = re.sub(r"[." + _SPACES + "]", "", text)
    elif _ONE_POINT_GROUP.match(text):
        grouped = text.replace(".", "")
        raise NumberUnreadable(
            f"“{text}” could be {grouped} or {text.replace('.', ',')}: write {grouped} (or {text},00) "
            f"for {grouped}, or {text.replace('.', ',')} for the decimal."
        )
    elif "," in text:
        raise NumberUnreadable(f"“{text[:40]}” is not a number (e.g. 1.234,50 or 12,50).")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise NumberUnreadable(f"“{text[:40]}” is not a number (e.g. 1.234,50 or 12,50).") from None
    if not value.is_finite():
        raise NumberUnreadable(f"“{text[:40]}” is not a number (e.g. 1.234,50 or 12,50).")
    return value


def decimal_comma_show(text: str) -> str:
    """A plain number ("1234.5") as a decimal-comma locale writes it in a field ("1234,5"), so it reads back."""
    return text.replace(".", ",") if isinstance(text, str) else text
