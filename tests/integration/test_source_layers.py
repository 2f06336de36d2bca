"""Nothing includes upward: each folder of the tree includes only folders of its
own layer or below (README, Layout). Reads the sources; runs nothing."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
# lowest first; a folder may include its own and those before it in this list
# (cli/ holds the display, logging and exit codes the commands use; its main.cpp
# alone sits on top and dispatches to the commands)
LAYERS = [["engine"], ["expr"], ["net"], ["run"], ["config"], ["sources", "stages", "sinks"], ["cli"], ["commands"]]
TOP = {"cli/main.cpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def test_nothing_includes_upward():
    rank = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
    wrong = []
    for folder, level in rank.items():
        for f in sorted((ROOT / folder).rglob("*")):
            if f.suffix not in (".h", ".cpp"):
                continue
            here = len(LAYERS) if str(f.relative_to(ROOT)) in TOP else level
            for target in INCLUDE.findall(f.read_text()):
                if target in rank and rank[target] > here:
                    wrong.append(f"{f.relative_to(ROOT)} includes {target}/")
    assert wrong == []
