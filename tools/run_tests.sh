#!/usr/bin/env bash
# Every check CI runs, counted: notebook/library sync, nbdev-test per notebook, pytest, experiment notebooks
# through papermill in smoke mode, every notebook rendered as a page (.ci/out/docs/) with its figures seen in Chromium.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
# Run it through `make test` (which installs first) or directly inside the project's virtual environment.
set -u
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
passed=0; failed=0; failures=()
log_dir=${TEST_LOG_DIR:-.ci/out}; mkdir -p "$log_dir"
ok()   { passed=$((passed + $1)); }
bad()  { failed=$((failed + $1)); failures+=("$2"); }
step() { echo; echo "== $*"; }

step "notebooks and library in sync (nbdev-clean, nbdev-export leave git clean)"
nbdev-clean >/dev/null 2>&1; nbdev-export >/dev/null 2>&1
dirty=$(git status --porcelain --untracked-files=all -- nbs fusar_klip)
if [ -z "$dirty" ]; then echo "clean"; ok 1; else echo "$dirty"; git --no-pager diff --stat; bad 1 "sync: nbdev-clean/nbdev-export changed tracked files"; fi

step "nbdev-test (each notebook under nbs/, experiments excluded)"
for nb in nbs/[0-9]*.ipynb nbs/index.ipynb; do
  [ -f "$nb" ] || continue
  start=$(date +%s)
  if nbdev-test "$nb" >"$log_dir/nbdev-$(basename "$nb").log" 2>&1; then ok 1; r=passed
  else bad 1 "nbdev-test $nb"; r=FAILED; tail -n 30 "$log_dir/nbdev-$(basename "$nb").log"; fi
  echo "$nb: $r ($(( $(date +%s) - start ))s)"
done

step "pytest"
python -m pytest -p no:cacheprovider --junitxml="$log_dir/pytest.xml" -q tests
rc=$?
read p f < <(python - "$log_dir/pytest.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try: r = ET.parse(sys.argv[1]).getroot()
except Exception: print(0, 1); raise SystemExit
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(t - f - e - sk, f + e)
PY
)
ok "$p"; [ "$f" -gt 0 ] && bad "$f" "pytest: $f failed"
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$rc" -ne 5 ] && bad 1 "pytest exited $rc"

step "experiment notebooks through papermill (smoke parameters)"
for nb in nbs/experiments/*.ipynb; do
  [ -f "$nb" ] || continue
  start=$(date +%s)
  # figures inline (not Agg) so that the executed notebooks show them and the docs step can reuse them
  if MPLBACKEND=module://matplotlib_inline.backend_inline \
     papermill -k python3 --language python --cwd nbs/experiments "$nb" "$log_dir/$(basename "$nb")" >"$log_dir/pm-$(basename "$nb").log" 2>&1
  then ok 1; r=passed; else bad 1 "papermill $nb"; r=FAILED; tail -n 30 "$log_dir/pm-$(basename "$nb").log"; fi
  echo "$nb: $r ($(( $(date +%s) - start ))s)"
done

step "notebooks rendered as pages (tools/build_docs.py, experiments reused from papermill) -> $log_dir/docs/index.html"
start=$(date +%s)
if python tools/build_docs.py --reuse "$log_dir" --out "$log_dir/docs" --timeout 600 >"$log_dir/docs.log" 2>&1
then ok 1; r=passed; else bad 1 "docs: a notebook failed to render (see $log_dir/docs.log)"; r=FAILED; fi
cat "$log_dir/docs.log"; echo "docs: $r ($(( $(date +%s) - start ))s)"
out=$(FUSAR_KLIP_DOCS="$log_dir/docs" python -m pytest -p no:cacheprovider -q -rs tests/test_docs.py -k test_built_docs 2>&1)
rc=$?; echo "$out" | tail -n 15
if [ "$rc" -ne 0 ]; then bad 1 "docs: figures missing in Chromium (tests/test_docs.py::test_built_docs)"
elif echo "$out" | grep -q "skipped"; then echo "figures in Chromium: skipped (see the reason above)"
else ok 1; fi

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
