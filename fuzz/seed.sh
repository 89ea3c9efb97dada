#!/bin/sh
# Seed corpora for the fuzz targets: real objects written by `ostree` (each
# prefixed with the byte that makes gvariant_decode pick its type), GVariant
# text, and key files. Writes fuzz/corpus/<target>/; needs `ostree`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
corpus="$here/corpus"
mkdir -p "$corpus/gvariant_decode" "$corpus/gvariant_text" "$corpus/keyfile"

# Objects: an archive repo stores dirtree, dirmeta and commit objects as
# plain GVariant; file headers are read from the .filez objects.
mkdir -p "$tmp/tree/sub"
echo hello > "$tmp/tree/a"
ln -s a "$tmp/tree/link"
echo data > "$tmp/tree/sub/b"
ostree --repo="$tmp/repo" init --mode=archive
ostree --repo="$tmp/repo" commit -b main -s subject --body body \
    --add-metadata-string=version=1.0 --add-metadata=n='@t 5' "$tmp/tree" >/dev/null
i=0
for obj in "$tmp"/repo/objects/*/*; do
    case "$obj" in
        *.commit) pick=0 ;;
        *.dirtree) pick=1 ;;
        *.dirmeta) pick=2 ;;
        *) continue ;;
    esac
    { printf "\\$(printf %o $pick)"; cat "$obj"; } > "$corpus/gvariant_decode/obj-$i"
    i=$((i + 1))
done

# Text: what ostree prints for those objects, and a few hand-written forms.
n=0
for t in "{'version': <'1.0'>, 'n': <uint64 5>}" "(uint32 0, uint32 0, uint32 16877, @a(ayay) [])" \
    "[(b'user.x', [byte 0x01, 0x02])]" "@mas ['a', nothing]" "{1, <(1.5, objectpath '/a')>}" \
    "'it\\'s \\u00e9 \\U0001f600'" "[int64 -1, 2]" "b'\\001\\377'" "<signature 'a{sv}'>" "0x1.8p1"; do
    printf '%s' "$t" > "$corpus/gvariant_text/seed-$n"
    n=$((n + 1))
done

# Key files.
cp "$tmp/repo/config" "$corpus/keyfile/repo-config"
printf '# top\n[core]\nrepo_version=1\n\n[remote "o"]\nurl=http://x\nbranches=a;b\\;c;\nName[de_DE.UTF-8@euro]=\\sx\\n\n' \
    > "$corpus/keyfile/hand"
echo "seeded $corpus"
