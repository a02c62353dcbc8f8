"""Reader process for test_mvcc_readers.py: checks commit invariants until time runs out.

``python mvcc_reader_worker.py CONTAINER SECONDS`` reads in a loop and exits
1 at the first violation, else prints ``OK transactions reads``.  Invariants:

* every file's first 32 bytes are the SHA-256 of the rest (no torn file);
* in one read transaction, the manifest lists exactly the files present, and
  each file's embedded commit number equals the one the manifest gives it
  (no mix of two commits).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time


def check_file(data: bytes) -> int:
    if hashlib.sha256(data[32:]).digest() != data[:32]:
        raise AssertionError("torn file: checksum mismatch")
    return int(data[32:48])


def main() -> None:
    import cartridge

    path, seconds = sys.argv[1], float(sys.argv[2])
    handle = cartridge.open(path, "r")
    end = time.monotonic() + seconds
    txns = reads = 0
    try:
        while time.monotonic() < end:
            with handle.reader() as r:
                manifest = json.loads(r.read("/manifest"))
                present = sorted(p for p, i in r.walk("/data") if i.kind == "file")
                if present != sorted(manifest["files"]):
                    raise AssertionError(f"manifest lists {sorted(manifest['files'])}, "
                                         f"found {present}")
                for name, commit in manifest["files"].items():
                    if check_file(r.read(name)) != commit:
                        raise AssertionError(f"{name} is from another commit")
                    reads += 1
            txns += 1
            check_file(handle.read("/data/f0"))  # plain call: the newest commit
            reads += 1
    except AssertionError as exc:
        print("FAIL", exc, flush=True)
        sys.exit(1)
    print("OK", txns, reads, flush=True)


if __name__ == "__main__":
    main()
