"""The man pages name every field of every kind and every flag of every command.

The truth comes from the binary: `aetl explain --table` (the kinds' declared fields)
and `aetl completion --table` (the flags of the command lines that parse them)."""
import re

from conftest import ROOT, run_aetl

MAN = ROOT / "man"


def plain(roff):
    """Man page source as text: font escapes dropped, \\- as -."""
    text = re.sub(r"\\f[BIRP]|\\f\(..", "", roff)
    return text.replace("\\-", "-").replace("\\(aq", "'")


def names(text, word):
    return re.search(r"(?<![\w.-])" + re.escape(word) + r"(?![\w-])", text) is not None


def table(args):
    res = run_aetl(args)
    assert res.code == 0, res.stderr
    return [l.split("\t") for l in res.stdout.decode().splitlines()]


def kind_sections():
    """{(part, kind): text} of aetl-pipeline(5); kind "" is the part's introduction."""
    roff = plain((MAN / "aetl-pipeline.5").read_text())
    parts = {"SOURCES": "source", "STAGES": "stage", "SINKS": "sink"}
    out = {}
    chapters = re.split(r"^\.SH ", roff, flags=re.M)
    for chapter in chapters:
        title, _, body = chapter.partition("\n")
        title = title.strip().strip('"')
        if title == "TOP-LEVEL KEYS":
            out[("pipeline", "")] = body
        if title not in parts:
            continue
        pieces = re.split(r"^\.SS ", body, flags=re.M)
        out[(parts[title], "")] = pieces[0]
        for piece in pieces[1:]:
            kind, _, text = piece.partition("\n")
            out[(parts[title], kind.strip())] = text
    return out


def test_the_pipeline_page_names_every_field_of_every_kind():
    text = kind_sections()
    missing = []
    rows = table(["explain", "--table"])
    for part, kind, field, *_ in rows:
        if field in ("", "*"):
            continue
        here = text.get((part, kind))
        if here is None:
            missing.append(f"{part} {kind}: no section")
            continue
        # the common sink keys are described once, in the SINKS introduction
        where = here + text.get((part, ""), "") if part == "sink" else here
        segments = field.split(".")
        if not (names(where, field) or all(names(where, s) for s in segments)):
            missing.append(f"{part} {kind}: {field}")
    assert rows and missing == [], "\n".join(missing)


def test_the_man_pages_name_every_flag_of_every_command():
    aetl_page = plain((MAN / "aetl.1").read_text())
    afetch_page = plain((MAN / "afetch.1").read_text())
    missing = []
    for program, sub, flag in table(["completion", "--table"]):
        page = afetch_page if program == "afetch" or sub == "fetch" else aetl_page
        if not names(page, flag):
            missing.append(f"{program} {sub} {flag}")
    for sub in {sub for program, sub, _ in table(["completion", "--table"]) if sub != "-"}:
        if not re.search(r"^\.BI? \"?" + sub + r"\b", (MAN / "aetl.1").read_text(), flags=re.M):
            missing.append(f"aetl.1: no entry for the command {sub}")
    assert missing == [], "\n".join(missing)
