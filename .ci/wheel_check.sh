#!/usr/bin/env bash
# The package the way users install it: build the wheel from the working tree, install it (not editable, with
# the extra the GitHub Actions example installs) into a fresh virtualenv outside the checkout, and run the
# example's steps (examples/github-actions.yml) on the demo bench from a folder outside the checkout. A file the
# package reads at run time that the wheel lacks fails here, not on a user's machine.
#     .ci/wheel_check.sh                 PYTHON=python3.12 .ci/wheel_check.sh    KEEP=1: keep the scratch folder
# Needs the package index pip is configured with (the fresh virtualenv installs every dependency again).
set -euo pipefail
start=$SECONDS
repo=$(cd "$(dirname "$0")/.." && pwd -P)
work=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/sparkle-wheel-check.XXXXXX")" && pwd -P)
[ "${KEEP:-0}" = 1 ] && echo "scratch folder kept: $work" || trap 'rm -rf "$work"' EXIT
case "$work/" in "$repo"/*) echo "FAIL: scratch folder $work is inside the checkout" >&2; exit 1 ;; esac
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - start)); }
fail() { echo "FAIL: $*" >&2; exit 1; }

# The scratch folder is a foreign git repository (as a project with its .venv inside is): nothing of it may
# pass for the harness's commit.
git -C "$work" init -q && git -C "$work" -c user.name=ci -c user.email=ci@localhost commit -q --allow-empty -m project
step "fresh virtualenv in $work/venv"
# Nothing of the checkout or of an activated environment may reach the installed package.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PYTHONSTARTUP
"${PYTHON:-python3}" -m venv "$work/venv"
venv="$work/venv"
pip() {
    "$venv/bin/python" -m pip --disable-pip-version-check "$@" > "$work/pip.log" 2>&1 \
        || { tail -30 "$work/pip.log" >&2; return 1; }
}

step "wheel from the working tree (tracked and new files, no build leftovers)"
mkdir "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) | while IFS= read -r -d '' f; do
    if [ -f "$repo/$f" ]; then mkdir -p "$work/src/$(dirname "$f")" && cp "$repo/$f" "$work/src/$f"; fi
done
pip wheel --no-deps --wheel-dir "$work/dist" "$work/src"  # isolated build, as `pip install git+...` does
wheel=$(ls "$work"/dist/sparkle_bench-*.whl)
# Every file of the package in the working tree must be in the wheel (a dropped package-data glob fails here).
"$venv/bin/python" - "$wheel" "$work/src" <<'PY'
import sys, zipfile
from pathlib import Path
wheel, src = Path(sys.argv[1]), Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
package = {p.relative_to(src).as_posix() for p in (src / "sparkle_bench").rglob("*") if p.is_file()}
data = sorted(n for n in names if n.startswith("sparkle_bench/") and not n.endswith(".py"))
print(f"{wheel.name}: {len(names)} files, {sum(n.endswith('.py') for n in names)} modules; data files:")
print("\n".join("    " + n for n in data))
missing = sorted(package - names)
if missing:
    sys.exit("FAIL: the wheel lacks these files of the package (pyproject.toml [tool.setuptools.package-data]):\n    "
             + "\n    ".join(missing))
PY

step "install the wheel (not editable) with the example's extra: sparkle-bench[report]"
pip install "$wheel[report]"

mkdir "$work/run" && cd "$work/run"
export PATH="$venv/bin:$PATH" SPARKLE_BENCH_HOME="$work/home" HF_HUB_OFFLINE=1
step "the package and its command come from the fresh virtualenv, not the checkout"
python - "$venv" "$repo" <<'PY'
import shutil, sys
import sparkle_bench
venv, repo = sys.argv[1:]
print("sparkle_bench:", sparkle_bench.__file__)
assert sparkle_bench.__file__.startswith(venv + "/"), f"sparkle_bench imported from {sparkle_bench.__file__}"
leaks = [p for p in sys.path if p == repo or p.startswith(repo + "/")]
assert not leaks, f"the checkout is on sys.path: {leaks}"
assert shutil.which("sparkle-bench") == f"{venv}/bin/sparkle-bench", shutil.which("sparkle-bench")
PY
[ "$(head -1 "$venv/bin/sparkle-bench")" = "#!$venv/bin/python" ] || fail "sparkle-bench runs another interpreter"

quiet() { "$@" > "$work/out.txt" 2>&1 || { code=$?; tail -30 "$work/out.txt" >&2; return $code; }; }
step "example: eval --subset smoke --strict (the version you trust), then baseline"
quiet sparkle-bench eval --bench demo --subset smoke --model reference --run-name trusted --label trusted --strict
mkdir ci && sparkle-bench baseline runs/trusted --out ci/sparkle-baseline.json
python - runs/trusted/provenance.json <<'PY'
import json, sys
provenance = json.load(open(sys.argv[1]))
assert provenance["git_hash"] == "unknown", f"an installed harness recorded the commit {provenance['git_hash']}"
assert provenance["selection"]["subset"] == "smoke", provenance["selection"]
PY
step "example: eval --subset smoke --strict (the candidate: an identical re-run), regress passes"
quiet sparkle-bench eval --bench demo --subset smoke --model reference --run-name ci --label candidate --strict
sparkle-bench regress runs/ci --baseline ci/sparkle-baseline.json > regress.txt 2>&1 || fail "identical re-run: regress exit $?"
sparkle-bench regress runs/ci --baseline ci/sparkle-baseline.json --format md > summary.md
grep -q "^no regression" regress.txt || fail "identical re-run: $(tail -3 regress.txt)"

step "example: a frozen candidate (still-composite) on the same subset: regress exits 1"
quiet sparkle-bench eval --bench demo --subset smoke --model still-composite --run-name frozen --label frozen
set +e; sparkle-bench regress runs/frozen --baseline ci/sparkle-baseline.json > frozen.txt 2>&1; code=$?; set -e
[ $code -eq 1 ] || { cat frozen.txt; fail "frozen candidate: regress exit $code, want 1"; }
grep "^regression: " frozen.txt || fail "frozen candidate: no regression line"
grep -q "^regression: .*bg_dynamics" frozen.txt || fail "frozen candidate: bg_dynamics did not fail"

step "the Python API from a folder outside the checkout"
python -c "import sparkle_bench; r = sparkle_bench.evaluate(bench='demo', model='identity', limit=2, workers=1); \
assert r.exit_code == 0 and int(r.summary.iloc[-1]['n_scored']) == 2, r.summary; print(r.summary.iloc[-1].to_dict())"

step "example: leaderboard and report --published sparkle_bench --copy-media"
sparkle-bench leaderboard runs/ci --published sparkle_bench --format md > leaderboard.md
cat leaderboard.md
paper=$(python -c "import csv, sys; print(next(csv.DictReader(open(sys.argv[1])))['model'])" \
    "$(python -c "from sparkle_bench.tables import LEADERBOARDS; print(LEADERBOARDS / 'sparkle_bench.csv')")")
grep -q "$paper" leaderboard.md || fail "leaderboard lacks the published row '$paper'"
quiet sparkle-bench report runs/ci --published sparkle_bench --copy-media --out report
grep -q "$paper" report/index.html || fail "report lacks the published row '$paper'"
media=$(find report -name "*.mp4" | wc -l)
[ "$media" -gt 0 ] || fail "report --copy-media copied no video"
echo "report: $(find report -type f | wc -l) files, $media videos"

printf '\nwheel check passed in %ds\n' $((SECONDS - start))
