"""HTTP API source against a real server on 127.0.0.1: paging, token, retries, timeouts, errors."""

from __future__ import annotations

import time

import duckdb
import pytest

from retailhub.config.sources import parse_source_config
from retailhub.errors import ConfigError, SourceError, SourceUnavailable
from retailhub.sources import SourceState, build_source, land

pytestmark = pytest.mark.integration

TOKEN = "tok-7f3a-very-secret"
RECORDS = [
    {"id": i, "sku": f"SKU{i:04d}", "qty": i % 7, "price": round(i * 0.25, 2)}
    for i in range(1, 251)
]


def _source(url: str, **raw):
    raw.setdefault("layout", "none")
    raw.setdefault("backoff_s", 0.01)
    return build_source(parse_source_config("api", {"type": "http", "url": url, **raw}), None)  # type: ignore[arg-type]


def _land(src):
    con = duckdb.connect()
    landed = land(con, src, src.discover(SourceState()), "raw")
    return con, landed


def test_page_paging_with_bearer_token(api, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)

    def handler(req):
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return api.Reply(401, {"error": "unauthorized"})
        page, size = int(req.params["page"]), int(req.params["per_page"])
        chunk = RECORDS[(page - 1) * size : page * size]
        return api.Reply(body={"data": {"items": chunk}, "page": page})

    api.handler = handler
    src = _source(
        f"{api.url}/v1/orders",
        token_env="SHOP_TOKEN",
        records_path="data.items",
        params={"status": "paid"},
        paging={"type": "page", "page_param": "page", "size_param": "per_page", "page_size": 100},
    )
    con, (unit,) = _land(src)
    assert unit.rows == 250
    # the short third page is not taken as the end: an empty fourth page is
    assert [r.params["page"] for r in api.requests] == ["1", "2", "3", "4"]
    assert all(r.params["status"] == "paid" for r in api.requests)
    assert con.sql("SELECT count(DISTINCT id), min(_line), max(_line) FROM raw").fetchall() == [
        (250, 1, 250)
    ]
    assert con.sql("SELECT sku, qty, price FROM raw WHERE id = '7'").fetchall() == [
        ("SKU0007", "0", "1.75")
    ]
    assert TOKEN not in unit.uri
    assert len(unit.checksum or "") == 64  # of the records read (an unchanged answer: no-op)


def test_cursor_paging(api) -> None:
    def handler(req):
        start = int(req.params.get("after", "0"))
        chunk = RECORDS[start : start + 80]
        nxt = str(start + 80) if start + 80 < len(RECORDS) else None
        return api.Reply(body={"results": chunk, "meta": {"next_cursor": nxt}})

    api.handler = handler
    src = _source(
        f"{api.url}/orders",
        records_path="results",
        paging={
            "type": "cursor",
            "cursor_param": "after",
            "cursor_path": "meta.next_cursor",
            "size_param": None,
        },
    )
    _, (unit,) = _land(src)
    assert unit.rows == 250
    assert [r.params.get("after") for r in api.requests] == [None, "80", "160", "240"]


def test_offset_paging_and_max_pages(api) -> None:
    def handler(req):
        offset, limit = int(req.params["offset"]), int(req.params["limit"])
        return api.Reply(body=RECORDS[offset : offset + limit])

    api.handler = handler
    paging = {"type": "offset", "size_param": "limit", "page_size": 60}
    _, (unit,) = _land(_source(f"{api.url}/o", paging=paging))
    assert unit.rows == 250
    assert [r.params["offset"] for r in api.requests] == ["0", "60", "120", "180", "240", "250"]
    api.requests.clear()
    _, (capped,) = _land(_source(f"{api.url}/o", paging=paging, max_pages=2))
    assert capped.rows == 120 and len(api.requests) == 2


def test_429_then_500_then_200_retries_with_exponential_backoff(api) -> None:
    script = iter([api.Reply(429, {"error": "slow down"}), api.Reply(500, {"error": "boom"})])

    def handler(req):
        return next(script, api.Reply(body=[{"id": 1}]))

    api.handler = handler
    started = time.monotonic()
    _, (unit,) = _land(_source(f"{api.url}/o", backoff_s=0.2, max_retries=3))
    elapsed = time.monotonic() - started
    assert unit.rows == 1
    assert len(api.requests) == 3
    first_gap = api.requests[1].at - api.requests[0].at
    second_gap = api.requests[2].at - api.requests[1].at
    # attempt n waits backoff * 2**n scaled into [50%, 100%]: [0.1, 0.2] then [0.2, 0.4]
    assert 0.1 <= first_gap < 0.35, first_gap
    assert 0.2 <= second_gap < 0.55, second_gap
    assert elapsed < 2.0


def test_retry_after_header_is_honoured(api) -> None:
    script = iter([api.Reply(503, {"error": "maintenance"}, headers={"Retry-After": "1"})])
    api.handler = lambda req: next(script, api.Reply(body=[{"id": 1}]))
    _, (unit,) = _land(_source(f"{api.url}/o", backoff_s=0.01))
    assert unit.rows == 1
    assert api.requests[1].at - api.requests[0].at >= 0.95


def test_persistent_5xx_becomes_source_unavailable(api) -> None:
    api.handler = lambda req: api.Reply(503, {"error": "down"})
    with pytest.raises(SourceUnavailable) as err:
        _land(_source(f"{api.url}/v1/orders", max_retries=2))
    assert len(api.requests) == 3
    assert f"{api.url}/v1/orders" in str(err.value)
    assert "HTTP 503" in str(err.value) and "after 3 attempts" in str(err.value)
    # the source spent its own retries: the runner does not retry the task on top
    assert err.value.transient is False


def test_a_run_does_not_multiply_the_sources_retries(api, tmp_path) -> None:
    """The runner retries transient task failures (runner.retries: 2) and the HTTP source its
    requests (max_retries): both layers retrying made an unreachable API cost 3 x 3 attempts
    and ~36 s of waiting before the run said so."""
    from retailhub.pipeline.project import Project

    api.handler = lambda req: api.Reply(503, {"error": "down"})
    (tmp_path / "retailhub.yaml").write_text(
        f"project: t\nsources:\n  api:\n    type: http\n    url: {api.url}/o\n"
        "    layout: none\n    max_retries: 2\n    backoff_s: 0.01\n",
        encoding="utf-8",
    )
    report = Project.load(tmp_path).run()
    assert report.exit_code == 3
    assert "unavailable after 3 attempts: HTTP 503" in (report.error or "")
    assert len(api.requests) == 3


def test_timeout_is_retried_then_unavailable(api) -> None:
    api.handler = lambda req: api.Reply(body=[{"id": 1}], delay_s=1.0)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"timed out after 0\.2s"):
        _land(_source(f"{api.url}/slow", timeout_s=0.2, max_retries=1))
    assert len(api.requests) == 2
    assert time.monotonic() - started < 1.5


def test_401_is_a_clear_error_without_the_token(api, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    # worst case: the server echoes the credential back in its error body
    api.handler = lambda req: api.Reply(
        401, {"error": f"bad token {req.headers.get('authorization')}"}
    )
    with pytest.raises(SourceError) as err:
        _land(_source(f"{api.url}/v1/orders", token_env="SHOP_TOKEN"))
    assert not isinstance(err.value, SourceUnavailable)
    msg = str(err.value)
    assert "HTTP 401" in msg and f"{api.url}/v1/orders" in msg and "check the token" in msg
    assert TOKEN not in msg and TOKEN not in repr(err.value.context)
    assert len(api.requests) == 1  # a 4xx is not retried


def test_404_fails_at_once_naming_the_url(api) -> None:
    api.handler = lambda req: api.Reply(404, {"error": "no such endpoint"})
    with pytest.raises(SourceError, match=r"HTTP 404 .*no such endpoint"):
        _land(_source(f"{api.url}/v2/nope", max_retries=4))
    assert len(api.requests) == 1


def test_connection_refused_is_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnavailable, match=rf"127\.0\.0\.1:{port}.*connection failed"):
        _land(_source(f"http://127.0.0.1:{port}/x", max_retries=1))


def test_missing_token_variable_is_a_config_error(api, monkeypatch) -> None:
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_TOKEN"):
        _land(_source(f"{api.url}/x", token_env="NOT_SET_TOKEN"))
    assert api.requests == []


def test_wrong_records_path(api) -> None:
    api.handler = lambda req: api.Reply(body={"data": {"rows": []}})
    with pytest.raises(SourceError, match=r"no 'data.items' \(missing key 'items'\)"):
        _land(_source(f"{api.url}/x", records_path="data.items"))


def test_failure_on_a_later_page_aborts_the_landing(api) -> None:
    def handler(req):
        if req.params["page"] == "1":
            return api.Reply(body=RECORDS[:100])
        return api.Reply(403, {"error": "quota exceeded"})

    api.handler = handler
    con = duckdb.connect()
    src = _source(f"{api.url}/o", paging={"type": "page", "page_size": 100})
    with pytest.raises(SourceError, match="HTTP 403"):
        land(con, src, src.discover(SourceState()), "raw")
    assert con.sql("SELECT count(*) FROM raw").fetchall() == [(0,)]


def test_post_sends_params_as_json_body(api) -> None:
    import json

    api.handler = lambda req: api.Reply(body={"items": [json.loads(req.body)]})
    _, (unit,) = _land(
        _source(f"{api.url}/search", method="POST", params={"q": "mug"}, records_path="items")
    )
    assert unit.rows == 1 and api.requests[0].method == "POST"


def test_secret_query_parameter_is_masked_in_errors(api) -> None:
    api.handler = lambda req: api.Reply(404, {"error": "nope"})
    with pytest.raises(SourceError) as err:
        _land(_source(f"{api.url}/v1/orders?api_key=k-123-secret", params={"page": 1}))
    assert api.requests[0].params["api_key"] == "k-123-secret"  # still sent to the server
    assert "k-123-secret" not in str(err.value)
    assert "api_key=***" in str(err.value) and "page=1" in str(err.value)


def test_page_paging_reads_past_a_server_that_caps_the_page_size(api) -> None:
    """A server sending 40 records when 100 were asked for has more pages, not fewer rows."""

    def handler(req):
        page = int(req.params["page"])
        return api.Reply(body=RECORDS[(page - 1) * 40 : page * 40])

    api.handler = handler
    paging = {"type": "page", "page_size": 100}
    _, (unit,) = _land(_source(f"{api.url}/capped", paging=paging))
    assert unit.rows == 250
    assert len(api.requests) == 8  # 7 pages of data, then the empty one
    api.requests.clear()
    paging["stop_on_short_page"] = True
    _, (short,) = _land(_source(f"{api.url}/capped", paging=paging))
    assert short.rows == 40 and len(api.requests) == 1


def test_an_api_ignoring_the_page_parameter_is_an_error_not_an_endless_loop(api) -> None:
    api.handler = lambda req: api.Reply(body=RECORDS[:100])
    with pytest.raises(SourceError, match=r"repeats the page before it: the API ignores 'page'"):
        _land(_source(f"{api.url}/same", paging={"type": "page", "page_size": 100}))
    assert len(api.requests) == 2


def test_cursor_paging_goes_on_past_an_empty_page_with_a_next_cursor(api) -> None:
    def handler(req):
        start = int(req.params.get("after", "0"))
        chunk = [] if start == 100 else RECORDS[start : start + 100]
        nxt = str(start + 100) if start + 100 < len(RECORDS) else None
        return api.Reply(body={"results": chunk, "next": nxt})

    api.handler = handler
    paging = {"type": "cursor", "cursor_param": "after", "cursor_path": "next", "size_param": None}
    _, (unit,) = _land(_source(f"{api.url}/gap", records_path="results", paging=paging))
    assert unit.rows == 150  # records 101-200 are the empty page's: the server sent none
    assert [r.params.get("after") for r in api.requests] == [None, "100", "200"]


def test_numbers_keep_every_digit(api) -> None:
    api.handler = lambda req: api.Reply(
        body=b'[{"id": 1, "amount": 12345678901234567.89, "rate": 1e-7}]'
    )
    con, _ = _land(_source(f"{api.url}/n"))
    assert con.sql("SELECT amount, rate FROM raw").fetchall() == [("12345678901234567.89", "1E-7")]


def test_query_secrets_stay_out_of_every_log_line(api, caplog) -> None:
    """httpx logs each request's full URL at INFO: with -v a client_secret reached the log."""
    caplog.set_level("DEBUG")
    api.handler = lambda req: api.Reply(body=[{"id": 1}])
    _land(_source(f"{api.url}/o", params={"client_secret": "cs-Very-Secret-9"}))
    assert api.requests[0].params["client_secret"] == "cs-Very-Secret-9"  # still sent
    assert "cs-Very-Secret-9" not in caplog.text


def test_token_in_an_api_key_header(api, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_KEY", TOKEN)
    api.handler = lambda req: (
        api.Reply(body=[{"id": 1}])
        if req.headers.get("x-api-key") == TOKEN and "authorization" not in req.headers
        else api.Reply(401, {"error": "unauthorized"})
    )
    _, (unit,) = _land(_source(f"{api.url}/o", token_env="SHOP_KEY", token_header="X-API-Key"))
    assert unit.rows == 1


def test_token_with_another_authorization_scheme(api, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_KEY", TOKEN)
    api.handler = lambda req: (
        api.Reply(body=[{"id": 1}])
        if req.headers.get("authorization") == f"Token {TOKEN}"
        else api.Reply(401, {"error": "unauthorized"})
    )
    _, (unit,) = _land(_source(f"{api.url}/o", token_env="SHOP_KEY", token_prefix="Token"))
    assert unit.rows == 1


def test_token_in_a_query_parameter_is_masked_even_url_encoded(api, monkeypatch, caplog) -> None:
    """A parameter named ``k`` does not look secret, and a token with ``+/=`` appears
    percent-encoded in the URL: both are still masked."""
    token = "ab+cd/ef=="
    monkeypatch.setenv("SHOP_KEY", token)
    caplog.set_level("DEBUG")
    api.handler = lambda req: api.Reply(503, {"error": "busy"})
    src = _source(f"{api.url}/o", token_env="SHOP_KEY", token_param="k", max_retries=1)
    with pytest.raises(SourceUnavailable) as err:
        _land(src)
    assert api.requests[0].params["k"] == token  # sent, decoded by the server
    assert "k=***" in str(err.value)
    for text in (str(err.value), caplog.text):
        assert token not in text and "ab%2Bcd" not in text and "ab+cd" not in text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"token_header": "X-API-Key"}, "need token_env"),
        ({"token_prefix": "Token"}, "need token_env"),
        ({"token_env": "T", "token_header": "X-Key", "token_param": "k"}, "not both"),
        ({"headers": {"X-API-Key": "abc"}}, "token_header: X-API-Key"),
    ],
)
def test_token_placement_config_errors(raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _source("http://127.0.0.1:9/o", **raw)


@pytest.mark.parametrize("mode", ["snapshot", "append"])
def test_each_run_replaces_the_previous_snapshot_or_appends(api, tmp_path, mode) -> None:
    """An API read whole every run: its records replace the previous extraction's (no row
    twice, a record gone from the API gone from the history) unless the source appends."""
    from retailhub.pipeline.project import Project

    served = [{"id": 1, "qty": 1}, {"id": 2, "qty": 2}, {"id": 3, "qty": 3}]
    api.handler = lambda req: api.Reply(body=list(served))

    def run_and_read(params: str = "") -> list[tuple[int, int]]:
        (tmp_path / "retailhub.yaml").write_text(
            f"project: t\nsources:\n  api:\n    type: http\n    url: {api.url}/orders\n"
            f"    layout: none\n    dataset: orders\n    mode: {mode}\n{params}",
            encoding="utf-8",
        )
        project = Project.load(tmp_path)
        result = project.run()
        assert result.ok, result.error
        with project.open_warehouse(read_only=True) as wh:
            rows = wh.query("select id, qty from raw.orders order by id, qty").rows
        return [(int(i), int(q)) for i, q in rows]

    assert run_and_read() == [(1, 1), (2, 2), (3, 3)]
    if mode == "snapshot":
        # the same answer again: nothing ingested, the warehouse is up to date
        assert run_and_read() == [(1, 1), (2, 2), (3, 3)]
        project = Project.load(tmp_path)
        with project.open_warehouse(read_only=True) as wh:
            assert wh.query("select count(*) from meta.ingested_files").rows[0][0] == 1
    served[1] = {"id": 2, "qty": 20}
    del served[2]
    if mode == "snapshot":
        assert run_and_read() == [(1, 1), (2, 20)]
        # another URL (a parameter added) is the same API's answer: it replaces it too
        assert run_and_read("    params: {status: all}\n") == [(1, 1), (2, 20)]
        # an API answering [] is more likely broken than empty: refused, history kept
        served.clear()
        with pytest.raises(AssertionError, match="answered with no record, where its earlier"):
            run_and_read()
        with Project.load(tmp_path).open_warehouse(read_only=True) as wh:
            assert wh.query("select count(*) from raw.orders").rows[0][0] == 2
        assert run_and_read("    allow_empty_snapshot: true\n") == []
    else:
        assert run_and_read() == [(1, 1), (1, 1), (2, 2), (2, 20), (3, 3)]


def test_incremental_api_reads_what_changed_since_the_last_run(api, tmp_path) -> None:
    """The stored value goes back in the API's own format; a record at that value that
    appeared after the run is read, the ones read before are not read twice."""
    from retailhub.pipeline.project import Project

    served = [
        {"id": "1", "updated_at": "2024-01-01T10:00:00Z"},
        {"id": "2", "updated_at": "2024-01-02T09:00:00Z"},
        {"id": "3", "updated_at": "2024-01-01T12:00:00+01:00"},
    ]

    def handler(req):
        since = req.params.get("since")
        # an API comparing instants, inclusively, as many do
        return api.Reply(body=[r for r in served if since is None or _instant(r) >= _iso(since)])

    api.handler = handler
    (tmp_path / "retailhub.yaml").write_text(
        f"project: t\nsources:\n  api:\n    type: http\n    url: {api.url}/orders\n"
        "    layout: none\n    dataset: orders\n"
        "    incremental: {param: since, field: updated_at}\n",
        encoding="utf-8",
    )

    def run() -> list[str]:
        project = Project.load(tmp_path)
        result = project.run()
        assert result.ok, result.error
        with project.open_warehouse(read_only=True) as wh:
            return [str(i) for (i,) in wh.query("select id from raw.orders order by id").rows]

    assert run() == ["1", "2", "3"] and "since" not in api.requests[0].params
    served.append({"id": "4", "updated_at": "2024-01-02T09:00:00Z"})  # late, at the watermark
    served.append({"id": "5", "updated_at": "2024-01-03T00:00:00Z"})
    assert run() == ["1", "2", "3", "4", "5"]
    assert api.requests[-1].params["since"] == "2024-01-02T09:00:00Z"  # the API's own text
    assert run() == ["1", "2", "3", "4", "5"]  # nothing new: nothing twice
    assert api.requests[-1].params["since"] == "2024-01-03T00:00:00Z"


def _iso(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def _instant(record):
    return _iso(record["updated_at"])


def test_incremental_numbers_compare_as_numbers_and_config_errors(api) -> None:
    api.handler = lambda req: api.Reply(body=[{"seq": "9"}, {"seq": "10"}, {"seq": "2"}])
    src = _source(f"{api.url}/e", incremental={"param": "after", "field": "seq"})
    _land(src)
    assert src.new_watermark() == "10"  # not '9', the largest text
    with pytest.raises(ConfigError, match="implies mode: append"):
        _source(f"{api.url}/e", mode="snapshot", incremental={"param": "a", "field": "seq"})
    missing = _source(f"{api.url}/e", incremental={"param": "after", "field": "updated"})
    with pytest.raises(SourceError, match=r"incremental\.field 'updated' is not in the records"):
        _land(missing)


def test_a_token_with_a_line_break_is_trimmed_and_one_with_a_space_refused(
    api, monkeypatch
) -> None:
    """A token from a mounted secret file ends with a line break: httpx refused the header
    and quoted it, token and all, into the error, the ledger and `runs show`."""
    api.handler = lambda req: (
        api.Reply(body=[{"id": 1}])
        if req.headers.get("x-key") == TOKEN
        else api.Reply(401, {"error": "unauthorized"})
    )
    monkeypatch.setenv("SHOP_KEY", TOKEN + "\n")
    _, (unit,) = _land(_source(f"{api.url}/o", token_env="SHOP_KEY", token_header="X-Key"))
    assert unit.rows == 1
    monkeypatch.setenv("SHOP_KEY", "tok en-secret")
    with pytest.raises(ConfigError, match=r"SHOP_KEY .* holds a space") as err:
        _land(_source(f"{api.url}/o", token_env="SHOP_KEY", token_header="X-Key"))
    assert "en-secret" not in str(err.value)


def test_a_source_whose_rows_are_in_another_dataset_is_stopped(api, tmp_path) -> None:
    """A pass-through source landed in a dataset called 'none' before 2026-12-08; feeding
    its own name now would split its history silently."""
    from retailhub.pipeline.project import Project

    api.handler = lambda req: api.Reply(body=[{"id": 1}])

    def run(dataset: str):
        (tmp_path / "retailhub.yaml").write_text(
            f"project: t\nsources:\n  api:\n    type: http\n    url: {api.url}/o\n"
            f"    layout: none\n{dataset}",
            encoding="utf-8",
        )
        return Project.load(tmp_path).run()

    assert run("    dataset: none\n").ok  # as the old naming left it
    moved = run("")
    assert moved.exit_code == 2
    assert "source 'api' now feeds dataset 'api', but its earlier rows are in raw.none" in (
        moved.error or ""
    )
    assert run("    dataset: none\n").ok
