#!/usr/bin/env bash
# Writes the seed corpus of fuzz_archive (corpus/archive/): small tar,
# tar.gz and tar.zst artifacts, valid and hostile (.., absolute path, hard
# link, device, symlink out, duplicate, sparse file, .relsupd). Run from
# anywhere; needs python3 and zstd. The output is committed; rerun it only
# to change the seeds.
set -euo pipefail
out=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/corpus/archive
rm -rf "$out"
mkdir -p "$out"
python3 - "$out" <<'PY'
import io, sys, tarfile, gzip
out = sys.argv[1]

def tar(entries, fmt=tarfile.GNU_FORMAT, end_blocks=True):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == "f":
                data = extra.encode()
                info.size = len(data)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))
                continue
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "c":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "p":
                info.type = tarfile.FIFOTYPE
            elif kind == "x":  # setuid, world-writable file
                data = extra.encode()
                info.size, info.mode = len(data), 0o6777
                t.addfile(info, io.BytesIO(data))
                continue
            t.addfile(info)
    # Drop tarfile's padding to a 10 KiB record: two zero blocks end it.
    data = buf.getvalue()
    end = len(data)
    while end >= 1024 and data[end - 1024:end] == bytes(1024):
        end -= 512
    # The hostile seeds leave out the end-of-archive blocks (libarchive
    # takes a clean end of file as the end): smaller seeds.
    return data[:end + 1024] if end_blocks else data[:end]

seeds = {
    "app.tar": [("./", "d", None), ("./bin", "d", None), ("./bin/web", "f", "#!/bin/sh\nexec sleep 1\n"),
                ("./Procfile", "f", "web: ./bin/web\n"), ("./current", "l", "bin/web")],
    "dotdot.tar": [("../evil", "f", "x")],
    "absolute.tar": [("/etc/passwd", "f", "x")],
    "hardlink.tar": [("a", "f", "x"), ("b", "h", "a")],
    "device.tar": [("null", "c", None), ("fifo", "p", None)],
    "symlink_out.tar": [("d", "d", None), ("d/up", "l", "../../x")],
    "twice.tar": [("a", "f", "1"), ("./a", "f", "2")],
    "reserved.tar": [(".relsupd/env.json", "f", "{}")],
    "modes.tar": [("s", "x", "x")],
    "pax_long.tar": ([("d/" + "n" * 300, "f", "x")], tarfile.PAX_FORMAT),
}
for name, spec in seeds.items():
    entries, fmt = spec if isinstance(spec, tuple) else (spec, tarfile.GNU_FORMAT)
    with open(f"{out}/{name}", "wb") as f:
        f.write(tar(entries, fmt, end_blocks=name == "app.tar"))
with open(f"{out}/app.tar.gz", "wb") as f:
    f.write(gzip.compress(open(f"{out}/app.tar", "rb").read(), mtime=0))
# A gzip bomb in miniature: 1 MiB of zeros in one entry.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("zeros")
    info.size = 1 << 20
    t.addfile(info, io.BytesIO(bytes(info.size)))
with open(f"{out}/zeros.tar.gz", "wb") as f:
    f.write(gzip.compress(buf.getvalue(), 9, mtime=0))
open(f"{out}/empty", "wb").close()
open(f"{out}/not_tar", "wb").write(b"PK\x03\x04 not a tar")
PY
zstd -q -19 -c "$out/app.tar" >"$out/app.tar.zst"
# A sparse file (GNU sparse format): holes read as zeros.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
truncate -s 64K "$tmp/sparse"
printf 'end' | dd of="$tmp/sparse" bs=1 seek=40000 conv=notrunc status=none
tar --sparse --format=gnu -b1 -C "$tmp" -cf "$out/sparse.tar" sparse
ls -l "$out"
