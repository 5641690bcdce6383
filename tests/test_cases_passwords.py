"""PBKDF2 password hashing (pure unit tests)."""

from __future__ import annotations

import pytest

from cases.passwords import MIN_ITERATIONS, PasswordHashError, hash_password, verify_password


def test_hash_verifies_only_the_right_password():
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batter", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt_and_enough_iterations():
    a, b = hash_password("same password"), hash_password("same password")
    assert a != b
    scheme, iterations, salt_a, _ = a.split("$")
    assert scheme == "pbkdf2_sha256" and int(iterations) >= MIN_ITERATIONS
    assert salt_a != b.split("$")[2]


def test_too_few_iterations_are_refused():
    with pytest.raises(ValueError, match="at least"):
        hash_password("pw", iterations=MIN_ITERATIONS - 1)


@pytest.mark.parametrize(
    "stored", ["", "plain", "md5$1$a$b", "pbkdf2_sha256$many$AA==$AA==", "pbkdf2_sha256$1$!!$AA=="]
)
def test_malformed_hashes_raise(stored):
    with pytest.raises(PasswordHashError):
        verify_password("pw", stored)
