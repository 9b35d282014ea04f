"""One canonical form for customer names (issue 12, item 6): NFKC then casefold, computed in Python, stored in
`Customer.name_key` with a unique index per organisation, and used both to look customers up in SQL and to match
them in Python. The suite runs on PostgreSQL, whose lower() disagrees with Python's on İ and final Σ."""

import unicodedata

import pytest
from django.db import IntegrityError, transaction

from invoices.models import Customer, Invoice, customer_name_key
from invoices.services.batches.create import batch_create
from tests.factories import make_customer, make_invoice_input

DECOMPOSED_EMILE = unicodedata.normalize("NFD", "Émile Care")


@pytest.mark.parametrize(
    "one, other",
    [
        ("İzmir Foods", "i̇zmir foods"),  # dotted capital I: casefold gives i + combining dot above
        ("ΑΛΦΑ ΟΔΟΣ", "αλφα οδος"),  # final sigma: Σ, σ and ς are one letter
        ("Straße GmbH", "STRASSE GMBH"),  # ß casefolds to ss
        (DECOMPOSED_EMILE, "ÉMILE CARE"),  # E + combining acute is É
        ("Ｗｉｄｅ Ｃｏ", "wide co"),  # NFKC folds full-width letters
        ("  Harbour   View ", "harbour view"),
    ],
)
def test_names_share_one_key_when_they_differ_only_in_case_or_form(one, other):
    assert customer_name_key(one) == customer_name_key(other)


def test_names_keep_different_keys_when_they_are_different_names():
    assert customer_name_key("Émile Care") != customer_name_key("Emile Care")
    assert customer_name_key("İzmir Foods") != customer_name_key("Izmir Foods")


def _batch(org, admin, number, customer):
    return batch_create(
        organisation=org,
        user=admin,
        name=f"Batch {number}",
        invoices=[make_invoice_input(number, customer)],
        source="form",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "first, later",
    [
        ("İzmir Foods", "İzmir Foods"),
        ("ΑΛΦΑ ΟΔΟΣ", "ΑΛΦΑ ΟΔΟΣ"),
        ("ΑΛΦΑ ΟΔΟΣ", "αλφα οδος"),
        ("Émile Care", "émile care"),
        ("Émile Care", DECOMPOSED_EMILE),
        ("Straße GmbH", "STRASSE GMBH"),
    ],
)
def test_later_batches_reuse_the_customer_when_its_name_is_written_in_any_case_or_form(org_a, admin_a, first, later):
    _batch(org_a, admin_a, "INV-1", first)
    _batch(org_a, admin_a, "INV-2", later)
    _batch(org_a, admin_a, "INV-3", first)
    customer = Customer.objects.get(organisation=org_a)
    assert customer.name == first
    assert set(Invoice.objects.values_list("customer_id", flat=True)) == {customer.pk}


@pytest.mark.django_db
def test_one_batch_makes_one_customer_when_it_names_it_two_ways(org_a, admin_a):
    batch_create(
        organisation=org_a,
        user=admin_a,
        name="B",
        invoices=[make_invoice_input("INV-1", "Straße GmbH"), make_invoice_input("INV-2", "STRASSE GMBH")],
        source="form",
    )
    assert Customer.objects.filter(organisation=org_a).count() == 1


@pytest.mark.django_db
def test_database_refuses_a_second_customer_when_names_share_a_key(org_a):
    make_customer(organisation=org_a, name="ΑΛΦΑ ΟΔΟΣ")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_customer(organisation=org_a, name="αλφα οδοσ")


@pytest.mark.django_db
def test_same_name_is_allowed_when_organisations_differ(org_a, org_b):
    make_customer(organisation=org_a, name="İzmir Foods")
    make_customer(organisation=org_b, name="İzmir Foods")
    assert Customer.objects.filter(name_key=customer_name_key("İzmir Foods")).count() == 2


@pytest.mark.django_db
def test_key_follows_the_name_when_the_name_is_saved_with_update_fields(org_a):
    customer = make_customer(organisation=org_a, name="Old Name")
    customer.name = "Straße GmbH"
    customer.save(update_fields=["name", "updated_at"])
    customer.refresh_from_db()
    assert customer.name_key == "strasse gmbh"


@pytest.mark.django_db
def test_data_migration_fills_every_key_when_customers_predate_the_column(org_a, org_b):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("invoices.migrations.0006_customer_name_key")
    greek = make_customer(organisation=org_a, name="ΑΛΦΑ ΟΔΟΣ")
    turkish = make_customer(organisation=org_b, name="İzmir Foods")
    Customer.objects.update(name_key="")  # as the column comes in: empty
    migration.fill_name_keys(apps, None)
    assert Customer.objects.get(pk=greek.pk).name_key == "αλφα οδοσ"
    assert Customer.objects.get(pk=turkish.pk).name_key == customer_name_key("İzmir Foods")
