#!/usr/bin/env bash
# Install the pinned Weaviate server binary into the project cache (built from source with `go install`).
#
#   WEAVIATE_VERSION   version tag to build            (default v1.35.2, matches recommender/deploy_settings.py)
#   RECSYS_CACHE_DIR   cache root                      (default $HOME/.cache/recsys)
#
# Result: $RECSYS_CACHE_DIR/weaviate/$WEAVIATE_VERSION/weaviate-server
# Re-running is a no-op once the binary is there. The build goes to a temporary directory and the
# binary is moved into place with one rename, so an interrupted build never leaves a partial binary.
set -euo pipefail

VERSION=${WEAVIATE_VERSION:-v1.35.2}
CACHE=${RECSYS_CACHE_DIR:-$HOME/.cache/recsys}
TARGET_DIR="$CACHE/weaviate/$VERSION"
TARGET="$TARGET_DIR/weaviate-server"
PACKAGE="github.com/weaviate/weaviate/cmd/weaviate-server@$VERSION"

if [[ -x "$TARGET" && -f "$TARGET" ]]; then
    echo "Weaviate $VERSION already installed, reusing: $TARGET"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain ('go') is not on PATH; it is needed to build Weaviate $VERSION." >&2
    echo "       Install Go >= 1.25 (https://go.dev/dl/ or your package manager), then re-run $0." >&2
    echo "       Alternatively put a prebuilt weaviate-server binary at $TARGET" >&2
    echo "       or set RECSYS_WEAVIATE__BINARY to its path." >&2
    exit 1
fi

mkdir -p "$TARGET_DIR"
# Temporary dir on the same filesystem as the target so the final `mv` is an atomic rename.
TMP_DIR=$(mktemp -d "$TARGET_DIR/.build.XXXXXX")
trap 'rm -rf "$TMP_DIR"' EXIT

# Weaviate builds with or without cgo; use cgo only when a C compiler is around.
if [[ -z "${CGO_ENABLED:-}" ]]; then
    if command -v "${CC:-cc}" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then
        CGO_ENABLED=1
    else
        CGO_ENABLED=0
    fi
fi
export CGO_ENABLED
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

echo "Building Weaviate $VERSION with $(go version | cut -d' ' -f3) (CGO_ENABLED=$CGO_ENABLED); this takes a few minutes..."
GOBIN="$TMP_DIR" go install "$PACKAGE"

if [[ ! -x "$TMP_DIR/weaviate-server" ]]; then
    echo "error: go install finished but $TMP_DIR/weaviate-server was not produced" >&2
    exit 1
fi
mv -f "$TMP_DIR/weaviate-server" "$TARGET"
echo "Installed Weaviate $VERSION: $TARGET"
