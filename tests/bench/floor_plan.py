"""The plan floor: the least a plain script must do to plan, as a whole process.

    python tests/bench/floor_plan.py LEDGER IDFILE...

Reads every ID file (one ID a line, trimmed, blank and `#` lines skipped) and reads
and hash-verifies the ledger (sha256 of the canonical JSON without `hash`, each
`prev` the hash of the line before: DESIGN "Applied ledger"). No validation, no
diff, no output beyond one count line. `plan.py` runs it beside `reconcile plan`.
Imports nothing beyond `json` and `hashlib` (`sys` is built in, only for argv).
"""

import hashlib
import json
import sys


def read_ids(path):
    with open(path, encoding="utf-8") as fh:
        return [s for s in (line.strip() for line in fh) if s and s[0] != "#"]


def verify(path):
    prev = "0" * 64
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            record = json.loads(line)
            stored = record.pop("hash")
            body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            if record["prev"] != prev or hashlib.sha256(body.encode()).hexdigest() != stored:
                raise SystemExit(f"{path}: broken chain at seq {record.get('seq')}")
            prev = stored
            count += 1
    return count


def main(argv):
    ledger, id_files = argv[0], argv[1:]
    ids = sum(len(read_ids(p)) for p in id_files)
    print(f"{ids} ids, {verify(ledger)} records")


if __name__ == "__main__":
    main(sys.argv[1:])
