"""Xero's buttons follow its brand: Xero's wording, its logo mark (never a home-made cross that reads as "close"),
and a label readable on Xero blue: WCAG text contrast of at least 4.5:1, computed from the stylesheet's colours."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import make_connection

CSS = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()


def _rule(selector: str) -> dict[str, str]:
    match = re.search(r"(?m)^" + re.escape(selector) + r"\s*\{([^}]*)\}", CSS)
    assert match, f"{selector} is not in app.css"
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (d.partition(":") for d in match.group(1).split(";"))
        if value
    )


def _luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_computed_as_wcag_defines_it():
    assert round(contrast("#FFFFFF", "#000000"), 1) == 21.0
    assert round(contrast("#FFFFFF", "#13B5EA"), 1) == 2.4  # why the label is not white


@pytest.mark.parametrize("state", [".xero-button", ".xero-button:hover"])
def test_xero_button_label_contrast_is_at_least_4_5_when_shown(state):
    base = _rule(".xero-button")
    rule = {**base, **_rule(state)}
    if state == ".xero-button":
        assert rule["background"].upper() == "#13B5EA"  # Xero blue
    ratio = contrast(rule["color"], rule["background"])
    assert ratio >= 4.5, f"{state}: {rule['color']} on {rule['background']} is {ratio:.2f}:1"


def _buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit" class="xero-button[^"]*"[^>]*>.*?</button>', html, flags=re.S)


@pytest.mark.django_db
def test_sign_in_page_has_xeros_sign_in_and_sign_up_buttons_with_its_logo_mark(client):
    buttons = _buttons(client.get(reverse("login")).content.decode())
    assert [re.search(r"<span>(.*?)</span>", b).group(1) for b in buttons] == ["Sign in with Xero", "Sign up with Xero"]
    for button in buttons:
        _assert_xero_mark(button)


@pytest.mark.django_db
def test_manage_integrations_has_xeros_connect_button_with_its_logo_mark(login_as, admin_a):
    buttons = _buttons(login_as(admin_a).get(reverse("integrations:manage")).content.decode())
    assert len(buttons) == 1 and "<span>Connect to Xero</span>" in buttons[0]
    _assert_xero_mark(buttons[0])


@pytest.mark.django_db
def test_reconnect_button_keeps_the_logo_mark_when_the_connection_needs_a_reconnect(login_as, admin_a, org_a):
    make_connection(organisation=org_a, status="needs_reconnect")
    buttons = _buttons(login_as(admin_a).get(reverse("integrations:manage")).content.decode())
    assert len(buttons) == 1
    _assert_xero_mark(buttons[0])


def _assert_xero_mark(button: str) -> None:
    svg = re.search(r"<svg[^>]*>.*?</svg>", button, flags=re.S).group(0)
    assert 'class="xero-mark"' in svg and 'aria-hidden="true"' in svg
    assert "<circle" in svg and svg.count("<path") == 3  # the x, e, r strokes of "xero" (o is a circle)
    assert not re.search(r"[×✕✖⨯]", button)  # no glyph that reads as "close"
    assert "M13 13.5l14 13M27 13.5l-14 13" not in svg  # the old home-made cross
