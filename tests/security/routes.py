"""Every URL pattern the project serves, found by walking the resolver (namespaced includes too)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

_PART = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


@dataclass(frozen=True)
class Route:
    route: str  # the full pattern, e.g. "batches/<int:pk>/"
    name: str | None  # namespaced, e.g. "invoices:batch_detail"; None for unnamed patterns
    callback: Any
    kwargs: tuple[str, ...]
    regex: bool

    @property
    def module(self) -> str:
        return getattr(self.callback, "__module__", "")

    @property
    def label(self) -> str:
        return self.name or self.route

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    def url(self, **values: Any) -> str:
        if self.name and not self.regex:
            return reverse(self.name, kwargs=values or None)
        if self.name:  # a regex pattern with a name (admin:app_list)
            return reverse(self.name, kwargs=values)
        if self.regex:  # an unnamed regex pattern (the admin's catch-all): fill its groups in place
            filled = _GROUP.sub(lambda m: str(values[m.group(1)]), self.route)
            return "/" + filled.replace("^", "").replace("$", "")
        return "/" + _PART.sub(lambda m: str(values[m.group("name")]), self.route)


def _kwargs(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return [m.group("name") for m in _PART.finditer(str(pattern))]
    if isinstance(pattern, RegexPattern):
        return list(pattern.regex.groupindex)
    return []


def _walk(patterns, prefix: str, namespace: str | None, kwargs: list[str], regex: bool):
    for pattern in patterns:
        here_kwargs = kwargs + _kwargs(pattern.pattern)
        here_regex = regex or isinstance(pattern.pattern, RegexPattern)
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns, here_kwargs, here_regex)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield Route(
                route=prefix + str(pattern.pattern),
                name=name,
                callback=pattern.callback,
                kwargs=tuple(here_kwargs),
                regex=here_regex,
            )


def all_routes() -> list[Route]:
    """Every pattern once, in resolution order (a later pattern with the same route is shadowed: skipped)."""
    seen: set[str] = set()
    routes = []
    for route in _walk(get_resolver().url_patterns, "", None, [], False):
        if route.route in seen:
            continue
        seen.add(route.route)
        routes.append(route)
    return routes


def product_routes() -> list[Route]:
    """Everything but Django's admin site."""
    return [r for r in all_routes() if not r.is_admin]
