#!/bin/sh
# fetch-ort-headers.sh DEST
#
# Puts onnxruntime's C/C++ headers (Debian 13 "trixie" package libonnxruntime-dev) under
# DEST, so that DEST/usr/include/onnxruntime/onnxruntime_cxx_api.h exists afterwards.
#
# The onnxruntime wheel on PyPI ships no headers and Debian 12 has no such package. We reuse
# the machine's own configured Debian mirror and keyring, pointed at suite "trixie", with a
# PRIVATE apt state (sources, lists, cache) in a temporary folder: the system's apt state is
# never touched. Idempotent: does nothing when DEST already has the headers.
#
# Environment: ORT_DEB_SUITE (default trixie), ORT_DEB_PACKAGE (default libonnxruntime-dev),
#              UDC_APT_SOURCES (default: auto-detect /etc/apt/sources.list.d/debian.sources,
#              then /etc/apt/sources.list).
set -eu

die() { echo "fetch-ort-headers: error: $*" >&2; exit 1; }
log() { echo "fetch-ort-headers: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 DEST"
DEST=$1
HEADER=usr/include/onnxruntime/onnxruntime_cxx_api.h
SUITE=${ORT_DEB_SUITE:-trixie}
PACKAGE=${ORT_DEB_PACKAGE:-libonnxruntime-dev}

if [ -f "$DEST/$HEADER" ]; then
    log "headers already present in $DEST/usr/include/onnxruntime"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found (not a Debian-like system); set ORT_INCLUDE_DIR to a folder holding onnxruntime_cxx_api.h"
command -v dpkg >/dev/null 2>&1 || die "dpkg not found; set ORT_INCLUDE_DIR"

# --- 1. find the Debian mirror URI and its keyring --------------------------------------
URI=
KEYRING=

# deb822 format: stanzas separated by blank lines; take the first "Types: deb" stanza whose
# URI is not a -security / -updates archive (those have no "trixie" suite under that path).
parse_deb822() {
    awk '
        function flush() {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && uri != "" && uri !~ /security/ && !done) {
                print uri "\t" key; done = 1
            }
            types = ""; uri = ""; key = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
            line = $0; sub(/\r$/, "", line)
            field = tolower(line); sub(/:.*/, "", field)
            val = line; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
            if (field == "types") types = val
            else if (field == "uris") { split(val, a, /[ \t]+/); uri = a[1] }
            else if (field == "signed-by") key = val
        }
        END { flush() }
    ' "$1"
}

# one-line format: deb [opt=val ...] URI SUITE COMPONENTS...
parse_oneline() {
    awk '
        /^[ \t]*#/ { next }
        $1 == "deb" && !done {
            key = ""; i = 2
            if ($2 ~ /^\[/) {
                opts = ""
                for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } }
                gsub(/[\[\]]/, "", opts)
                n = split(opts, o, /[ \t]+/)
                for (j = 1; j <= n; j++) if (o[j] ~ /^signed-by=/) { key = o[j]; sub(/^signed-by=/, "", key) }
            }
            uri = $i
            if (uri !~ /security/) { print uri "\t" key; done = 1 }
        }
    ' "$1"
}

found=
if [ -n "${UDC_APT_SOURCES:-}" ]; then
    case "$UDC_APT_SOURCES" in
        *.sources) found=$(parse_deb822 "$UDC_APT_SOURCES") ;;
        *)         found=$(parse_oneline "$UDC_APT_SOURCES") ;;
    esac
else
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        found=$(parse_deb822 /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$found" ] && [ -r /etc/apt/sources.list ]; then
        found=$(parse_oneline /etc/apt/sources.list)
    fi
fi
[ -n "$found" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; set ORT_INCLUDE_DIR to a folder holding onnxruntime_cxx_api.h"
URI=$(printf '%s' "$found" | cut -f1)
KEYRING=$(printf '%s' "$found" | cut -f2)
log "mirror $URI, suite $SUITE, keyring ${KEYRING:-<apt default>}"

# --- 2. private apt state -----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/udc-ort-headers.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
chmod 755 "$WORK"
S=$WORK/sources.list
L=$WORK/lists
C=$WORK/cache
D=$WORK/download
mkdir -p "$L/partial" "$C/archives/partial" "$D"
chmod 777 "$D"                       # apt downloads as the unprivileged _apt user when root

if [ -n "$KEYRING" ]; then
    echo "deb [signed-by=$KEYRING] $URI $SUITE main" > "$S"
else
    echo "deb $URI $SUITE main" > "$S"
fi

APT="apt-get -q -o Dir::Etc::SourceList=$S -o Dir::Etc::SourceParts=/dev/null \
 -o Dir::State::Lists=$L -o Dir::Cache=$C -o Dir::Etc::Preferences=/dev/null \
 -o Dir::Etc::PreferencesParts=/dev/null -o Acquire::Languages=none -o APT::Get::List-Cleanup=0"
# apt-get update exits 0 when a download fails; make that an error (apt >= 2.1.16).
UPDATE_STRICT="-o APT::Update::Error-Mode=any"

log "apt-get update (private state in $WORK; about 10 MB)"
$APT $UPDATE_STRICT update >"$WORK/update.log" 2>&1 \
    || { cat "$WORK/update.log" >&2; die "apt-get update for $URI $SUITE failed (is the mirror reachable?)"; }
log "apt-get download $PACKAGE"
(cd "$D" && $APT download "$PACKAGE") >"$WORK/download.log" 2>&1 \
    || { cat "$WORK/update.log" "$WORK/download.log" >&2; die "apt-get download $PACKAGE from $URI $SUITE failed"; }

DEB=$(ls "$D"/*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || die "apt-get download produced no .deb"
log "unpacking $(basename "$DEB") into $DEST"
mkdir -p "$DEST"
dpkg -x "$DEB" "$DEST" || die "dpkg -x $DEB failed"
[ -f "$DEST/$HEADER" ] || die "$(basename "$DEB") has no $HEADER"
log "ok: $DEST/usr/include/onnxruntime"
