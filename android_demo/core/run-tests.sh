#!/bin/sh
# Compiles core/ (Java 8 level, like Android's) and its tests with javac, runs them with the
# JUnit 5 console launcher. No Gradle, no Android SDK. The Python side hands over fixtures:
#   KBLM_TRACES=traces.json KBLM_BUNDLE=bundle_dir android_demo/core/run-tests.sh [junit options]
#   (KBLM_CIFG_TRACES / KBLM_CIFG_BUNDLE: traces of a bundle with another cell kind, whose state
#   tensors differ in size: the engine treats state as named arrays)
#   (KBLM_LEXICON_TRACES / KBLM_LEXICON_BUNDLE: traces of the toy bundle with a lexicon, and user
#   words: docs/engine.md §16-§17)
# (tests/android/test_java_core.py writes both from a freshly exported toy bundle).
# Debian: apt-get install default-jdk-headless junit5 libandroid-json-java
set -eu
core=$(cd "$(dirname "$0")" && pwd)
junit=${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}
json=${ANDROID_JSON_JAR:-/usr/share/java/com.android.json.jar}
missing=""
command -v javac >/dev/null 2>&1 || missing="$missing javac (default-jdk-headless)"
[ -f "$junit" ] || missing="$missing $junit (junit5)"
[ -f "$json" ] || missing="$missing $json (libandroid-json-java)"
if [ -n "$missing" ]; then
  echo "error: missing:$missing; install with apt-get install default-jdk-headless junit5 libandroid-json-java" >&2
  exit 2
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
find "$core/src/main/java" -name '*.java' > "$build/main.txt"
find "$core/src/test/java" -name '*.java' > "$build/test.txt"
javac -Xlint:all -Xlint:-options -Werror --release 8 -encoding UTF-8 -cp "$json" -d "$build/main" @"$build/main.txt"
cp -R "$core/src/main/resources/." "$build/main/"
javac --release 17 -encoding UTF-8 -cp "$json:$junit:$build/main" -d "$build/test" @"$build/test.txt"
scan=--scan-class-path=$build/test  # unless a selector is given, e.g. --select-class keyboardlm.core.TokenizerParityTest
for arg in "$@"; do case $arg in --select*) scan="" ;; esac; done
java -Xss4m \
  -Dkblm.tokenizerFixture="${KBLM_TOKENIZER_FIXTURE:-$core/fixtures/tokenizer.json}" \
  -Dkblm.traces="${KBLM_TRACES:-}" -Dkblm.bundle="${KBLM_BUNDLE:-}" \
  -Dkblm.cifg.traces="${KBLM_CIFG_TRACES:-}" -Dkblm.cifg.bundle="${KBLM_CIFG_BUNDLE:-}" \
  -Dkblm.lexicon.traces="${KBLM_LEXICON_TRACES:-}" -Dkblm.lexicon.bundle="${KBLM_LEXICON_BUNDLE:-}" \
  -jar "$junit" --disable-banner --details=tree --fail-if-no-tests \
  --class-path "$json:$build/main:$build/test" $scan "$@"
