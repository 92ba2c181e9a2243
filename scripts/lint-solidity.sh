#!/usr/bin/env bash
# Static checks of the Solidity sources: solhint (npm) and Slither (PyPI), each installed
# once into .market-cache (idempotent; no project dependency changes). Any finding fails.
#
# Justified exclusions (see SECURITY.md, "Static analysis"):
#  solhint, contracts/test/*.sol — hostile test contracts: assembly, complex receive(),
#    low-level calls and reverting with strings are what they exist to do.
#  solhint, contracts/verifiers/*.sol — generated Groth16 verifiers: assembly calls the
#    pairing precompiles, as every snarkjs-style verifier does.
#  slither on LearningMarket.sol:
#    arbitrary-send-eth — _pay only ever pays msg.sender (claim, claimMany, claimExpired, refund by
#      the owner) an amount fixed by state; pull payments, nobody chooses the recipient.
#    divide-before-multiply — expireRound: share = budget / reveals, total = share * reveals
#      on purpose (equal shares, the remainder refundable; tested to the wei).
#    timestamp — windows of minutes to days; a proposer's seconds of drift cannot matter.
#    low-level-calls — _pay uses call{value} to forward gas to contract receivers, checks
#      the result and reverts TransferFailed; ReentrancyGuardTransient on every paying function.
#  Dependencies (node_modules/@openzeppelin) are filtered out.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.market-cache
SOLHINT_VERSION=5.2.0
SLITHER_VERSION=0.11.6

if [ ! -x "$CACHE/solhint/node_modules/.bin/solhint" ]; then
  npm install --prefix "$CACHE/solhint" --no-audit --no-fund --loglevel=error \
    "solhint@$SOLHINT_VERSION"
fi
if [ ! -x "$CACHE/slither/bin/slither" ]; then
  python3 -m venv "$CACHE/slither"
  "$CACHE/slither/bin/pip" install -q --disable-pip-version-check \
    "slither-analyzer==$SLITHER_VERSION"
fi
SOLC="$CACHE/slither/solc"
printf '#!/bin/sh\nNODE_PATH="%s/node_modules" exec node "%s/scripts/slither-solc.js" "$@"\n' \
  "$PWD" "$PWD" > "$SOLC"
chmod +x "$SOLC"

SOLHINT="$CACHE/solhint/node_modules/.bin/solhint"
echo "solhint: contracts/LearningMarket.sol (recommended rules, no warning allowed)"
"$SOLHINT" --disc -c scripts/solhint.json --max-warnings 0 contracts/LearningMarket.sol
echo "solhint: test and generated contracts (documented exclusions)"
"$SOLHINT" --disc -c scripts/solhint-hostile.json --max-warnings 0 \
  'contracts/test/*.sol' 'contracts/verifiers/*.sol'
echo "slither: contracts/LearningMarket.sol"
"$CACHE/slither/bin/slither" contracts/LearningMarket.sol \
  --solc "$SOLC" --solc-remaps "@openzeppelin/=node_modules/@openzeppelin/" \
  --filter-paths node_modules \
  --exclude arbitrary-send-eth,divide-before-multiply,timestamp,low-level-calls
echo "solidity lint: clean"
