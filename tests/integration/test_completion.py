"""aetl completion: scripts generated from the command tables; bash's is run for real."""
import shutil
import subprocess

import pytest

from conftest import AETL, run_aetl


def script(shell):
    res = run_aetl(["completion", shell])
    assert res.code == 0 and res.stderr == "", res.stderr
    return res.stdout.decode()


def complete(script_text, words, tmp_path):
    """COMPREPLY of bash's completion for `words` (the last one being completed)."""
    path = tmp_path / "completion.bash"
    path.write_text(script_text)
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = f"""
source {path}
COMP_WORDS=({quoted})
COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_aetl_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                         cwd=tmp_path, timeout=30)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return [l for l in res.stdout.split("\n") if l]


def test_bash_completes_subcommands_flags_and_words(tmp_path):
    s = script("bash")
    assert complete(s, ["aetl", "ru"], tmp_path) == ["run"]
    assert complete(s, ["afetch", "--ret"], tmp_path) == ["--retry", "--retry-backoff"]
    assert complete(s, ["aetl", "fetch", "--ret"], tmp_path) == ["--retry", "--retry-backoff"]
    assert complete(s, ["aetl", "run", "--from"], tmp_path) == ["--from-start"]
    assert complete(s, ["aetl", "explain", "sq"], tmp_path) == ["sqlite"]
    assert complete(s, ["aetl", "completion", ""], tmp_path) == ["bash", "zsh", "fish"]
    assert complete(s, ["aetl", "--log-level", "debug", "val"], tmp_path) == ["validate"]


def test_bash_completes_file_names_for_inputs_and_flag_values(tmp_path):
    (tmp_path / "urls.txt").write_text("")
    (tmp_path / "pipe.yaml").write_text("")
    s = script("bash")
    assert complete(s, ["afetch", "ur"], tmp_path) == ["urls.txt"]
    assert complete(s, ["afetch", "--state", "pi"], tmp_path) == ["pipe.yaml"]
    assert complete(s, ["aetl", "validate", "pi"], tmp_path) == ["pipe.yaml"]
    assert complete(s, ["aetl", "list", ""], tmp_path) == []
    # a flag without a value does not take the next word: it is an input again
    assert complete(s, ["afetch", "--ordered", "ur"], tmp_path) == ["urls.txt"]
    assert complete(s, ["aetl", "run", "-q", "pi"], tmp_path) == ["pipe.yaml"]
    assert complete(s, ["aetl", "explain", "--help", "pipe"], tmp_path) == ["pipeline"]


def test_the_scripts_offer_every_flag_of_the_table():
    table = run_aetl(["completion", "--table"]).stdout.decode()
    rows = [l.split("\t") for l in table.splitlines()]
    assert ["afetch", "-", "--retry"] in rows and ["aetl", "fetch", "-j"] in rows
    assert ["aetl", "explain", "--table"] not in rows  # hidden flags are not offered
    bash, zsh, fish = script("bash"), script("zsh"), script("fish")
    for program, sub, flag in rows:
        assert f" {flag} " in bash or f"'{flag} " in bash or f" {flag}'" in bash, flag
        assert f"'{flag}[" in zsh, flag
        name = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
        assert name in fish, flag
    assert "'--ordered[Write results in input order (default: as they complete)]'" in zsh
    assert "'--retry[Retries after the first attempt (connection errors, timeouts, 429, 5xx)]:value:_files'" in zsh


def test_zsh_and_fish_scripts_parse_where_the_shells_are_installed(tmp_path):
    checked = 0
    for shell, flag in (("zsh", "-n"), ("fish", "--no-execute")):
        if shutil.which(shell) is None:
            continue
        path = tmp_path / f"completion.{shell}"
        path.write_text(script(shell))
        res = subprocess.run([shell, flag, str(path)], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        checked += 1
    if checked == 0:
        pytest.skip("neither zsh nor fish is installed")


def test_completion_without_a_shell_or_with_an_unknown_one_is_a_usage_error():
    res = run_aetl(["completion"])
    assert res.code == 2 and res.stderr == "aetl: completion: which shell? bash, zsh or fish\n"
    res = run_aetl(["completion", "tcsh"])
    assert res.code == 2 and res.stderr.startswith("aetl: ") and "tcsh" in res.stderr
