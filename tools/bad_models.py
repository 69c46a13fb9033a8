"""Bad models: run the table of tests/bad_model_cases.py through the command line and
write what each command did (issue 17: every bad model a clear error, the input intact,
nothing left behind).

    python tools/bad_models.py --out docs/results/bad_models.md

Exits 1 if any command did something other than the table expects (each such row says
what, in its last column).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bad_model_cases import CASES, problems, run_case  # noqa: E402

HEADER = """# Bad models

Regenerate: `python tools/bad_models.py --out docs/results/bad_models.md`

Every case of tests/bad_model_cases.py (the table tests/test_bad_models.py asserts), each command run
through the CLI in-process with an empty output folder `out/`, the model in `in/`. Exit
codes: 0 ok, 2 bad model, 3 corrupt blob, 4 output not writable (README). *message*: the
first stderr line (each error is that one line); *input intact*: every file of `in/`
byte-identical afterwards; *left behind*: anything in `out/` but the output of a
successful command, and any new file in `in/`. The read-only and full folders are
simulated (a read-only folder, and as root a refused mkdtemp; a writer raising ENOSPC
after a third of the file).

| case | command | exit | message | input intact | left behind | as expected |
|---|---|---|---|---|---|---|
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write (default: stdout)")
    args = parser.parse_args(argv)
    os.environ.setdefault("ONNX_UDC_ORT_LOG", "4")
    rows, bad = [], 0
    with tempfile.TemporaryDirectory(prefix="udc-bad-models-") as tmp:
        for i, case in enumerate(CASES):
            for o in run_case(case, Path(tmp) / f"{i:02d}"):
                wrong = problems(case, o)
                bad += bool(wrong)
                message = o.message.removeprefix("onnx-udc: ")
                rows.append(f"| {case.name}: {_cell(case.what)} | `{_cell(' '.join(o.argv))}` | {o.code} | "
                            f"{_cell(message)} | {'yes' if o.input_intact else '**no**'} | "
                            f"{_cell(', '.join(o.leftovers)) or 'nothing'} | {'yes' if not wrong else '**no**: ' + _cell('; '.join(wrong))} |")
    text = HEADER + "\n".join(rows) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"{len(rows)} commands, {bad} not as expected: {args.out}")
    else:
        print(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
