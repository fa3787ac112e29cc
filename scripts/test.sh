#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). It checks formatting,
# vets, runs every test of the library with the race detector, checks that the
# generated protobuf code is fresh, and runs the etcd/raft compatibility
# module. Needs only Go 1.24 or newer; with a C compiler (cgo) the tests run
# under the race detector, without one they run without it and say so.
set -euo pipefail
cd "$(dirname "$0")/.."

# The race detector needs cgo: CGO_ENABLED not 0 and a C compiler to call.
# (Go already reports CGO_ENABLED=0 when it finds no compiler on PATH, but not
# when CC names one that does not exist.)
race=-race
cc=$(go env CC)
if [[ "$(go env CGO_ENABLED)" != 1 ]]; then
  race=""
  if [[ "${CGO_ENABLED:-}" == 0 ]]; then why="CGO_ENABLED=0 is set, and the race detector needs cgo"
  else why="no C compiler ('${cc%% *}', go env CC) was found on PATH, and the race detector needs cgo"; fi
elif ! command -v "${cc%% *}" >/dev/null; then
  race=""; why="the C compiler '${cc%% *}' (go env CC) was not found, and the race detector needs cgo"
fi
if [[ -z "$race" ]]; then
  # Without a usable C compiler, cgo must be off for the whole run: with
  # CGO_ENABLED=1 and no compiler, even packages using net fail to build.
  export CGO_ENABLED=0
  echo "NOTE: the tests will run WITHOUT the race detector: $why."
  echo "      Install a C compiler (Debian: apt-get install -y gcc) to run them with -race, as CI does."
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>&1 || true)
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== generated code"
(cd tools && go vet ./...)
bash scripts/genproto.sh --check

if [[ -n "$race" ]]; then
  echo "== go test -race ./..."
else
  echo "== go test ./... WITHOUT the race detector: $why."
  echo "   Install a C compiler (Debian: apt-get install -y gcc) to run with -race, as CI does."
fi
go test $race -count=1 ./...

if [[ -d compat ]]; then
  echo "== compat (against etcd/raft v3.6.0)"
  (cd compat && go vet ./... && go test -count=1 ./...)
fi

if [[ -d benchmarks ]]; then
  # The cross-library benchmark is three modules of its own (etcd server 3.6
  # and 3.7 cannot share one); only vetted here, never run. Its etcd modules
  # need Go 1.26, so older toolchains skip it rather than download one.
  if [[ "$(printf '%s\n' go1.26 "$(go env GOVERSION)" | sort -V | head -1)" == go1.26 ]]; then
    echo "== benchmarks (go vet)"
    for m in benchmarks benchmarks/shared benchmarks/etcd36 benchmarks/etcd37; do
      (cd "$m" && GOTOOLCHAIN=local go vet ./...)
    done
  else
    echo "== benchmarks: skipped (needs Go 1.26)"
  fi
fi

if [[ -z "$race" ]]; then
  echo "NOTE: all checks passed, but WITHOUT the race detector: $why."
fi
