"""aetl run: each source format, stage and sink kind, resume, dead letters, flags."""
import csv
import gzip
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AETL


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l]


def simple(tmp_path, pipeline, source, stages="", sink="jsonl: {path: out.jsonl}", extra=""):
    return pipeline(f"name: t\nsource: {source}\n" + (f"stages:\n{stages}\n" if stages else "") +
                    f"sink: {{{sink}}}\n{extra}")


# ---------------------------------------------------------------- sources

def test_json_lines_blank_lines_and_crlf(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"a":1}\r\n\r\n  {"a":2}  \n{"a":3}')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_text_format_wraps_lines_and_keeps_invalid_utf8(aetl, pipeline, tmp_path):
    (tmp_path / "app.log").write_bytes(b"hello \"world\"\nbad \xff byte\n")
    p = simple(tmp_path, pipeline, "{lines: {paths: [app.log], format: text}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"line": 'hello "world"'}
    assert lines[1] == '{"line":"bad \\udcff byte"}'


def test_csv_format_header_quotes_multiline_and_types(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_text('id,name,score,note\n1,"Smith, Jo",2.5,"said ""hi"""\n2,Bo,007,"two\nlines"\n3,x\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}",
               sink="jsonl: {path: out.jsonl}", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": 1, "name": "Smith, Jo", "score": 2.5, "note": 'said "hi"'},
        {"id": 2, "name": "Bo", "score": "007", "note": "two\nlines"},
    ]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert len(dl) == 1 and dl[0]["line"] == 5 and "expected 4 fields" in dl[0]["error"]


def test_csv_line_breaks_inside_quotes_are_kept_byte_for_byte(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_bytes(b'a,b\r\n"x\r\ny",1\r\n"p\nq",2\n"r\r\n\r\ns",3')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"a": "x\r\ny", "b": 1}, {"a": "p\nq", "b": 2}, {"a": "r\r\n\r\ns", "b": 3}]


def test_csv_blank_lines_outside_quotes_are_skipped(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_bytes(b'a\r\n\r\nx\n\n""\ny\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"a": "x"}, {"a": ""}, {"a": "y"}]


def test_csv_a_stray_quote_after_a_closing_quote_goes_to_the_dead_letter_with_its_place(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_text('a,b\n"x"y,1\nok,2\n1,"two\nlines" \n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"a": "ok", "b": 2}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert [(d["line"], d["error"]) for d in dl] == [
        (2, "unexpected character after the closing quote of a CSV field at line 2, column 4"),
        (4, "unexpected character after the closing quote of a CSV field at line 5, column 7"),
    ]


def test_csv_a_quote_inside_an_unquoted_field_is_kept(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_text('a,b\n5" tall,x"\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"a": '5" tall', "b": 'x"'}]


def test_csv_a_malformed_header_row_fails_the_run(aetl, pipeline, tmp_path):
    (tmp_path / "u.csv").write_text('"a"b,c\n1,2\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [u.csv], format: csv}}", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 1
    assert res.stderr.splitlines() == [
        "aetl: error: u.csv: the header row: unexpected character after the closing quote of a CSV field at line 1, column 4"]


def test_a_byte_order_mark_at_the_start_of_each_file_is_dropped(aetl, pipeline, tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "u.csv").write_bytes(bom + b"a,b\n1,2\n")
    (tmp_path / "u.jsonl").write_bytes(bom + b'{"n":1}\n')
    with gzip.open(tmp_path / "v.jsonl.gz", "wb") as f:
        f.write(bom + b'{"n":2}\n')
    (tmp_path / "u.txt").write_bytes(bom + b"first\n" + bom + b"second\n")
    for source, expected in [
        ("{lines: {paths: [u.csv], format: csv}}", [{"a": 1, "b": 2}]),
        ("{lines: {paths: [u.jsonl, v.jsonl.gz]}}", [{"n": 1}, {"n": 2}]),
        ("{lines: {paths: [u.txt], format: text}}", [{"line": "first"}, {"line": "\ufeffsecond"}]),
    ]:
        p = simple(tmp_path, pipeline, source)
        res = aetl(["run", "-q", "--from-start", "--state", "s.db", p], cwd=tmp_path)
        assert res.code == 0, res.stderr
        assert read_jsonl(tmp_path / "out.jsonl") == expected


def test_numbers_beyond_64_bits_or_a_double_pass_through_byte_for_byte(aetl, pipeline, tmp_path):
    line = b'{"id":1,"big":123456789012345678901234567890,"huge":1e309,"tiny":-1e400}'
    (tmp_path / "in.jsonl").write_bytes(line + b'\n{"id":2,"big":5,"huge":1}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - filter: 'big > 5'")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == line + b"\n"
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="  - select: {id: id, big: big, huge: huge}\n  - set: {seen: true}")
    res = aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.jsonl").read_bytes().splitlines() == [
        b'{"id":1,"big":123456789012345678901234567890,"huge":1e309,"seen":true}',
        b'{"id":2,"big":5,"huge":1,"seen":true}']


def test_computing_with_a_number_beyond_a_double_sends_the_record_to_the_dead_letter(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"id":1,"huge":1e309}\n{"id":2,"huge":10}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - filter: 'huge > 5'",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": 2, "huge": 10}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert [(d["line"], d["error"]) for d in dl] == [
        (1, "number 1e309 is beyond what an expression computes with (about \u00b11.8e308)")]


def test_a_sqlite_column_gets_numbers_beyond_64_bits_or_a_double_as_real(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"big":123456789012345678901234567890,"huge":1e309}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="sqlite: {path: out.db, table: t}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    db = sqlite3.connect(tmp_path / "out.db")
    assert db.execute("SELECT big, typeof(big), huge, typeof(huge) FROM t").fetchall() == [
        (1.2345678901234568e+29, "real", float("inf"), "real")]


def test_invalid_utf8_inside_a_json_line_is_kept_as_escapes(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"a":"bad \xff byte","n":1}\n{"a":1\xff}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"a":"bad \\udcff byte","n":1}\n'
    assert [(d["line"], d["error"]) for d in read_jsonl(tmp_path / "dl.jsonl")] == [
        (2, "invalid JSON: The input is not valid UTF-8")]
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="  - filter: 'starts_with(a, \"bad \") and len(a) == 10'\n  - select: {a: a}",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s2.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"a":"bad \\udcff byte"}\n'


def test_globs_are_sorted_and_gzip_is_read(aetl, pipeline, tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    write_jsonl(d / "b.jsonl", [{"n": 2}])
    write_jsonl(d / "a.jsonl", [{"n": 1}])
    with gzip.open(d / "c.jsonl.gz", "wt") as f:
        f.write('{"n": 3}\n{"n": 4}\n')
    p = simple(tmp_path, pipeline, '{lines: {paths: ["logs/*.jsonl", "logs/*.gz"]}}')
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 2, 3, 4]


def test_stdin_source(aetl, pipeline, tmp_path):
    p = simple(tmp_path, pipeline, '{lines: {paths: ["-"]}}', sink='jsonl: {path: "-"}')
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, input_bytes=b'{"x":1}\n{"x":2}\n')
    assert res.code == 0, res.stderr
    assert res.records == [{"x": 1}, {"x": 2}]


# ---------------------------------------------------------------- stages

def test_filter_select_set(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [
        {"id": 1, "status": 404, "user": {"country": "DE", "name": "Ana"}, "url": "https://x/a"},
        {"id": 2, "status": 200, "user": {"country": "DE"}},
        {"id": 3, "status": 500, "user": {"country": "US"}},
        {"id": 4, "status": 503, "user": {"country": "fr", "name": "Bo"}, "url": "http://y/b"},
    ])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="""\
  - filter: 'status >= 400 and upper(user.country) in ["DE", "FR"]'
  - select: {id: id, country: upper(user.country), name: user.name, secure: 'url =~ "^https:"'}
  - set: {meta.kind: 'if(id > 2, "late", "early")', name: 'coalesce(name, "?")'}""")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": 1, "country": "DE", "name": "Ana", "secure": True, "meta": {"kind": "early"}},
        {"id": 4, "country": "FR", "name": "Bo", "secure": False, "meta": {"kind": "late"}},
    ]


def test_malformed_records_go_to_the_dead_letter_while_the_rest_flows(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"id":1}\n{"id": tru}\n[1,2]\nnot json\n{"id":2,"s":1\xff}\n{"id":3}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": 1}, {"id": 3}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert [(d["input"], d["line"], d["stage"]) for d in dl] == [("in.jsonl", n, "lines") for n in (2, 3, 4, 5)]
    assert dl[1]["error"] == "not a JSON object" and dl[1]["record"] == "[1,2]"
    assert dl[3]["error"] == "invalid JSON: The input is not valid UTF-8"


def test_without_a_dead_letter_the_run_exits_1_and_a_rerun_retries_only_the_failures(aetl, pipeline, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id":1}\n{"id": broken\n{"id":3}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="jsonl: {path: out.jsonl, append: true}")
    res = aetl(["run", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 1
    assert "in.jsonl:2: lines: invalid JSON" in res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": 1}, {"id": 3}]
    src.write_text('{"id":1}\n{"id": 2     }\n{"id":3}\n')  # fixed in place, same length
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": 1}, {"id": 3}, {"id": 2}]


# ---------------------------------------------------------------- sinks

def test_sqlite_sink_creates_upserts_and_quotes_identifiers(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, 'we"ird': "a", "n": 1.5, "o": {"k": [1]}, "b": True},
                                        {"id": 2, 'we"ird': "b", "n": 2, "o": None, "b": False},
                                        {"id": 1, 'we"ird': "c", "n": 3, "o": None, "b": None}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink='sqlite: {path: out.db, table: "my table", key: [id]}')
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    db = sqlite3.connect(tmp_path / "out.db")
    rows = db.execute('SELECT id, "we""ird", n, o, b FROM "my table" ORDER BY id').fetchall()
    assert rows == [(1, "c", 3, None, None), (2, "b", 2, None, 0)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_rows_rejected_by_a_constraint_go_to_the_dead_letter(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "v": "a"}, {"id": 2, "v": None}, {"id": 3, "v": "c"}])
    db = sqlite3.connect(tmp_path / "out.db")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    db.commit()
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="sqlite: {path: out.db, table: t, columns: [id, v]}",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert db.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (3,)]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert len(dl) == 1 and dl[0]["line"] == 2 and "NOT NULL" in dl[0]["error"] and dl[0]["stage"] == "sink sqlite"


def test_sqlite_key_without_a_unique_index_is_a_clear_error(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    db = sqlite3.connect(tmp_path / "out.db")
    db.execute("CREATE TABLE t (id INTEGER)")
    db.commit()
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="sqlite: {path: out.db, table: t, key: [id]}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 1
    assert "has no PRIMARY KEY or UNIQUE index" in res.stderr


def test_csv_sink(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "name": "Smith, Jo", "tags": ["a"], "x": None},
                                        {"id": 2, "name": 'say "hi"', "tags": [], "x": 1.5}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="csv: {path: out.csv}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert rows == [["id", "name", "tags", "x"], ["1", "Smith, Jo", '["a"]', ""], ["2", 'say "hi"', "[]", "1.5"]]


def test_csv_sink_writes_an_empty_sole_field_as_quotes_so_it_reads_back(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"line": "a"}, {"line": ""}, {"line": "b"}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="csv: {path: out.csv}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert (tmp_path / "out.csv").read_bytes() == b'line\r\na\r\n""\r\nb\r\n'
    back = simple(tmp_path, pipeline, "{lines: {paths: [out.csv], format: csv}}", sink="jsonl: {path: back.jsonl}")
    res = aetl(["run", "-q", "--state", "s2.db", back], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "back.jsonl") == [{"line": "a"}, {"line": ""}, {"line": "b"}]


# ---------------------------------------------------------------- delivery and flags

def test_resume_reads_only_what_was_appended(aetl, pipeline, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"n": 1}, {"n": 2}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}")
    assert aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path).code == 0
    with open(src, "a") as f:
        f.write('{"n": 3}\n')
    assert aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path).code == 0
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 2, 3]
    assert aetl(["run", "-q", "--state", "s.db", "--from-start", p], cwd=tmp_path).code == 0
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 2, 3]


def test_limit_and_dry_run(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(10)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - filter: 'n % 2 == 0'",
               sink="sqlite: {path: out.db, table: t}")
    res = aetl(["run", "-q", "--dry-run", "--limit", "5", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.records == [{"n": 0}, {"n": 2}, {"n": 4}]
    assert not (tmp_path / "out.db").exists()
    res = aetl(["run", "-q", "--state", "s.db", "--limit", "4", p], cwd=tmp_path)
    assert res.code == 0
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    db = sqlite3.connect(tmp_path / "out.db")
    assert [r[0] for r in db.execute("SELECT n FROM t")] == [0, 2, 4, 6, 8]


def test_metrics_file_in_prometheus_text_format(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(10)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - filter: 'n < 3'")
    res = aetl(["run", "-q", "--state", "s.db", "--metrics-out", "m.prom", p], cwd=tmp_path)
    assert res.code == 0
    text = (tmp_path / "m.prom").read_text()
    assert '# TYPE aetl_records_in_total counter' in text
    assert 'aetl_records_dropped_total{pipeline="t",part="filter#1"} 7' in text
    assert 'aetl_records_out_total{pipeline="t",part="sink jsonl"} 3' in text
    assert 'aetl_run_success{pipeline="t"} 1' in text
    assert not (tmp_path / "m.prom.tmp").exists()


def test_the_metrics_count_why_each_sink_write_went(aetl, pipeline, tmp_path):
    """250 records, batches of 100: two writes go because they are full, the
    last because the input ended (or its linger passed first); at debug level
    each write says why."""
    write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(250)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink="jsonl: {path: out.jsonl, batch: {size: 100, linger: 10s}}")
    res = aetl(["run", "-q", "--log-level", "debug", "--state", "s.db", "--metrics-out", "m.prom", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    text = (tmp_path / "m.prom").read_text()
    assert "# TYPE aetl_sink_flushes_total counter" in text
    flushes = dict(re.findall(r'aetl_sink_flushes_total\{pipeline="t",part="sink jsonl",reason="(\w+)"\} (\d+)', text))
    assert flushes == {"size": "2", "end": "1"}, text
    said = re.findall(r"sink jsonl: a write of up to (\d+) records \(\d+ bytes\) goes: (\w+)", res.stderr)
    assert said == [("100", "size"), ("100", "size"), ("50", "end")], res.stderr


def test_summary_on_stderr(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": 1}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink='jsonl: {path: "-"}')
    res = aetl(["run", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0
    assert res.records == [{"n": 1}]
    assert "sink jsonl" in res.stderr and "checkpoint in s.db" in res.stderr


def test_stdout_closed_early_ends_quietly(pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i, "pad": "x" * 200} for i in range(200000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink='jsonl: {path: "-"}')
    out = subprocess.run(f"'{AETL}' run -q --state s.db '{p}' | head -1", shell=True, cwd=tmp_path,
                         capture_output=True, timeout=60)
    assert out.stdout.decode().count("\n") == 1
    assert out.stderr == b""


def test_sigint_stops_gracefully_and_a_rerun_finishes(pipeline, tmp_path, aetl):
    write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(400000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="jsonl: {path: out.jsonl, batch: {size: 200}}")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / ".state"))
    proc = subprocess.Popen([str(AETL), "run", "-q", "--state", "s.db", str(p)], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE)
    # Signal once the run is writing (its handlers are in place by then), however
    # slow the machine is today.
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 130, err
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0
    ns = [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")]
    assert ns == list(range(400000))


# ---------------------------------------------------------------- bad input

def test_missing_file_and_empty_glob(aetl, pipeline, tmp_path):
    p = simple(tmp_path, pipeline, "{lines: {paths: [nope.jsonl]}}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2 and "aetl: nope.jsonl: No such file or directory" in res.stderr
    p = simple(tmp_path, pipeline, '{lines: {paths: ["logs/*.jsonl"]}}')
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2 and "logs/*.jsonl: no files match" in res.stderr
    p = simple(tmp_path, pipeline, '{lines: {paths: ["logs/*.jsonl"], allow_empty: true}}')
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0 and (tmp_path / "out.jsonl").read_text() == ""


def test_empty_file(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="sqlite: {path: out.db, table: t}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr


def test_a_100mb_line_is_an_error_record_not_a_crash(aetl, pipeline, tmp_path):
    with open(tmp_path / "in.jsonl", "wb") as f:
        f.write(b'{"n":1}\n{"big":"' + b"x" * (100 << 20) + b'"}\n{"n":2}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl], max_line: 1MiB}}",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, timeout=120)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"n": 1}, {"n": 2}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert dl[0]["line"] == 2 and "longer than max_line" in dl[0]["error"] and len(dl[0]["record"]) <= 64


def test_read_only_output_directory(aetl, pipeline, tmp_path):
    import shutil
    import tempfile
    # root ignores directory permissions: run aetl as nobody then, in a directory nobody can use
    work = Path(tempfile.mkdtemp(prefix="aetl-ro-"))
    try:
        work.chmod(0o777)
        write_jsonl(work / "in.jsonl", [{"n": 1}])
        (work / "in.jsonl").chmod(0o644)
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        p = work / "p.yaml"
        p.write_text("source: {lines: {paths: [in.jsonl]}}\nsink: {jsonl: {path: ro/out.jsonl}}\n")
        p.chmod(0o644)
        drop = None
        if os.geteuid() == 0:
            def drop():
                os.setgid(65534)
                os.setuid(65534)
            probe = subprocess.run([str(AETL), "--version"], preexec_fn=drop, capture_output=True)
            if probe.returncode != 0:
                pytest.skip("the built binary is not reachable for user nobody (checkout in a private directory)")
        res = aetl(["run", "-q", "--state", "state.sqlite", p], cwd=work, preexec_fn=drop,
                   env={"XDG_STATE_HOME": str(work / ".state")})
        assert res.code == 2 and "ro/out.jsonl: Permission denied" in res.stderr, res.stderr
        assert not (ro / "out.jsonl").exists()
    finally:
        ro.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)


def test_output_file_in_a_missing_directory(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"n": 1}])
    (tmp_path / "notadir").write_text("")
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="jsonl: {path: notadir/out.jsonl}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 2 and "notadir/out.jsonl: Not a directory" in res.stderr


def test_disk_full_keeps_the_checkpoint_and_a_rerun_succeeds(aetl, pipeline, tmp_path):
    import resource
    write_jsonl(tmp_path / "in.jsonl", [{"n": i, "pad": "y" * 100} for i in range(20000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               sink="jsonl: {path: out.jsonl, batch: {size: 500}, retry: {max: 1, backoff: 10ms..20ms}}")

    def small_files():  # a file-size limit stands in for a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, preexec_fn=small_files)
    assert res.code == 1
    assert "out.jsonl: File too large" in res.stderr
    kept = read_jsonl(tmp_path / "out.jsonl")
    assert 0 < len(kept) < 20000
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == list(range(20000))


def test_jq_stage_splits_drops_and_dead_letters(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "items": [{"p": 1}, {"p": 2}]}, {"id": 2, "items": []},
                                        {"id": 3, "items": 5}, {"id": 4, "items": [{"p": 4}]}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="  - jq: '.id as $i | .items[] | {id: $i, p: (.p * 10)}'",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": 1, "p": 10}, {"id": 1, "p": 20}, {"id": 4, "p": 40}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert len(dl) == 1 and dl[0]["line"] == 3 and dl[0]["stage"] == "jq#1"
    assert dl[0]["error"] == "jq: Cannot iterate over number (5)" and dl[0]["record"] == {"id": 3, "items": 5}
    # rerun: everything was handled, including the split record
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0 and len(read_jsonl(tmp_path / "out.jsonl")) == 3


def test_jq_non_objects_and_compile_errors(aetl, pipeline, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"id": 1}])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}",
               stages="  - jq: {program: '.id', on_non_object: wrap}")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"value": 1}]
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="  - jq: '.a | '")
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2 and res.stderr.startswith(f"{p}:4:") and "syntax error" in res.stderr


def test_dry_run_dead_letters_go_to_stderr_without_truncating_it(pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"n":1}\nbroken\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", sink="sqlite: {path: out.db, table: t}",
               extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    log = tmp_path / "err.log"
    log.write_text("earlier log line\n")
    with open(log, "a") as err:
        res = subprocess.run([str(AETL), "run", "-q", "--dry-run", str(p)], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=err, timeout=60)
    assert res.returncode == 0
    assert [json.loads(l) for l in res.stdout.decode().splitlines()] == [{"n": 1}]
    text = log.read_text()
    assert text.startswith("earlier log line\n")
    assert '"record":"broken"' in text
    assert not (tmp_path / "dl.jsonl").exists() and not (tmp_path / "out.db").exists()


def test_steps_report_their_own_counters_behind_the_source_and_behind_jq(aetl, pipeline, tmp_path):
    # filter and select right behind the source run inside its jobs; behind jq
    # they run as a stage of their own. Either way each reports as itself.
    write_jsonl(tmp_path / "in.jsonl", [{"n": i, "tags": ["a", "b"]} for i in range(2000)])
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl]}}", stages="""\
  - filter: 'n % 2 == 0'
  - select: {n: n, tags: tags}
  - jq: '.tags[] as $t | {n, t: $t}'
  - filter: 't == "a"'
  - set: {m: 'n * 10'}""")
    res = aetl(["run", "-q", "--state", "s.db", "--metrics-out", "m.prom", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"n": i, "t": "a", "m": i * 10} for i in range(0, 2000, 2)]
    text = (tmp_path / "m.prom").read_text()
    for part, kind, n in [("lines", "in", 2000), ("lines", "out", 2000), ("filter#1", "in", 2000),
                          ("filter#1", "dropped", 1000), ("select#1", "in", 1000), ("select#1", "out", 1000),
                          ("jq#1", "out", 2000), ("filter#2", "in", 2000), ("filter#2", "dropped", 1000),
                          ("set#1", "out", 1000)]:
        assert f'aetl_records_{kind}_total{{pipeline="t",part="{part}"}} {n}' in text, (part, kind)


def test_a_step_that_cannot_read_a_record_sends_it_to_the_dead_letter(aetl, pipeline, tmp_path):
    # validate: false lets a malformed line past the source; the filter meets it.
    (tmp_path / "in.jsonl").write_text('{"n":1}\n{"n": tru}\n{"n":3}\n')
    p = simple(tmp_path, pipeline, "{lines: {paths: [in.jsonl], validate: false}}",
               stages="  - filter: 'n > 0'", extra="dead_letter: {jsonl: {path: dl.jsonl}}\n")
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"n": 1}, {"n": 3}]
    dl = read_jsonl(tmp_path / "dl.jsonl")
    assert [(d["line"], d["stage"]) for d in dl] == [(2, "filter#1")]


def test_many_inputs_under_a_low_open_files_limit_and_a_limit_across_files(aetl, pipeline, tmp_path):
    import resource
    (tmp_path / "in").mkdir()
    for f in range(300):
        write_jsonl(tmp_path / "in" / f"{f:03}.jsonl", [{"f": f, "i": i} for i in range(3)])
    p = simple(tmp_path, pipeline, '{lines: {paths: ["in/*.jsonl"]}}', stages="  - filter: 'i != 1'")

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    res = aetl(["run", "-q", "--state", "s.db", "--limit", "100", p], cwd=tmp_path, preexec_fn=few_files)
    assert res.code == 0, res.stderr
    first = read_jsonl(tmp_path / "out.jsonl")
    # 100 input records: 33 files and one more line; the filter keeps 2 of every 3
    assert len(first) == 67 and first[-1] == {"f": 33, "i": 0}
    res = aetl(["run", "-q", "--state", "s.db", p], cwd=tmp_path, preexec_fn=few_files)
    assert res.code == 0, res.stderr
    assert read_jsonl(tmp_path / "out.jsonl") == [{"f": f, "i": i} for f in range(300) for i in (0, 2)]
