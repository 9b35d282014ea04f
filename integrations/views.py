from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from organisations.decorators import member_required


@member_required
def manage_integrations(request: HttpRequest) -> HttpResponse:
    return render(request, "integrations/manage.html", {})
