#!/bin/sh
# scripts/check_docs.py: it passes on the repository, and it fails, naming file:line, on a small
# repository with each kind of broken reference (missing file, missing anchor, missing cited
# section, a mention of a file that does not exist).
set -eu
CHECK="$1/scripts/check_docs.py"
ROOT="$1"

python3 "$CHECK" "$ROOT"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
git init -q .
mkdir docs
printf '# Guide\n\n## Real section\n\ntext\n' > docs/guide.md
cat > README.md <<'MD'
# Top
[ok](docs/guide.md#real-section) [gone](docs/nothing.md) [bad anchor](docs/guide.md#no-such)
MD
printf '// see docs/guide.md "Real section" and docs/guide.md "Invented"\n// NUMBERS.md\n' > code.h
git add . >/dev/null
if python3 "$CHECK" "$TMP" > out.txt 2>&1; then
  echo "check_docs.py passed a repository with broken references"; cat out.txt; exit 1
fi
for want in 'README.md:2: link to missing file docs/nothing.md' \
            'README.md:2: docs/guide.md has no section #no-such' \
            'code.h:1: docs/guide.md has no section "Invented"' \
            'code.h:2: NUMBERS.md does not exist'; do
  grep -qF "$want" out.txt || { echo "missing: $want"; cat out.txt; exit 1; }
done
if grep -q 'Real section\|real-section' out.txt; then
  echo "a valid reference was reported"; cat out.txt; exit 1
fi
echo "check_docs: ok"
