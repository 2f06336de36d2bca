"""aetl validate / run on bad pipeline files: every problem as file:line:col, exit 2, nothing run."""
import re
import textwrap


LOCATED = re.compile(r"^.+:\d+:\d+: ")


def problems(res):
    """The file:line:col: lines (each is followed by its source line and a caret)."""
    return [l for l in res.stderr.splitlines() if LOCATED.match(l)]


def test_a_good_file_validates(aetl, pipeline, tmp_path):
    p = pipeline("""\
        source: {lines: {paths: [in.jsonl]}}
        stages:
          - filter: 'status >= 400'
        sink: {jsonl: {path: out.jsonl}}
        """.replace("        ", ""))
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert "ok" in res.stderr and "lines → filter → jsonl" in res.stderr


def test_every_problem_is_reported_with_its_location(aetl, pipeline, tmp_path):
    p = pipeline(textwrap.dedent("""\
        name: broken
        source:
          lines: {paths: [in.jsonl], formt: json, max_line: lots}
        stages:
          - filtr: 'a == 1'
          - filter: 'status >= '
          - select: {a: 'lower(x'}
          - set: {a.b: 'x', 'c[0]': 1}
        sink:
          sqlite: {path: out.db, batch: {size: many, linger: soon}, retry: {max: -1}}
        dead_letter:
          jsnl: {path: x}
        extra: 1
        """))
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    got = problems(res)
    f = str(p)
    assert got == [
        f"{f}:3:30: source lines: unknown key 'formt' (did you mean 'format'?)",
        f"{f}:3:53: source lines: max_line: bad size 'lots' (examples: 512KiB, 16MiB, 1G)",
        f"{f}:5:5: stage 1: unknown kind 'filtr' (did you mean 'filter'?)",
        f"{f}:6:24: stage 2 (filter): expected a value at the end of the expression",
        f"{f}:7:25: stage 3 (select): a: expected ')' at the end",
        f"{f}:8:21: stage 4 (set): 'c[0]': targets are field names (a.b.c), not $ or [index]",
        f"{f}:10:11: sink sqlite: missing required key 'table'",
        f"{f}:10:40: sink sqlite: batch.size: must be a whole number, not 'many'",
        f"{f}:10:54: sink sqlite: batch.linger: bad duration 'soon' (examples: 250ms, 1.5s, 2m)",
        f"{f}:10:74: sink sqlite: retry.max: must be between 0 and 1000",
        f"{f}:12:3: dead_letter: unknown kind 'jsnl' (did you mean 'jsonl'?)",
        f"{f}:13:1: the pipeline: unknown key 'extra'",
    ], "\n".join(got)


def test_run_refuses_a_bad_file_before_doing_anything(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a":1}\n')
    p = pipeline("source: {lines: {paths: [in.jsonl]}}\nstages: [{filter: 'a ==='}]\nsink: {jsonl: {path: out.jsonl}}\n")
    res = aetl(["run", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.startswith(f"{p}:2:")
    assert not (tmp_path / "out.jsonl").exists()


def test_yaml_syntax_errors_and_missing_files(aetl, pipeline, tmp_path):
    p = pipeline("source: {lines: {paths: [a]\nsink: x\n")
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2 and "YAML syntax error" in res.stderr and res.stderr.startswith(f"{p}:")
    res = aetl(["validate", tmp_path / "nope.yaml"], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr == f"cannot open {tmp_path / 'nope.yaml'}: No such file or directory\n"


def test_missing_sections_and_wrong_shapes(aetl, pipeline, tmp_path):
    p = pipeline("name: x\nstages: {filter: a}\n")
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert problems(res) == [
        f"{p}:1:1: the pipeline: missing required key 'source'",
        f"{p}:1:1: the pipeline: missing required key 'sink' (or 'sinks')",
        f"{p}:2:9: the pipeline: stages: must be a list (each item `- kind: ...`), not a mapping",
    ]


def test_an_alias_bomb_is_refused(aetl, pipeline, tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    prev = "a"
    for c in "bcdefghij":
        lines.append(f"{c}: &{c} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev = c
    p = pipeline("\n".join(lines) + "\n")
    res = aetl(["validate", p], cwd=tmp_path, timeout=20)
    assert res.code == 2 and "once aliases are expanded" in res.stderr


def test_secrets_from_the_environment_are_never_printed(aetl, pipeline, tmp_path):
    p = pipeline("source: {lines: {paths: [in.jsonl], max_line: '${SECRET}'}}\nsink: {jsonl: {path: '${UNSET_VAR}'}}\n")
    res = aetl(["validate", p], cwd=tmp_path, env={"SECRET": "hunter2"})
    assert res.code == 2
    assert "hunter2" not in res.stderr
    assert problems(res) == [
        f"{p}:1:47: source lines: max_line: bad size (examples: 512KiB, 16MiB, 1G)",
        f"{p}:2:23: sink jsonl: path: environment variable UNSET_VAR is not set (use ${{UNSET_VAR:-default}} for a "
        "default)",
    ]
    assert "UNSET_VAR" in res.stderr


def test_yaml_tags_are_refused_by_validate_and_run(aetl, pipeline, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a":1}\n')
    p = pipeline("source: {lines: {paths: [in.jsonl]}}\nsink: !!python/object {jsonl: {path: out.jsonl}}\n")
    for command in ("validate", "run"):
        res = aetl([command, p], cwd=tmp_path)
        assert res.code == 2
        assert problems(res)[0] == f"{p}:2:7: YAML tag '!!python/object' is not supported (a pipeline file is plain YAML)"
    assert not (tmp_path / "out.jsonl").exists()


def test_each_problem_shows_its_line_with_a_caret_and_no_password(aetl, pipeline, tmp_path):
    p = pipeline(textwrap.dedent("""\
        source: {lines: {paths: [in.jsonl]}}
        sink:
          postgres: {dsn: "host=db password=hunter2 user=etl", tabel: t}
        dead_letter: {jsonl: {path: "http://u:s3cret@x/", bogus: 1}}
        """))
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert res.stderr.splitlines() == [
        f"{p}:3:13: sink postgres: missing required key 'table'",
        '  postgres: {dsn: "host=db password=******* user=etl", tabel: t}',
        "            ^",
        f"{p}:3:56: sink postgres: unknown key 'tabel'",
        '  postgres: {dsn: "host=db password=******* user=etl", tabel: t}',
        "                                                       ^",
        f"{p}:4:51: dead_letter jsonl: unknown key 'bogus'",
        'dead_letter: {jsonl: {path: "http://u:******@x/", bogus: 1}}',
        "                                                  ^",
    ]


def test_explain_prints_where_each_step_runs(aetl, pipeline, tmp_path):
    p = pipeline("""\
        name: plan
        source: {lines: {paths: [in.jsonl]}}
        stages:
          - filter: 'status >= 400'
          - select: {id: id, status: status}
          - jq: '.'
          - set: {seen: 'true'}
          - filter: 'id > 0'
        sink: {postgres: {dsn: 'host=/nowhere', table: t, columns: {id: bigint, status: int, seen: bool}}}
        dead_letter: {jsonl: {path: dead.jsonl}}
        """.replace("        ", ""))
    res = aetl(["validate", "--explain", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.stdout.decode().splitlines() == [f"{p}: " + l for l in [
        "source lines: its lanes also run filter#1, select#1",
        "stage jq#1",
        "steps set#1, filter#2: one pool job per batch, then the sink's rows (if it makes them ahead)",
        "sink postgres: batches of up to 40000 records or 4 MiB, a partial one waits 500 ms",
        "dead_letter jsonl",
    ]]


def test_explain_without_stages_runs_the_row_step_in_the_source(aetl, pipeline, tmp_path):
    p = pipeline("""\
        source: {lines: {paths: [in.jsonl]}}
        sink: {postgres: {dsn: 'host=/nowhere', table: t, columns: [id]}}
        """.replace("        ", ""))
    res = aetl(["validate", "--explain", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.stdout.decode().splitlines() == [f"{p}: " + l for l in [
        "source lines: its lanes also make the sink's rows (if it makes them ahead)",
        "sink postgres: batches of up to 40000 records or 4 MiB, a partial one waits 500 ms",
    ]]


def test_explain_row_step_behind_a_stage_of_its_own_is_made_at_the_sink(aetl, pipeline, tmp_path):
    p = pipeline("""\
        source: {lines: {paths: [in.jsonl]}}
        stages:
          - jq: '.'
        sink: {postgres: {dsn: 'host=/nowhere', table: t, columns: [id]}}
        """.replace("        ", ""))
    res = aetl(["validate", "--explain", p], cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.stdout.decode().splitlines() == [f"{p}: " + l for l in [
        "source lines",
        "stage jq#1",
        "sink postgres: makes its rows as it writes (no chain in front of it); batches of up to 40000 records or 4 MiB, a partial one waits 500 ms",
    ]]


def test_an_empty_url_is_no_input(aetl, pipeline, tmp_path):
    # A regression: `url:` with nothing after it counted as given, so the run read nothing.
    p = pipeline("source: {lines: {url: }}\nsink: {jsonl: {path: out.jsonl}}\n")
    res = aetl(["validate", p], cwd=tmp_path)
    assert res.code == 2
    assert problems(res) == [f"{p}:1:17: source lines: missing required key 'paths' (or url)"]
