"""Customer-code generation, safe under concurrent approvals.

The counter row is incremented with UPDATE … RETURNING, which row-locks it until the
approval transaction ends: concurrent approvals queue on it, and a rolled-back approval
gives its number back. The `customer_codes` table's keys make a duplicate code, or a
second code for the same customer, impossible.
"""

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import CodeCounter, CustomerCode


def format_code(prefix: str, digits: int, number: int) -> str:
    return f"{prefix}{number:0{digits}d}"


async def code_for_customer(
    session: AsyncSession, *, customer_id: uuid.UUID, review_id: uuid.UUID, prefix: str, digits: int
) -> str:
    """The customer's code: the one it already has, or the next one of the sequence."""
    existing = await session.scalar(
        select(CustomerCode.code).where(CustomerCode.customer_id == customer_id)
    )
    if existing:
        return existing
    await session.execute(
        insert(CodeCounter).values(prefix=prefix, last_value=0).on_conflict_do_nothing()
    )
    number = await session.scalar(
        update(CodeCounter)
        .where(CodeCounter.prefix == prefix)
        .values(last_value=CodeCounter.last_value + 1)
        .returning(CodeCounter.last_value)
    )
    assert number is not None
    code = format_code(prefix, digits, number)
    session.add(CustomerCode(code=code, customer_id=customer_id, review_id=review_id))
    await session.flush()
    return code
