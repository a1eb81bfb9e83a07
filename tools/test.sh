#!/usr/bin/env bash
# Runs every test of the island installer, after installing what they need on this machine
# (Debian packages, the virtual environment, the docker engine, the test image; cached).
#
#   tools/test.sh            lint, then pytest, every molecule scenario and the demo island's smoke
#                            run, side by side in lanes
#   tools/test.sh lint       only the linters
#   tools/test.sh pytest     only pytest (extra arguments go to pytest)
#   tools/test.sh molecule   every molecule scenario (or: tools/test.sh molecule SCENARIO...)
#   tools/test.sh demo       the demo island: up, converge again and in check mode (both with zero
#                            changes), down
#
# At the end, passed or failed, a table gives each stage's time: lint, pytest, the molecule stage
# and each of its scenarios, the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib/setup.sh
source tools/lib/setup.sh

# Stage times: one "name<TAB>seconds<TAB>result" line per stage, appended (the molecule lanes are
# subshells, so a file rather than a variable), printed as a table when the script exits.
ISLAND_STAGE_TIMES=$(mktemp)
_stage="" _stage_started=0
record_time() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$ISLAND_STAGE_TIMES"; }
stage_begin() { _stage=$1 _stage_started=$SECONDS; }
stage_end() { record_time "$_stage" $((SECONDS - _stage_started)) passed; _stage=""; }
print_stage_times() {
  # A stage still open when the script exits is the one that failed.
  [ -z "$_stage" ] || record_time "$_stage" $((SECONDS - _stage_started)) FAILED
  if [ -s "$ISLAND_STAGE_TIMES" ]; then
    {
      printf '\n%-28s %9s  %s\n' "stage" "time" "result"
      while IFS=$'\t' read -r name seconds result; do
        printf '%-28s %5d:%02d  %s\n' "$name" $((seconds / 60)) $((seconds % 60)) "$result"
      done <"$ISLAND_STAGE_TIMES"
    } >&2
  fi
  rm -f "$ISLAND_STAGE_TIMES"
}
trap print_stage_times EXIT

stage_begin "setup"
island_setup
stage_end

run_lint() {
  island_log "Lint: yamllint, ansible-lint (production profile, offline), ruff, role argument specs, Prometheus rules"
  stage_begin "lint"
  yamllint --strict .
  ansible-lint
  ruff check .
  ruff format --check .
  python3 tools/check_argument_specs.py
  # The monitoring role's Prometheus rules, by Prometheus's own checker (Debian's promtool, which
  # island_setup installs); their behaviour is proved by `promtool test rules` in pytest.
  promtool check rules roles/monitoring/files/rules/*.yml
  stage_end
}

run_pytest() {
  island_log "pytest"
  stage_begin "pytest"
  pytest "$@"
  stage_end
}

# One scenario, its output in .cache/logs/molecule-<scenario>.log; prints a line when it ends. The
# pseudo-scenario `demo` is the demo island's smoke run (run_demo), and `pytest` the whole of pytest
# (its log .cache/logs/pytest.log), each scheduled in a lane like the rest.
# A scenario whose platforms name ISLAND_TEST_IMAGE_TRIXIE runs on Debian 13: its image is built
# first (once; cached in docker), in the scenario's lane and log, so no other lane waits for it.
run_scenario() {
  local scenario=$1 log=$ISLAND_CACHE/logs/molecule-$1.log started=$SECONDS
  # Scenarios run on the molecule venv's ansible-core 2.18 (requirements-molecule.txt says why).
  local command=(env "PATH=$ISLAND_MOLECULE_VENV/bin:$PATH" "VIRTUAL_ENV=$ISLAND_MOLECULE_VENV"
    molecule test -s "$1")
  [ "$scenario" != demo ] || command=(run_demo)
  local label="molecule $scenario"
  [ "$scenario" != pytest ] || { command=(pytest --durations=25); log=$ISLAND_CACHE/logs/pytest.log label=pytest; }
  : >"$log"
  if grep -qs ISLAND_TEST_IMAGE_TRIXIE "molecule/$scenario/molecule.yml"; then
    command=(run_on_trixie "${command[@]}")
  fi
  if "${command[@]}" >>"$log" 2>&1; then
    island_log "$label passed in $((SECONDS - started)) s"
    [ "$scenario" != pytest ] || tail -n 1 "$log"
    record_time "  $label" $((SECONDS - started)) passed
  else
    island_log "$label FAILED after $((SECONDS - started)) s; the end of $log:"
    record_time "  $label" $((SECONDS - started)) FAILED
    tail -n 400 "$log" >&2
    return 1
  fi
}

run_on_trixie() {
  island_setup_image_trixie && "$@"
}

# Every scenario (or the ones named). The scenarios are independent (their own containers, docker
# networks and subnets), so they run in ISLAND_MOLECULE_LANES lanes at once (default 2: most of a
# scenario's time is spent waiting on systemd, TLS handshakes and retries, not on the 2 cores), each
# lane taking its scenarios in turn, longest first. A failed scenario prints the end of its log.
run_molecule() {
  local scenarios=("$@") lanes=${ISLAND_MOLECULE_LANES:-2}
  if [ ${#scenarios[@]} -eq 0 ]; then
    for file in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$file")")"); done
  fi
  mkdir -p "$ISLAND_CACHE/logs"
  stage_begin "lanes ($lanes at once)"
  # Rough minutes per scenario with two lanes busy on a 2-core machine (this script's table, CI runs
  # of 2026-12-04: pytest 14.5, island 8 before the recovery checks of issue 18 and about 15 with
  # them, minio 4 to 8, registry 3 to 6, demo 3.5, gitea 3.5, dns 2, pki and preflight 1), to balance
  # the lanes (unknown: 5).
  declare -A cost=([pytest]=15 [island]=15 [demo]=4 [minio]=4 [registry]=3 [gitea]=3 [dns]=2 [pki]=1 [preflight]=1)
  local ordered lane_of=() load=() i best scenario
  ordered=$(for scenario in "${scenarios[@]}"; do echo "${cost[$scenario]:-5} $scenario"; done | sort -rn | cut -d' ' -f2)
  for ((i = 0; i < lanes; i++)); do load[i]=0; lane_of[i]=""; done
  for scenario in $ordered; do
    best=0
    for ((i = 1; i < lanes; i++)); do [ "${load[i]}" -lt "${load[best]}" ] && best=$i; done
    lane_of[best]+=" $scenario"
    load[best]=$((load[best] + ${cost[$scenario]:-5}))
  done
  local pids=() failed=0
  for ((i = 0; i < lanes; i++)); do
    [ -n "${lane_of[i]}" ] || continue
    island_log "lane $((i + 1)):${lane_of[i]}"
    (
      status=0
      for scenario in ${lane_of[i]}; do run_scenario "$scenario" || status=1; done
      exit $status
    ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ $failed -eq 0 ] || island_die "a molecule scenario failed (its log is printed above and kept in $ISLAND_CACHE/logs)"
  stage_end
}

# The README's demo command works from a clean machine, and the island it converges reports zero
# changes in --check. (A further real run on that topology, with zero changes, ends the island scenario.)
run_demo() {
  island_log "Demo island: up, --check with zero changes, down"
  trap 'tools/demo.sh down' RETURN
  # Chained with &&: in a lane this runs as an `if` condition, where set -e does not apply.
  tools/demo.sh up && tools/demo.sh converge --expect-no-change --check --diff
}

case "${1:-all}" in
  lint) run_lint ;;
  pytest) shift; run_pytest "$@" ;;
  molecule) shift; run_molecule "$@" ;;
  demo) stage_begin demo; run_demo; stage_end ;;
  all)
    run_lint
    # pytest and the demo run in lanes beside the scenarios (the demo on its own hosts and network;
    # pytest on loopback), so the two cores stay busy while a scenario waits on its hosts.
    scenarios=()
    for file in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$file")")"); done
    run_molecule pytest "${scenarios[@]}" demo
    island_log "All tests passed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
    ;;
  *) island_die "unknown part '$1'; use lint, pytest, molecule, demo or nothing for all" ;;
esac
