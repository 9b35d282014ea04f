"""Organisations with an admin and an accountant each (password `demo`), and their customers."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

from invoices.models import Customer, customer_name_key
from invoices.seeding.copy_writer import CopyWriter, first_free_id
from organisations.models import Membership, Organisation


@dataclass(frozen=True)
class SeededTenants:
    organisation_ids: list[int]
    customers: dict[int, list[int]]  # organisation id -> its customers' ids
    admins: dict[int, int]  # organisation id -> its admin's user id


def tenants_seed(cursor, *, organisations: int, customers_per_org: int, password: str) -> SeededTenants:
    """Write them with COPY on `cursor`; the caller resets the sequences."""
    user_model = get_user_model()
    org_id, user_id, mem_id = first_free_id(Organisation), first_free_id(user_model), first_free_id(Membership)
    cust_id = first_free_id(Customer)
    run = org_id  # keeps names unique when the command runs twice
    orgs, users, mems = CopyWriter(Organisation), CopyWriter(user_model), CopyWriter(Membership)
    custs = CopyWriter(Customer)
    org_ids, org_customers, org_admin = [], {}, {}
    for i in range(organisations):
        oid = org_id + i
        orgs.add(id=oid, name=f"Scale Org {run}-{i:05d}")
        org_ids.append(oid)
        for role in ("admin", "accountant"):
            email = f"scale-{role}-{run}-{i}@scale.test"
            users.add(
                id=user_id,
                username=email,
                email=email,
                password=password,
                is_active=True,
                is_staff=False,
                is_superuser=False,
                first_name="",
                last_name="",
                date_joined=timezone.now(),
            )
            mems.add(id=mem_id, user_id=user_id, organisation_id=oid, role=role)
            if role == "admin":
                org_admin[oid] = user_id
            user_id += 1
            mem_id += 1
        org_customers[oid] = list(range(cust_id, cust_id + customers_per_org))
        for c in range(customers_per_org):
            name = f"Customer {c:03d}"
            custs.add(
                id=cust_id,
                organisation_id=oid,
                name=name,
                name_key=customer_name_key(name),
                email=f"c{c}@example.test",
            )
            cust_id += 1
    for writer in (orgs, users, mems, custs):
        writer.flush(cursor)
    return SeededTenants(organisation_ids=org_ids, customers=org_customers, admins=org_admin)
