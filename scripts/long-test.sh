#!/usr/bin/env bash
# The long run of the durability tests (not part of scripts/test.sh, which stays fast):
# many more simulation seeds and steps, more crash states per crash point over several scripts, and many real
# kill -9 cycles, and 10^6 requests of the NBD protocol fuzzer. Figures are printed by the tests; docs/fault-model.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
find_java25
ensure_packages
SEEDS=${SIM_SEEDS:-60} STEPS=${SIM_STEPS:-1000} SAMPLES=${CRASH_SAMPLES:-20} KILLS=${KILL_CYCLES:-25}
./mvnw -B -q test -Dtest=SimulationTest -Ddedisk.sim.seeds="$SEEDS" -Ddedisk.sim.steps="$STEPS"
for seed in 1 2 3; do
  ./mvnw -B -q test -Dtest=CrashPointTest -Ddedisk.crash.seed="$seed" -Ddedisk.crash.samples="$SAMPLES"
done
./mvnw -B -q test -Dtest=KillNineTest -Ddedisk.killCycles="$KILLS"
./mvnw -B -q test -Dtest=NbdFuzzTest -Ddedisk.long=true -Ddedisk.fuzz.seed="${FUZZ_SEED:-$RANDOM}"
