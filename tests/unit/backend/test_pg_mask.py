"""docklock.backend.pg.mask: no password survives into a message."""

from __future__ import annotations

import pytest

from docklock.backend.pg import mask

CASES = [
    ("kv", "host=db password=hunter22 user=x", "host=db password=**** user=x"),
    ("kv spaces", "password = hunter22 dbname=d", "password = **** dbname=d"),
    ("kv quoted", "password='a b\\' c' dbname=d", "password=**** dbname=d"),
    ("uri", "postgresql://ops:hunter22@db.example/prod", "postgresql://ops:****@db.example/prod"),
    ("uri postgres", "postgres://ops:p%40ss@db/prod?sslmode=require",
     "postgres://ops:****@db/prod?sslmode=require"),
    ("uri query", "postgresql://db/prod?user=ops&password=hunter22",
     "postgresql://db/prod?user=ops&password=****"),
    ("uri no secret", "postgresql://ops@db/prod", "postgresql://ops@db/prod"),
    ("message", 'FATAL: password authentication failed for user "ops"',
     'FATAL: password authentication failed for user "ops"'),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_literal_password_is_masked_anywhere() -> None:
    assert mask('failed near "hunter22x"', "hunter22x") == 'failed near "****"'


def test_short_literal_is_left_alone() -> None:
    # Replacing every "ab" would garble the message; the patterns above still apply.
    assert mask("table ab password=ab", "ab") == "table ab password=****"
