"""Who a user is to Coordinoter: the support role lives on Django's staff flag plus the Support group."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

SUPPORT_GROUP = "Support"


def user_is_support(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated or not user.is_staff:
        return False
    cached = getattr(user, "_is_support", None)
    if cached is None:
        cached = user.groups.filter(name=SUPPORT_GROUP).exists()
        user._is_support = cached
    return cached
