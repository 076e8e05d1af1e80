"""The plain result: summaries for each kind of outcome, and the stored form."""

from __future__ import annotations

from smoke import CheckResult, SmokeResult, Verdict
from smoke.result import NOT_RUN_UNREACHABLE, BlockedRequest

HEALTH = CheckResult("/up", True, kind="health", status=200, duration_ms=12)


def page(path: str, ok: bool = True, reason: str | None = None, **kw: object) -> CheckResult:
    return CheckResult(path, ok, reason=reason, **kw)  # type: ignore[arg-type]


def test_green() -> None:
    result = SmokeResult.from_checks((HEALTH, page("/"), page("/signin")), 900)
    assert (result.verdict, result.summary) == (Verdict.GREEN, "3/3 checks passed")
    assert result.failed == () and result.error is None


def test_red_names_each_failure_with_why() -> None:
    checks = (
        CheckResult("/up", False, kind="health", status=503, reason="status 503"),
        page("/"),
        page("/signin", False, "selector form input[type=password] not found"),
    )
    result = SmokeResult.from_checks(checks, 900)
    assert result.verdict is Verdict.RED
    assert result.summary == (
        "2 of 3 failed: /up (status 503), /signin (selector form input[type=password] not found)"
    )


def test_unreachable_reads_as_such() -> None:
    checks = (
        CheckResult("/up", False, kind="health", reason="connection refused"),
        *(page(p, False, NOT_RUN_UNREACHABLE) for p in ("/", "/signin", "/tasks", "/x", "/y")),
    )
    result = SmokeResult.from_checks(checks, 40)
    assert result.verdict is Verdict.RED
    assert result.summary == (
        "production unreachable: /up (connection refused); 5 page checks not run"
    )
    assert [c.not_run for c in checks] == [False, True, True, True, True, True]


def test_one_page_not_run_is_singular() -> None:
    checks = (
        CheckResult("/up", False, kind="health", reason="DNS lookup failed"),
        page("/", False, NOT_RUN_UNREACHABLE),
    )
    assert SmokeResult.from_checks(checks, 1).summary == (
        "production unreachable: /up (DNS lookup failed); 1 page check not run"
    )


def test_blocked_writes_are_counted() -> None:
    one = (BlockedRequest("POST", "https://app.example.com/api/beacon"),)
    result = SmokeResult.from_checks((HEALTH, page("/", blocked=one)), 10)
    assert result.summary == "2/2 checks passed; 1 write blocked"
    two = (*one, BlockedRequest("PUT", "https://app.example.com/api/x"))
    result = SmokeResult.from_checks((HEALTH, page("/", False, "status 500", blocked=two)), 10)
    assert result.summary == "1 of 2 failed: / (status 500); 2 writes blocked"
    assert result.blocked == two


def test_no_checks_is_an_error() -> None:
    result = SmokeResult.from_checks((), 0)
    assert result.verdict is Verdict.ERROR and result.error == "no checks are configured"


def test_failure() -> None:
    result = SmokeResult.failure("Chromium not found at /nope", 5)
    assert result.verdict is Verdict.ERROR
    assert result.summary == "the smoke runner could not run: Chromium not found at /nope"


def test_check_results_round_trip() -> None:
    check = page(
        "/writes",
        status=200,
        duration_ms=321,
        blocked=(BlockedRequest("POST", "http://127.0.0.1:1/api/echo"),),
    )
    data = check.to_dict()
    assert data["blocked"] == [{"method": "POST", "url": "http://127.0.0.1:1/api/echo"}]
    assert CheckResult.from_dict(data) == check
    assert CheckResult.from_dict({**data, "future_field": 1}) == check
