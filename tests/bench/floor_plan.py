"""The plan floor: the least a plain script must do to plan, as a whole process.

    python tests/bench/floor_plan.py LEDGER IDFILE...

Reads every ID file (one ID a line, trimmed, blank and `#` lines skipped) and reads
and hash-verifies the ledger (sha256 of the canonical JSON without `hash`, each
`prev` the hash of the line before: DESIGN "Applied ledger"), in format v3 across its
segments (a `seal` names the next file), reading and hash-checking each ID list file
a record names once (`<ledger>.d/ids/<sha256>.txt`). No validation, no
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
    lists = {}
    segment = path
    while segment:
        following = None
        with open(segment, "rb") as fh:
            for line in fh:
                record = json.loads(line)
                stored = record.pop("hash")
                body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                if record["prev"] != prev or hashlib.sha256(body.encode()).hexdigest() != stored:
                    raise SystemExit(f"{segment}: broken chain at seq {record.get('seq')}")
                prev = stored
                if record["kind"] == "seal":
                    following = f"{path}.d/{record['next']}"
                    continue
                count += 1
                for name in ("assetIds", "pointIds"):
                    ref = record.get(name)
                    if type(ref) is dict and ref["sha256"] not in lists:
                        lists[ref["sha256"]] = read_list(f"{path}.d/ids/{ref['sha256']}.txt", ref["sha256"])
        segment = following
    return count


def read_list(path, digest):
    with open(path, "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"{path}: does not match its sha256")
    return data.decode().split("\n")


def main(argv):
    ledger, id_files = argv[0], argv[1:]
    ids = sum(len(read_ids(p)) for p in id_files)
    print(f"{ids} ids, {verify(ledger)} records")


if __name__ == "__main__":
    main(sys.argv[1:])
