#!/usr/bin/env bash
# Mutation testing of the core modules (README "Mutation testing"): each module of
# [tool.tracker-mutation.modules] in pyproject.toml is mutated by mutmut against its own fast tests
# (not e2e, not the browser), in a work folder of its own under .mutation/, and the score per module
# is printed at the end. Run by hand: it takes minutes per module, too slow for CI.
#
#   tests/mutation.sh                         every core module
#   tests/mutation.sh tracker/tokens.py ...   only these
#   tests/mutation.sh --show ...              also print the diff of every unexplained survivor
#   tests/mutation.sh --only=run_report,Row.add tracker/reports/queries.py   only these functions' mutants
#
# Needs mutmut 3.8 (pip install -e ".[mutation]"). Runs niced, two workers (one on PostgreSQL:
# TRACKER_TEST_DATABASE_URL=... tests/mutation.sh ...); in a time zone other
# than UTC, so a mutant that reads the machine's local time instead of UTC is caught.
set -euo pipefail
cd "$(dirname "$0")/.."
export TZ=${MUTATION_TZ:-America/New_York}
exec nice -n 10 python tests/mutation.py "$@"
