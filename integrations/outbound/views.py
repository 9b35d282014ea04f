"""Support's view of a tenant's writes to Xero that need attention, and the retry (support staff only, audited)."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from integrations.outbound.models import OutboundOperation
from integrations.outbound.selectors import operation_for
from integrations.outbound.services import outbound_operation_retry
from organisations.decorators import support_required
from organisations.models import Organisation


@support_required
@require_POST
def support_operation_retry(request: HttpRequest, pk: int, operation_id: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    try:
        operation_for(organisation, operation_id)
    except OutboundOperation.DoesNotExist:
        raise Http404("No such operation for this organisation.") from None
    if outbound_operation_retry(
        organisation=organisation, operation_id=operation_id, actor=request.user, as_support=True
    ):
        messages.success(request, "Sent to Xero again; its result will show here and on the batch page.")
    else:
        messages.info(request, "That write no longer needed attention; nothing was sent.")
    return redirect("integrations:support_organisation", pk=organisation.pk)
