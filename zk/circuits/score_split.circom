pragma circom 2.1.6;

// The reward split of one round follows from the committed sketches and the published
// scores (see market/proofs/zk.py for the statement, the fixed-point encoding and why).
//
// Public inputs : projectId, round, budget, total           (the contract supplies them)
// Public outputs: sketchCommit, scoreCommit                 (Poseidon chains, in the report)
// Private       : S[N][K] sketches, C[N] coefficients, P[N] score points, W[N] rewards,
//                 R[N] division remainders (hints checked below)
//
// Constraints:
//   1. sketchCommit = chain of Poseidon over S (row-major), scoreCommit over (C, P, W);
//   2. a flagged or rejected slot (C = 0) earns no points;
//   3. a paid slot (P > 0) points along the others' aggregate: <S_i, sum_{j!=i} C_j S_j> > 0;
//   4. W_i = floor(budget * P_i / sum P) exactly (remainder in [0, sum P)), all 0 if sum P = 0;
//   5. sum W = total.

include "../node_modules/circomlib/circuits/poseidon.circom";
include "../node_modules/circomlib/circuits/bitify.circom";
include "../node_modules/circomlib/circuits/comparators.circom";

// Poseidon over a long vector: h = H(h, 15 values) per step, starting from h = len.
template PoseidonChain(L) {
    signal input in[L];
    signal output out;
    var STEPS = (L + 14) \ 15;
    component h[STEPS];
    signal acc[STEPS + 1];
    acc[0] <== L;
    for (var s = 0; s < STEPS; s++) {
        h[s] = Poseidon(16);
        h[s].inputs[0] <== acc[s];
        for (var t = 0; t < 15; t++) {
            var idx = s * 15 + t;
            if (idx < L) {
                h[s].inputs[t + 1] <== in[idx];
            } else {
                h[s].inputs[t + 1] <== 0;
            }
        }
        acc[s + 1] <== h[s].out;
    }
    out <== acc[STEPS];
}

template ScoreSplit(N, K) {
    // Bit widths: sketches and coefficients are signed/unsigned 31-bit fixed point, points
    // < 2^40, budget and rewards < 2^128, so every product below stays far under the field.
    signal input projectId;
    signal input round;
    signal input budget;
    signal input total;
    signal input S[N][K];
    signal input C[N];
    signal input P[N];
    signal input W[N];
    signal input R[N];
    signal output sketchCommit;
    signal output scoreCommit;

    // -- ranges of the private inputs
    component cBits[N];
    component pBits[N];
    component wBits[N];
    component sBits[N][K];
    for (var i = 0; i < N; i++) {
        cBits[i] = Num2Bits(32);
        cBits[i].in <== C[i];
        pBits[i] = Num2Bits(40);
        pBits[i].in <== P[i];
        wBits[i] = Num2Bits(128);
        wBits[i].in <== W[i];
        for (var k = 0; k < K; k++) {
            sBits[i][k] = Num2Bits(32);
            sBits[i][k].in <== S[i][k] + (1 << 31); // S in [-2^31, 2^31)
        }
    }
    component bBits = Num2Bits(128);
    bBits.in <== budget;

    // -- 1. commitments
    component sc = PoseidonChain(N * K);
    for (var i = 0; i < N; i++) {
        for (var k = 0; k < K; k++) {
            sc.in[i * K + k] <== S[i][k];
        }
    }
    sketchCommit <== sc.out;
    component pc = PoseidonChain(3 * N);
    for (var i = 0; i < N; i++) {
        pc.in[3 * i] <== C[i];
        pc.in[3 * i + 1] <== P[i];
        pc.in[3 * i + 2] <== W[i];
    }
    scoreCommit <== pc.out;

    // -- 2. no points without a coefficient
    component cZero[N];
    for (var i = 0; i < N; i++) {
        cZero[i] = IsZero();
        cZero[i].in <== C[i];
        cZero[i].out * P[i] === 0;
    }

    // -- 3. a paid slot points along the others' aggregate (in sketch space)
    signal terms[N][K];
    signal agg[N + 1][K];
    for (var k = 0; k < K; k++) {
        agg[0][k] <== 0;
    }
    for (var i = 0; i < N; i++) {
        for (var k = 0; k < K; k++) {
            terms[i][k] <== C[i] * S[i][k];
            agg[i + 1][k] <== agg[i][k] + terms[i][k];
        }
    }
    signal prod[N][K];
    signal dot[N][K + 1];
    component pZero[N];
    signal gated[N];
    component dBits[N];
    for (var i = 0; i < N; i++) {
        dot[i][0] <== 0;
        for (var k = 0; k < K; k++) {
            prod[i][k] <== S[i][k] * (agg[N][k] - terms[i][k]);
            dot[i][k + 1] <== dot[i][k] + prod[i][k];
        }
        pZero[i] = IsZero();
        pZero[i].in <== P[i];
        // paid => dot - 1 in [0, 2^120): |dot| < K * N * 2^31 * 2^32 * 2^31 < 2^110
        gated[i] <== (1 - pZero[i].out) * (dot[i][K] - 1);
        dBits[i] = Num2Bits(120);
        dBits[i].in <== gated[i];
    }

    // -- 4. the integer split, and 5. its total
    signal psum[N + 1];
    signal wsum[N + 1];
    psum[0] <== 0;
    wsum[0] <== 0;
    for (var i = 0; i < N; i++) {
        psum[i + 1] <== psum[i] + P[i];
        wsum[i + 1] <== wsum[i] + W[i];
    }
    component tZero = IsZero();
    tZero.in <== psum[N];
    signal divisor;
    divisor <== psum[N] + tZero.out; // 1 when nobody scored (then every W must be 0)
    component rLess[N];
    component rBits[N];
    signal bp[N];
    for (var i = 0; i < N; i++) {
        bp[i] <== budget * P[i];
        bp[i] === W[i] * divisor + R[i];
        rBits[i] = Num2Bits(48);
        rBits[i].in <== R[i];
        rLess[i] = LessThan(48);
        rLess[i].in[0] <== R[i];
        rLess[i].in[1] <== divisor;
        rLess[i].out === 1;
        tZero.out * W[i] === 0;
    }
    wsum[N] === total;

    // bind the round: unused otherwise, squared so the optimiser keeps them
    signal pid2;
    signal round2;
    pid2 <== projectId * projectId;
    round2 <== round * round;
}
