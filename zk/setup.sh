#!/usr/bin/env bash
# One-time Groth16 setup of the score-split circuit for N slots and K sketch dimensions.
# Usage: [SHIP=1] [POWER=p] zk/setup.sh N K   (needs `npm ci` in zk/ first)
#
# Writes circuit.wasm, circuit.zkey and verification_key.json, and the Solidity verifier
# ScoreSplitVerifier{N}x{K}.sol (market/proofs/verifier_gen.py):
#   SHIP=1  -> zk/setup/score_split_N_K/ and contracts/verifiers/   (committed: tests, demo)
#   default -> zk/build/setup/score_split_N_K/ (both files there)     (cached, not committed)
# POWER is the powers-of-tau size (2^POWER ≥ constraints + public signals; default: the
# smallest zk/build/pot*_final.ptau that fits the compiled circuit, an error if none does).
# With POWER given, a missing zk/build/pot{POWER}_final.ptau is made here (BN254, one local
# contribution; minutes for 2^14, over an hour for 2^17 on 2 shared cores). These
# are a *development* setup: a production deployment must run a multi-party ceremony (or
# reuse a public Powers of Tau) and a phase-2 contribution of its own.
set -euo pipefail
N=${1:?slots}; K=${2:?sketch dim}
ZK=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$ZK")
cd "$ZK" # circom2 (WebAssembly) only sees files under its working directory
SNARKJS="node node_modules/snarkjs/build/cli.cjs"
NAME=score_split_${N}_${K}
mkdir -p build
if [ "${SHIP:-0}" = 1 ]; then
  OUT=setup/$NAME
  SOL=$ROOT/contracts/verifiers/ScoreSplitVerifier${N}x${K}.sol
else
  OUT=build/setup/$NAME
  SOL=$OUT/ScoreSplitVerifier${N}x${K}.sol
fi
mkdir -p "$OUT"

cat > "build/$NAME.circom" <<CIRCOM
pragma circom 2.1.6;
include "../circuits/score_split.circom";
component main {public [projectId, round, budget, total]} = ScoreSplit($N, $K);
CIRCOM
if [ ! "build/$NAME.r1cs" -nt circuits/score_split.circom ]; then # else compiled already
  node node_modules/circom2/cli.js "build/$NAME.circom" --r1cs --wasm --O2 -o build
fi
if [ -z "${POWER:-}" ]; then
  # constraints + public signals + 1 must fit the 2^POWER evaluation domain
  POWER=$($SNARKJS r1cs info "build/$NAME.r1cs" | awk '
    /# of Constraints/ {c = $NF} /# of Public Inputs/ {p = $NF}
    /# of Outputs/ {o = $NF}
    END {n = c + p + o + 1; k = 0; while (2 ^ k < n) k++; print k}')
  for p in $(seq "$POWER" 28) none; do
    if [ "$p" = none ]; then
      echo "no zk/build/pot{$POWER..28}_final.ptau: make one with POWER=$POWER $0 $N $K" >&2
      exit 1
    fi
    if [ -f "build/pot${p}_final.ptau" ]; then POWER=$p; break; fi
  done
fi
if [ ! -f "build/pot${POWER}_final.ptau" ]; then
  $SNARKJS powersoftau new bn128 "$POWER" "build/pot${POWER}_0.ptau"
  $SNARKJS powersoftau contribute "build/pot${POWER}_0.ptau" "build/pot${POWER}_1.ptau" \
    --name=learning-market -e="learning-market score split setup 2026-11-23"
  $SNARKJS powersoftau prepare phase2 "build/pot${POWER}_1.ptau" "build/pot${POWER}_final.ptau"
fi
$SNARKJS groth16 setup "build/$NAME.r1cs" "build/pot${POWER}_final.ptau" "build/${NAME}_0.zkey"
$SNARKJS zkey contribute "build/${NAME}_0.zkey" "build/${NAME}_1.zkey" \
  --name=learning-market -e="learning-market $NAME phase 2"
rm "build/${NAME}_0.zkey"
$SNARKJS zkey export verificationkey "build/${NAME}_1.zkey" "$OUT/verification_key.json"
cp "build/${NAME}_js/$NAME.wasm" "$OUT/circuit.wasm"
mv "build/${NAME}_1.zkey" "$OUT/circuit.zkey" # last: an interrupted setup leaves no key
# our own (MIT) verifier, generated from the verification key
(cd "$ROOT" && .venv/bin/python -m market.proofs.verifier_gen "zk/$OUT/verification_key.json" "$N" "$K") > "$SOL"
echo "setup done: zk/$OUT, $SOL (2^$POWER powers of tau)"
