#!/bin/sh
# Copies a keyboard-lm bundle (the directory or .zip `kblm export` writes) into the app's
# assets, where the app loads and verifies it at start:
#   android_demo/copy_bundle.sh runs/demo/bundle            # -> app/src/main/assets/bundle/
#   android_demo/copy_bundle.sh BUNDLE[.zip] TARGET_DIR     # elsewhere
# Then rebuild and reinstall the app. Checksums are verified by the app, not here.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BUNDLE_DIR_OR_ZIP [TARGET_DIR]" >&2; exit 2; }
source=$1
target=${2:-"$(cd "$(dirname "$0")" && pwd)/app/src/main/assets/bundle"}
files="manifest.json model.tflite vocab.json vocab.txt"
# copied when the bundle has them (the manifest lists them; the app verifies them): the lexicon
# (docs/engine.md §16) and the adapter's general sample (§18.3)
optional="lexicon.tsv.gz adapter-general.txt"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
if [ -d "$source" ]; then
  for f in $files; do
    [ -f "$source/$f" ] || { echo "error: $source/$f: missing; not a keyboard-lm bundle" >&2; exit 1; }
    cp "$source/$f" "$staging/$f"
  done
  for f in $optional; do
    if [ -f "$source/$f" ]; then cp "$source/$f" "$staging/$f"; fi
  done
elif [ -f "$source" ]; then
  python3 - "$source" "$staging" "$optional" $files <<'PY' || exit 1
import sys, zipfile
source, staging, optional, names = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
try:
    archive = zipfile.ZipFile(source)
except zipfile.BadZipFile:
    sys.exit(f"error: {source}: neither a bundle directory nor a .zip")
for name in names + [n for n in optional if n in archive.namelist()]:
    if name not in archive.namelist():
        sys.exit(f"error: {source}: {name} missing; not a keyboard-lm bundle")
    with open(f"{staging}/{name}", "wb") as out:
        out.write(archive.read(name))
PY
else
  echo "error: $source: no such bundle directory or .zip" >&2
  exit 1
fi
rm -rf "$target"
mkdir -p "$target"
for f in $files $optional; do
  if [ -f "$staging/$f" ]; then cp "$staging/$f" "$target/$f"; fi
done
echo "copied $source -> $target"
