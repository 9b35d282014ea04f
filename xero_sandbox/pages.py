"""Minimal HTML layout shared by the identity pages and the sandbox UI."""

from __future__ import annotations

from html import escape

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2939}
header{background:#13b5ea;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1000px;margin:24px auto;background:#fff;padding:24px;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.1)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e7ec}
.error{background:#fee4e2;color:#912018;padding:8px 12px;border-radius:4px}
.note{color:#667085;font-size:.9em}
.badge{padding:2px 8px;border-radius:10px;background:#e4e7ec;font-size:.85em}
button,.button{background:#13b5ea;color:#fff;border:0;padding:8px 16px;border-radius:4px;cursor:pointer;
text-decoration:none;display:inline-block}
button.secondary{background:#98a2b3}input,select{padding:6px;margin:2px 0}
form.inline{display:inline}fieldset{border:1px solid #e4e7ec;border-radius:6px;margin:12px 0}
label{display:block;margin:6px 0}
"""


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def layout(title: str, body: str, nav: bool = True) -> str:
    links = (
        '<a href="/">Xero sandbox</a><a href="/orgs">Organisations</a><a href="/_sandbox/state">State (JSON)</a>'
        if nav
        else "<span>Xero sandbox</span>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} | Xero sandbox</title><style>{STYLE}</style></head>"
        f"<body><header>{links}</header><main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def hidden(name: str, value) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
