"""Forms that read dates and amounts the way the organisation's people write them (organisations.locale).

ISO dates (YYYY-MM-DD) are always accepted, and the locale's own format too (03/12/2026 in en-AU, 12/03/2026 in
en-US, 03.12.2026 in de-DE). A date whose day and month could be swapped (03/04/2026) is read the locale's way and
shown back in ISO with a question, so it is confirmed before anything is saved. Decimal-comma locales (de-DE, fr-FR,
nl-NL) read "12,50" as 12.50 and "1.234,50" as 1234.50; the others keep refusing a decimal comma.
"""

from __future__ import annotations

import functools

from django import forms

from organisations.locale import ISO, Locale, NumberUnreadable, date_read, decimal_comma_read, decimal_comma_show


def _comma_to_python(field: forms.DecimalField, value):
    if value in field.empty_values:
        return None
    try:
        return decimal_comma_read(str(value))
    except NumberUnreadable as exc:
        raise forms.ValidationError(exc.message, code="invalid") from None


class LocaleFormMixin:
    """Put before `forms.Form`; the form takes `locale=` (an organisations.locale.Locale, ISO when None)."""

    def __init__(self, *args, locale: Locale | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.locale = locale or ISO
        for name, field in self.fields.items():
            if isinstance(field, forms.DateField):
                field.input_formats = ["%Y-%m-%d", *self.locale.date_formats]
                field.error_messages["invalid"] = f"Use the form {self.locale.date_help}."
                if field.widget.input_type == "text" and self.locale.date_formats:
                    field.widget.attrs.pop("pattern", None)
                    field.widget.attrs["placeholder"] = self.locale.date_hint
            elif isinstance(field, forms.DecimalField) and self.locale.decimal_comma:
                field.to_python = functools.partial(_comma_to_python, field)
                # A number input takes the browser's separator, not the organisation's: text, with a decimal keypad.
                field.widget.input_type = "text"
                field.widget.attrs.pop("step", None)
                if not self.is_bound and isinstance(self.initial.get(name), str):
                    self.initial[name] = decimal_comma_show(self.initial[name])

    def clean(self) -> dict:
        data = super().clean()
        for name, field in self.fields.items():
            if not isinstance(field, forms.DateField) or data.get(name) is None:
                continue
            reading = date_read(self.data.get(self.add_prefix(name), ""), self.locale)
            if reading is not None and reading.ambiguous:
                iso = reading.value.isoformat()
                if self.data is not getattr(self, "_shown_back", None):
                    self.data = self._shown_back = self.data.copy()
                self.data[self.add_prefix(name)] = iso
                self.add_error(
                    name,
                    f"Read as {iso} ({reading.value.day} {reading.value:%B %Y}): check it and save again.",
                )
        return data
