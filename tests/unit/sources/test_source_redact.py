"""Credentials never leave the sources layer in URIs or messages."""

from __future__ import annotations

from retailhub.sources.redact import redact_url, scrub


def test_password_in_url_is_masked() -> None:
    assert (
        redact_url("postgresql://app:pa55@db.local:5432/erp")
        == "postgresql://app:***@db.local:5432/erp"
    )


def test_secret_query_parameters_are_masked() -> None:
    shown = redact_url("https://api.shop/v1/orders?page=2&api_key=abc123&Token=zz")
    assert "abc123" not in shown and "zz" not in shown
    assert "page=2" in shown


def test_parameters_named_like_credentials_are_masked() -> None:
    shown = redact_url("https://api.shop/o?client_secret=s1&x-api-key=s2&auth_token=s3&sort=id")
    assert not any(s in shown for s in ("s1", "s2", "s3"))
    assert "client_secret=***" in shown and "sort=id" in shown


def test_plain_url_unchanged() -> None:
    assert (
        redact_url("http://127.0.0.1:8080/orders?page=1") == "http://127.0.0.1:8080/orders?page=1"
    )


def test_scrub_replaces_every_occurrence() -> None:
    assert (
        scrub("Bearer tok-123 rejected (tok-123)", ["tok-123", None, ""])
        == "Bearer *** rejected (***)"
    )
