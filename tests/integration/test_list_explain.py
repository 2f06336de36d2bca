"""aetl list and aetl explain: the kinds and their declared fields, from the binary."""
from conftest import run_aetl


def out(res):
    return res.stdout.decode()


def test_list_groups_the_kinds_with_their_summaries():
    res = run_aetl(["list"])
    assert res.code == 0 and res.stderr == ""
    text = out(res)
    assert text.index("sources:\n") < text.index("stages:\n") < text.index("sinks:\n")
    assert "  lines       lines of files, globs, stdin or an HTTP body; json, text or csv\n" in text
    assert "  fetch       one HTTP request per record, the response in a field\n" in text
    assert "  sqlite      batched transactions into an SQLite table\n" in text


def test_explain_prints_every_field_with_type_default_description_and_example():
    res = run_aetl(["explain", "sqlite"])
    assert res.code == 0 and res.stderr == ""
    text = out(res)
    assert text.startswith("sink sqlite: batched transactions into an SQLite table\n")
    assert ("\n  path (string, required)\n      the database file (created, WAL)\n"
            "      example: path: out/errors.db\n") in text
    # the common sink keys, with this sink's defaults
    assert ("\n  batch.size (whole number, default 5000)\n      records per write at most\n"
            "      example: batch: {size: 5000}\n") in text
    assert "\n  retry.backoff (duration range, default 100ms..5s)\n" in text


def test_a_name_that_is_a_source_and_a_sink_prints_both_unless_the_part_is_named():
    both = out(run_aetl(["explain", "postgres"]))
    assert both.startswith("source postgres: ") and "\nsink postgres: " in both
    sink = run_aetl(["explain", "sink", "postgres"])
    assert sink.code == 0
    assert out(sink).startswith("sink postgres: ") and "source postgres" not in out(sink)
    assert "\n  retry.max (whole number, default 10)\n" in out(sink)
    source = out(run_aetl(["explain", "source", "postgres"]))
    assert source.startswith("source postgres: ") and "sink postgres" not in source


def test_explain_pipeline_prints_the_top_level_keys():
    text = out(run_aetl(["explain", "pipeline"]))
    assert text.startswith("pipeline: the top-level keys of a pipeline file\n")
    assert "\n  settings.channel_capacity (whole number, default 2)\n" in text


def test_short_forms_and_free_keys_are_explained():
    text = out(run_aetl(["explain", "filter"]))
    assert "\n  (value) (expression, required)\n" in text
    assert "      example: filter: 'status >= 400 and user.country in [\"DE\", \"FR\"]'\n" in text
    assert "\n  NAME (expression)\n" in out(run_aetl(["explain", "select"]))


def test_an_unknown_kind_is_one_line_with_did_you_mean_and_exit_2():
    for args, message in [
        (["explain", "sqlte"], "aetl: explain: unknown kind 'sqlte' (did you mean 'sqlite'?)\n"),
        (["explain", "sink", "filter"], "aetl: explain: unknown sink kind 'filter' (`aetl list` shows them all)\n"),
        (["explain", "sinc", "postgres"], "aetl: explain: 'sinc' is not source, stage or sink (did you mean 'sink'?)\n"),
        (["explain"], "aetl: explain: which kind? (`aetl list` shows them all)\n"),
    ]:
        res = run_aetl(args)
        assert res.code == 2, args
        assert res.stdout == b""
        assert res.stderr == message


def test_a_part_alone_explains_every_kind_of_it():
    # A regression: completion offered `aetl explain sink`, which then failed as an unknown kind.
    res = run_aetl(["explain", "sink"])
    assert res.code == 0 and res.stderr == ""
    heads = [l.split(":")[0] for l in out(res).splitlines() if l and not l.startswith(" ")]
    assert heads == ["sink jsonl", "sink csv", "sink sqlite", "sink postgres", "sink mysql", "sink redis"]


def test_explain_says_a_section_key_is_required_in_its_section():
    r = run_aetl(["explain", "source", "postgres"])
    assert r.code == 0
    assert "\n  incremental.column (string, required in incremental)\n" in out(r)


def test_explain_mysql_shows_both_parts_with_their_fields_and_defaults():
    text = out(run_aetl(["explain", "mysql"]))
    assert text.startswith("source mysql: the rows of a MariaDB/MySQL query, streamed\n")
    assert "\nsink mysql: batched multi-row INSERTs into a MariaDB/MySQL table, on the event loop\n" in text
    assert ("\n  url (string)\n      mysql://user:password@host:port/database (mariadb:// too); left-out parts from "
            "MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_PWD and the login name\n") in text
    assert "\n  batch.size (whole number, default 20000)\n" in text
    assert "\n  incremental.column (string, required in incremental)\n" in text
    listed = out(run_aetl(["list"]))
    assert "  mysql       the rows of a MariaDB/MySQL query, streamed\n" in listed


def test_the_http_source_is_listed_and_explained_with_its_pagination_fields():
    assert "  http        the records of a paginated JSON API, page after page\n" in out(run_aetl(["list"]))
    r = run_aetl(["explain", "http"])
    assert r.code == 0 and r.stderr == ""
    text = out(r)
    assert text.startswith("source http: the records of a paginated JSON API, page after page\n")
    assert ("\n  paginate.cursor (string)\n      the field holding the next page's cursor, sent back as `param`\n"
            "      example: paginate: {cursor: meta.next_cursor}\n") in text
    assert "\n  incremental.param (string, required in incremental)\n" in text
    assert "\n  retry.max (whole number, default 2)\n" in text


def test_the_websocket_source_is_listed_and_explained():
    listed = out(run_aetl(["list"]))
    assert ("  websocket   the messages of a ws:// or wss:// feed, with reconnects; at-most-once for what a crash "
            "cuts off\n") in listed
    res = run_aetl(["explain", "websocket"])
    assert res.code == 0 and res.stderr == ""
    text = out(res)
    assert text.startswith("source websocket: the messages of a ws:// or wss:// feed")
    assert ("\n  url (string, required)\n      the feed: ws:// or wss:// (TLS verified)\n"
            "      example: url: \"wss://stream.example/feed\"\n") in text
    assert ("\n  reconnect.backoff (duration range, default 500ms..30s)\n      waits before connecting again (full "
            "jitter)\n      example: reconnect: {backoff: 1s..1m}\n") in text
    assert "\n  max_message (size, default 16MiB)\n" in text
    assert "\n  binary (choice, default base64)\n" in text
