"""Input rules every service applies the same way."""

from pydantic import AfterValidator


def reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refuse it as bad input instead of failing later.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


#: Add to any Annotated[str, ...] that reaches the database.
NoNul = AfterValidator(reject_nul)
