#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every
# test, clippy and rustfmt, prints a summary, and exits non-zero if any failed.
# Runs as root: the tests chown, set xattrs and mount tmpfs/loop file systems.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    exec sudo env "PATH=$PATH" "$0" "$@"
  fi
  echo "test-all.sh: the tests need root (chown, xattrs, mounts); run this as root" >&2
  exit 1
fi

scripts/deps.sh || { echo "test-all.sh: installing test dependencies failed" >&2; exit 1; }

# Tests that need root or ostree fail instead of skipping.
export KILN_CI=1

results=()
failed=0

# step NAME COMMAND...: runs COMMAND, records its result and duration.
step() {
  local name=$1
  shift
  echo "==> $name: $*"
  local start=$SECONDS
  if "$@"; then
    results+=("ok      $name ($((SECONDS - start))s)")
  else
    results+=("FAILED  $name ($((SECONDS - start))s)")
    failed=1
  fi
}

step fmt cargo fmt --all --check
# Build first, so the test step's deadline is the tests' own (~20 min warm;
# a fresh machine also bootstraps the Debian trees the VM, layering and
# toolbox tests cache, ~15 min more). A hang must not eat CI's whole
# budget: each kiln/ostree command the tests run is also killed after 5
# minutes by the tests themselves.
step build cargo test --workspace --all-targets --no-run
step test timeout --kill-after=30s 60m cargo test --workspace --all-targets --no-fail-fast
step clippy cargo clippy --workspace --all-targets -- -D warnings

echo
echo "test-all.sh summary:"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
  echo "test-all.sh: FAILED"
  exit 1
fi
echo "test-all.sh: all steps passed"
