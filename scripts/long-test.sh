#!/usr/bin/env bash
# The long run of the durability tests (not part of scripts/test.sh, which stays fast): many more simulation
# seeds and steps (concurrent writers, background tasks, checkpoints, the cleaner, crashes inside them; and the
# bucket simulation: a faulty bucket, uploads, lost cache directories with the prefix check), crash
# at every write point for many scripts and crash states (>= 10^5 recoveries), many real kill -9 cycles with
# the cleaner running on a pool directory (KILL_CYCLES) and on a bucket pool in S3Proxy (BUCKET_KILL_CYCLES, >= 50),
# and 10^6 requests of the NBD protocol fuzzer. Figures are printed by the tests;
# docs/fault-model.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
find_java25
ensure_packages
SEEDS=${SIM_SEEDS:-200} STEPS=${SIM_STEPS:-1000} BUCKET_SEEDS=${SIM_BUCKET_SEEDS:-100} SAMPLES=${CRASH_SAMPLES:-100} CRASH_SEEDS=${CRASH_SEEDS:-15} KILLS=${KILL_CYCLES:-200} BUCKET_KILLS=${BUCKET_KILL_CYCLES:-50}
./mvnw -B -q test -Dtest=SimulationTest -Ddedisk.sim.seeds="$SEEDS" -Ddedisk.sim.bucketSeeds="$BUCKET_SEEDS" -Ddedisk.sim.steps="$STEPS"
for seed in $(seq 1 "$CRASH_SEEDS"); do
  ./mvnw -B -q test -Dtest=CrashPointTest -Ddedisk.crash.seed="$seed" -Ddedisk.crash.samples="$SAMPLES"
done
./mvnw -B -q test -Dtest=KillNineTest -Ddedisk.killCycles="$KILLS" -Ddedisk.bucketKillCycles="$BUCKET_KILLS"
./mvnw -B -q test -Dtest=NbdFuzzTest -Ddedisk.long=true -Ddedisk.fuzz.seed="${FUZZ_SEED:-$RANDOM}"
