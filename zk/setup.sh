#!/usr/bin/env bash
# One-time Groth16 setup of the score-split circuit for N slots and K sketch dimensions.
# Usage: zk/setup.sh N K   (needs `npm ci` in zk/ first; takes minutes on 2 cores)
#
# Writes zk/setup/score_split_N_K/{circuit.wasm,circuit.zkey,verification_key.json} and
# contracts/verifiers/ScoreSplitVerifier{N}x{K}.sol. The powers of tau (2^16, BN254) are
# made here too, once, in zk/build/ (not shipped: 75 MB). These files are a *development*
# setup with one local contribution: a production deployment must run a multi-party
# ceremony (or reuse a public Powers of Tau) and a phase-2 contribution of its own.
set -euo pipefail
N=${1:?slots}; K=${2:?sketch dim}
ZK=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$ZK")
SNARKJS="node $ZK/node_modules/snarkjs/build/cli.cjs"
NAME=score_split_${N}_${K}
BUILD=$ZK/build
OUT=$ZK/setup/$NAME
POWER=${POWER:-16}
mkdir -p "$BUILD" "$OUT" "$ROOT/contracts/verifiers"

if [ ! -f "$BUILD/pot${POWER}_final.ptau" ]; then
  $SNARKJS powersoftau new bn128 "$POWER" "$BUILD/pot${POWER}_0.ptau"
  $SNARKJS powersoftau contribute "$BUILD/pot${POWER}_0.ptau" "$BUILD/pot${POWER}_1.ptau" \
    --name=learning-market -e="learning-market score split setup 2026-11-23"
  $SNARKJS powersoftau prepare phase2 "$BUILD/pot${POWER}_1.ptau" "$BUILD/pot${POWER}_final.ptau"
fi

cat > "$ZK/circuits/$NAME.circom" <<CIRCOM
pragma circom 2.1.6;
include "score_split.circom";
component main {public [projectId, round, budget, total]} = ScoreSplit($N, $K);
CIRCOM
node "$ZK/node_modules/circom2/cli.js" "$ZK/circuits/$NAME.circom" --r1cs --wasm --O2 -o "$BUILD"
$SNARKJS groth16 setup "$BUILD/$NAME.r1cs" "$BUILD/pot${POWER}_final.ptau" "$BUILD/${NAME}_0.zkey"
$SNARKJS zkey contribute "$BUILD/${NAME}_0.zkey" "$OUT/circuit.zkey" \
  --name=learning-market -e="learning-market $NAME phase 2"
$SNARKJS zkey export verificationkey "$OUT/circuit.zkey" "$OUT/verification_key.json"
cp "$BUILD/${NAME}_js/$NAME.wasm" "$OUT/circuit.wasm"
SOL=$ROOT/contracts/verifiers/ScoreSplitVerifier${N}x${K}.sol
# our own (MIT) verifier, generated from the verification key
(cd "$ROOT" && .venv/bin/python -m market.proofs.verifier_gen "$OUT/verification_key.json" "$N" "$K") > "$SOL"
echo "setup done: $OUT, $SOL"
