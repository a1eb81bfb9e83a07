#!/usr/bin/env bash
# Runs every test of the island installer, after installing what they need on this machine
# (Debian packages, the virtual environment, the docker engine, the test image; cached).
#
#   tools/test.sh            lint, pytest, every molecule scenario, and the demo island's smoke run
#   tools/test.sh lint       only the linters
#   tools/test.sh pytest     only pytest (extra arguments go to pytest)
#   tools/test.sh molecule   every molecule scenario (or: tools/test.sh molecule SCENARIO...)
#   tools/test.sh demo       the demo island: up, converge again and in check mode (both with zero
#                            changes), down
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib/setup.sh
source tools/lib/setup.sh
island_setup

run_lint() {
  island_log "Lint: yamllint, ansible-lint (production profile, offline), ruff, role argument specs"
  yamllint --strict .
  ansible-lint
  ruff check .
  ruff format --check .
  python3 tools/check_argument_specs.py
}

run_pytest() {
  island_log "pytest"
  pytest "$@"
}

run_molecule() {
  local scenarios=("$@")
  if [ ${#scenarios[@]} -eq 0 ]; then
    for file in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$file")")"); done
  fi
  local started
  for scenario in "${scenarios[@]}"; do
    island_log "molecule test -s $scenario"
    started=$SECONDS
    molecule test -s "$scenario"
    island_log "molecule scenario $scenario passed in $((SECONDS - started)) s"
  done
}

# The README's demo command works from a clean machine, and the island it converges reports zero
# changes in --check. (A second real run on the same topology is the island scenario's idempotence.)
run_demo() {
  island_log "Demo island: up, --check with zero changes, down"
  trap 'tools/demo.sh down' RETURN
  tools/demo.sh up
  tools/demo.sh converge --expect-no-change --check --diff
}

case "${1:-all}" in
  lint) run_lint ;;
  pytest) shift; run_pytest "$@" ;;
  molecule) shift; run_molecule "$@" ;;
  demo) run_demo ;;
  all)
    run_lint
    run_pytest
    run_molecule
    run_demo
    island_log "All tests passed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
    ;;
  *) island_die "unknown part '$1'; use lint, pytest, molecule, demo or nothing for all" ;;
esac
