"""Organisation names that pass for another tenant's (issue 13, finding 8): a word mixing alphabets with look-alike
letters is refused at rename with a clear error, a name whose confusables skeleton equals another organisation's is
refused, real names in any one script pass, and the support console shows each organisation's id and Xero tenant
id beside its name."""

import pytest
from django.urls import reverse

from organisations.models import Organisation
from organisations.names import name_mixes_scripts, name_skeleton
from tests.factories import PASSWORD, make_connection, make_organisation, mfa_verify_client

pytestmark = pytest.mark.django_db


def rename(client, user, name: str):
    client.login(username=user.email, password=PASSWORD)
    return client.post(reverse("organisations:settings"), {"name": name})


def test_rename_is_refused_when_a_word_mixes_latin_with_a_cyrillic_look_alike(client, admin_a, org_a):
    response = rename(client, admin_a, "Acme C\u0430re")  # Cyrillic а
    assert response.status_code == 422
    text = response.content.decode()
    assert "mixes alphabets with letters that look alike" in text and "U+0430" in text
    org_a.refresh_from_db()
    assert org_a.name == "Org A"


def test_rename_is_refused_when_the_name_looks_the_same_as_another_organisation(client, admin_a, org_a):
    make_organisation(name="Acme Care")
    for lookalike in ("ACME CARE ", "Acme Carе", "\uff21cme Care", "Acrne Care"):  # case, Cyrillic е, full-width A, rn
        response = rename(client, admin_a, lookalike)
        assert response.status_code == 422, lookalike
        text = response.content.decode()
        assert any(m in text for m in ("looks the same as another organisation", "already uses", "mixes alphabets"))
    org_a.refresh_from_db()
    assert org_a.name == "Org A"


def test_a_whole_cyrillic_name_is_refused_when_it_spells_another_organisation_in_look_alikes(client, admin_a, org_a):
    make_organisation(name="Acme")
    response = rename(client, admin_a, "\u0410\u0421\u041c\u0415")  # АСМЕ, all Cyrillic capitals
    assert response.status_code == 422
    assert b"looks the same as another organisation" in response.content


@pytest.mark.parametrize(
    "name",
    [
        "Müller & Söhne GmbH",
        "Straße Bau",
        "Ελληνικά Τρόφιμα",
        "株式会社 Tokyo Trading",
        "İstanbul Kebap",
        "Σίγμα Co",
        "Zoë's Café",
    ],
)
def test_rename_accepts_real_names_when_each_word_is_in_one_script(client, admin_a, org_a, name):
    response = rename(client, admin_a, name)
    assert response.status_code == 302, response.content.decode()[:500]
    org_a.refresh_from_db()
    assert org_a.name == name and org_a.name_skeleton == name_skeleton(name)


def test_skeletons_are_equal_when_names_only_differ_by_look_alikes_or_case():
    assert name_skeleton("Acme Care") == name_skeleton("ACME C\u0430RE") == name_skeleton("Acme  Care")
    assert name_skeleton("Acme Care") != name_skeleton("Acme Core")
    assert name_mixes_scripts("Acme C\u0430re") == ["\u0430"]
    assert name_mixes_scripts("Acme Care") == []


def test_support_console_shows_id_and_tenant_beside_the_name_when_two_names_look_alike(client, support_user):
    genuine = make_organisation(name="Acme Care")
    make_connection(organisation=genuine, tenant_id="11111111-1111-4111-8111-111111111111")
    # Stored before this check existed: the console must still tell them apart.
    spoof = Organisation.objects.create(name="Acme C\u0430re")
    make_connection(organisation=spoof, tenant_id="22222222-2222-4222-8222-222222222222")
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    for url in (reverse("integrations:support_console"), reverse("webhooks:support_inbox")):
        page = client.get(url).content.decode()
        for organisation, tenant in ((genuine, "11111111-1111"), (spoof, "22222222-2222")):
            assert f"id {organisation.pk}" in page, url
            assert tenant in page, url
    detail = client.get(reverse("integrations:support_organisation", args=[spoof.pk])).content.decode()
    assert f"Organisation id {spoof.pk}" in detail and "22222222-2222-4222-8222-222222222222" in detail
