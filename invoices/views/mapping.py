"""Settings → Xero mapping: the organisation's default revenue account and tax rate, chosen from its Xero chart."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from invoices.forms.mapping import MappingForm
from invoices.selectors import xero_link_info
from invoices.services.mapping import MappingRejected, MappingUnavailable, mapping_choices, mapping_for, mapping_save
from organisations.decorators import admin_required


@admin_required
def mapping_settings(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    refresh = request.method == "POST" and request.POST.get("action") == "refresh"
    choices, problem = None, ""
    try:
        choices = mapping_choices(organisation=organisation, refresh=refresh)
    except MappingUnavailable as exc:
        problem = str(exc)
    mapping = mapping_for(organisation)
    initial = {"revenue_account_code": mapping.revenue_account_code, "tax_type": mapping.tax_type} if mapping else {}
    saving = request.method == "POST" and not refresh
    form = MappingForm(
        request.POST if saving else None,
        initial=initial,
        accounts=choices.accounts if choices else (),
        tax_rates=choices.tax_rates if choices else (),
    )
    form.show_errors = saving
    if refresh and choices:
        messages.success(request, "Accounts and tax rates refreshed from Xero.")
        return redirect("invoices:mapping")
    if saving and choices and form.is_valid():
        try:
            mapping_save(
                organisation=organisation,
                user=request.user,
                revenue_account_code=form.cleaned_data["revenue_account_code"],
                tax_type=form.cleaned_data["tax_type"],
            )
        except MappingRejected as exc:
            form.add_error(None, str(exc))
        except MappingUnavailable as exc:
            problem = str(exc)
        else:
            messages.success(request, "Xero mapping saved. New and waiting invoices use it.")
            return redirect("invoices:mapping")
    current_missing = []
    if mapping and choices:
        if mapping.revenue_account_code not in {a.code for a in choices.accounts}:
            current_missing.append(
                f"The account {mapping.revenue_account_code} is no longer an active revenue account in Xero."
            )
        if mapping.tax_type not in {r.tax_type for r in choices.tax_rates}:
            current_missing.append(
                f"The tax rate {mapping.tax_name or mapping.tax_type} is no longer available for sales in Xero."
            )
    status = 422 if saving and (form.errors or problem) else 200
    return render(
        request,
        "invoices/mapping.html",
        {
            "form": form,
            "choices": choices,
            "problem": problem,
            "mapping": mapping,
            "current_missing": current_missing,
            "link": xero_link_info(organisation=organisation),
            "manage_url": reverse("integrations:manage"),
        },
        status=status,
    )
