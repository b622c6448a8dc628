"""The mutation tool (scripts/mutants.py) addresses each mutant by file and line: a change
that moves a mutated line must move the mutant too, or the tool would refuse to run."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_mutant_finds_its_text_on_its_line():
    run = subprocess.run([sys.executable, "scripts/mutants.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, (
        f"{run.stdout}{run.stderr}\nA mutated line moved: `python scripts/mutants.py --relocate` points "
        "each mutant whose text occurs once in its file at its new line.")
