"""The role matrix: every named URL, for anonymous, accountant, admin, another organisation's admin, support staff,
and support staff who are also members. The matrix itself is data, in tests/security/matrix.py.

One test per person: each request runs in a savepoint that is rolled back, so hundreds of requests share one
world and no action (a disconnect, a retry, a sign-out) changes what the next row sees.
"""

import pytest

from tests.security.conftest import client_for
from tests.security.matrix import covered_names, named_routes, outcome, run
from tests.security.world import ROLES

pytestmark = pytest.mark.django_db


def test_every_named_url_has_a_row_in_the_matrix_when_the_urlconf_changes():
    missing = sorted(route.name for route in named_routes() if route.name not in covered_names())
    assert not missing, f"named URLs without a row in tests/security/matrix.py: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_person_gets_what_the_matrix_says_when_they_open_every_url(world, role):
    client = client_for(world, role)
    wrong = [
        f"{row.method} {url} ({row.name}): expected {row.expect[role]}, got {outcome(response)}"
        + (f" -> {response['Location']}" if response.has_header("Location") else "")
        for row, url, response in run(world, client, role)
        if outcome(response) != row.expect[role]
    ]
    assert not wrong, f"{len(wrong)} answers differ from the matrix for {role}:\n" + "\n".join(wrong)
