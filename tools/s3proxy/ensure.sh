#!/usr/bin/env bash
# Fetches s3proxy (org.gaul:s3proxy, the jar with dependencies, from Maven Central) once and prints
# the jar's path: the real S3-compatible server of the remote step cache's tests and benchmark
# (packages/driver/src/__tests__/s3proxy.ts starts it on 127.0.0.1 with its filesystem backend).
#
#   tools/s3proxy/ensure.sh            # prints ~/.cache/ms/s3proxy/s3proxy-<version>-jar-with-dependencies.jar
#
# Environment:
#   MS_S3PROXY_VERSION  the version (default below; 4.x runs on Java 17, class files of Java 17)
#   MS_S3PROXY_DIR      where the jar is kept (default ~/.cache/ms/s3proxy)
#   MS_MAVEN_URL        the Maven repository (default Maven Central)
#
# The download is checked against Maven Central's .sha1 and renamed into place only then, so an
# interrupted fetch is never reused; flock keeps two tests from fetching it at the same time.
set -euo pipefail

VERSION="${MS_S3PROXY_VERSION:-4.1.0}"
DIR="${MS_S3PROXY_DIR:-$HOME/.cache/ms/s3proxy}"
REPO="${MS_MAVEN_URL:-https://repo1.maven.org/maven2}"
NAME="s3proxy-$VERSION-jar-with-dependencies.jar"
JAR="$DIR/$NAME"

if [ -s "$JAR" ]; then echo "$JAR"; exit 0; fi
command -v java >/dev/null || { echo "s3proxy needs java (17 or later) on the PATH" >&2; exit 1; }
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w 600 9 || { echo "timed out waiting for another fetch of s3proxy ($DIR/.lock)" >&2; exit 1; }
if [ -s "$JAR" ]; then echo "$JAR"; exit 0; fi

URL="$REPO/org/gaul/s3proxy/$VERSION/$NAME"
TMP="$DIR/.$NAME.$$"
trap 'rm -f "$TMP"' EXIT
echo "fetching $URL" >&2
curl -fsSL --retry 3 --connect-timeout 20 --max-time 600 -o "$TMP" "$URL"
WANT="$(curl -fsSL --retry 3 --connect-timeout 20 --max-time 60 "$URL.sha1" | cut -c1-40)"
GOT="$(sha1sum "$TMP" | cut -c1-40)"
if [ "$WANT" != "$GOT" ]; then echo "s3proxy download $URL: sha1 $GOT, Maven Central says $WANT" >&2; exit 1; fi
mv "$TMP" "$JAR"
echo "$JAR"
