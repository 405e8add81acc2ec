"""The customer service's reference replica for the security tests that create customers
(the same fixture tests/customer uses; applying the seed again is an idempotent upsert)."""

from tests.customer.conftest import customer_replica

__all__ = ["customer_replica"]
