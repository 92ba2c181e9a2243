pragma circom 2.1.6;

// The scores and the reward split of one round follow from the committed sketches under the
// proof-mode scoring rule (market/aggregator/scoring.py `sketch_scores`, exact integers;
// market/proofs/zk.py states the statement and the precision).
//
// Public inputs : projectId, round, budget, total           (the contract supplies them)
// Public outputs: sketchCommit, scoreCommit                 (Poseidon chains, in the report)
// Private       : S[N][K] sketches (SB-bit signed), C[N] coefficients (ΣC < 2^CB),
//                 P[N] score points, W[N] rewards; hints Q[N] (integer square roots),
//                 A[N] (shifted alignments), G[N] (alignment above the floor?), all checked.
//
// With A = Σ_j C_j S_j, a₋ᵢ = A − C_i S_i (or A when that is 0: alone in the aggregate):
//   align_i = ⌊2^F · ⟨S_i, a₋ᵢ⟩ / q_i⌋,   q_i = ⌊√(‖S_i‖² ‖a₋ᵢ‖²)⌋ (1 when 0)
//   raw_i   = C_i · max(0, align_i − TAU) if ‖S_i‖² ≥ 4 (else 0: a free-rider's sketch)
//   |P_i · Σraw − 10^12 · raw_i| < Σraw (P_i is 10^12·raw_i/Σraw rounded either way; all 0
//   when Σraw = 0), W_i = ⌊budget · P_i / ΣP⌋ (0 when ΣP = 0), Σ W = total.
// Commitments pack several range-checked values into one field element before hashing.

include "../node_modules/circomlib/circuits/poseidon.circom";
include "../node_modules/circomlib/circuits/bitify.circom";
include "../node_modules/circomlib/circuits/comparators.circom";

// in ∈ [0, 2^B) as an integer.
template Range(B) {
    signal input in;
    component bits = Num2Bits(B);
    bits.in <== in;
}

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

function ceilLog2(x) {
    var r = 0;
    while ((1 << r) < x) {
        r++;
    }
    return r;
}

template ScoreSplit(N, K) {
    var SB = 12;             // sketch bits: S ∈ [−2^11, 2^11)
    var CB = 22;             // coefficients: C = round(c · 2^20), ΣC < 2^22
    var F = 16;              // alignment fixed point
    var TAU = 6554;          // round(0.1 · 2^16): ALIGNMENT_FLOOR
    var SCALE = 1000000000000; // score points per unit score (SCORE_SCALE)
    var PB = 41;             // points ≤ 10^12 + 1 < 2^41
    var WB = 96;             // budget and rewards < 2^96 wei
    var LK = ceilLog2(K);
    var LN = ceilLog2(N);
    var PER = 253 \ SB;      // sketch values packed per field element
    var QB = LK + CB + 2 * SB - 2;  // q ≤ √(‖S‖²‖a‖²) < K · 2^(CB + 2SB − 2)
    var TB = CB + F + LN;    // Σraw < N · 2^(CB + F)
    var DB = PB + LN;        // ΣP < N · 2^PB

    signal input projectId;
    signal input round;
    signal input budget;
    signal input total;
    signal input S[N][K];
    signal input C[N];
    signal input P[N];
    signal input W[N];
    signal input Q[N];
    signal input A[N];
    signal input G[N];
    signal output sketchCommit;
    signal output scoreCommit;

    // -- ranges of the committed values (they also make the packing below injective)
    component sRange[N][K];
    component cRange[N];
    component pRange[N];
    component wRange[N];
    for (var i = 0; i < N; i++) {
        for (var k = 0; k < K; k++) {
            sRange[i][k] = Range(SB);
            sRange[i][k].in <== S[i][k] + (1 << (SB - 1));
        }
        cRange[i] = Range(CB);
        cRange[i].in <== C[i];
        pRange[i] = Range(PB);
        pRange[i].in <== P[i];
        wRange[i] = Range(WB);
        wRange[i].in <== W[i];
    }
    component bRange = Range(WB);
    bRange.in <== budget;
    var csum = 0;
    for (var i = 0; i < N; i++) {
        csum += C[i];
    }
    component cSum = Range(CB);
    cSum.in <== csum;

    // -- commitments over packed values (linear: no constraints for the packing)
    var CELLS = (N * K + PER - 1) \ PER;
    component sc = PoseidonChain(CELLS);
    for (var c = 0; c < CELLS; c++) {
        var cell = 0;
        for (var t = 0; t < PER; t++) {
            var idx = c * PER + t;
            if (idx < N * K) {
                cell += (S[idx \ K][idx % K] + (1 << (SB - 1))) * (1 << (SB * t));
            }
        }
        sc.in[c] <== cell;
    }
    sketchCommit <== sc.out;
    component pc = PoseidonChain(N);
    for (var i = 0; i < N; i++) {
        pc.in[i] <== C[i] + P[i] * (1 << CB) + W[i] * (1 << (CB + PB));
    }
    scoreCommit <== pc.out;

    // -- the aggregate A = Σ C_j S_j and the per-slot inner products
    signal cs[N][K];
    signal sa[N][K];
    signal ss[N][K];
    signal agg2[K];
    var agg[K];
    var aa = 0;
    for (var k = 0; k < K; k++) {
        agg[k] = 0;
        for (var j = 0; j < N; j++) {
            cs[j][k] <== C[j] * S[j][k];
            agg[k] += cs[j][k];
        }
        agg2[k] <== agg[k] * agg[k];
        aa += agg2[k];
    }
    signal norm[N];     // ‖S_i‖²
    signal dotA[N];     // ⟨S_i, A⟩
    signal cn[N];       // C_i ‖S_i‖²
    signal m0a[N];
    signal m0[N];       // ‖a₋ᵢ‖² = ‖A‖² − 2C_i⟨S_i,A⟩ + C_i²‖S_i‖²
    component mZero[N];
    signal dotAlone[N];
    signal mAlone[N];
    signal dot[N];      // ⟨S_i, a₋ᵢ⟩ (with a₋ᵢ := A when it is 0)
    signal m[N];
    signal X[N];
    signal q2[N];
    component r1Low[N];
    component r1High[N];
    component qZero[N];
    signal qd[N];
    signal aq[N];
    component r2Low[N];
    component r2High[N];
    signal gd[N];
    signal gsel[N];
    component gRange[N];
    signal g[N];
    signal n1[N];
    signal n2[N];
    signal n3[N];
    component rider[N];
    signal cg[N];
    signal raw[N];
    for (var i = 0; i < N; i++) {
        var nn = 0;
        var da = 0;
        for (var k = 0; k < K; k++) {
            sa[i][k] <== S[i][k] * agg[k];
            ss[i][k] <== S[i][k] * S[i][k];
            da += sa[i][k];
            nn += ss[i][k];
        }
        norm[i] <== nn;
        dotA[i] <== da;
        cn[i] <== C[i] * norm[i];
        m0a[i] <== C[i] * (cn[i] - 2 * dotA[i]);
        m0[i] <== aa + m0a[i];
        mZero[i] = IsZero();
        mZero[i].in <== m0[i];
        dotAlone[i] <== mZero[i].out * cn[i];
        dot[i] <== dotA[i] - cn[i] + dotAlone[i];
        mAlone[i] <== mZero[i].out * aa;
        m[i] <== m0[i] + mAlone[i];

        // q = ⌊√(norm · m)⌋: q² ≤ X ≤ q² + 2q
        X[i] <== norm[i] * m[i];
        q2[i] <== Q[i] * Q[i];
        r1Low[i] = Range(QB + 1);
        r1Low[i].in <== X[i] - q2[i];
        r1High[i] = Range(QB + 1);
        r1High[i].in <== 2 * Q[i] - (X[i] - q2[i]);

        // A = ⌊2^F (dot + q') / q'⌋ with q' = max(q, 1); |dot| ≤ q, so the numerator is ≥ 0
        // and align = A − 2^F = ⌊2^F dot / q'⌋
        qZero[i] = IsZero();
        qZero[i].in <== Q[i];
        qd[i] <== Q[i] + qZero[i].out;
        aq[i] <== A[i] * qd[i];
        r2Low[i] = Range(QB);
        r2Low[i].in <== (1 << F) * (dot[i] + qd[i]) - aq[i];
        r2High[i] = Range(QB);
        r2High[i].in <== qd[i] - 1 - ((1 << F) * (dot[i] + qd[i]) - aq[i]);

        // g = max(0, align − TAU): G says which side, the range check holds it to it
        G[i] * (G[i] - 1) === 0;
        gd[i] <== A[i] - (1 << F) - TAU;
        gsel[i] <== G[i] * (2 * gd[i] + 1);
        gRange[i] = Range(F + 2);
        gRange[i].in <== gsel[i] - gd[i] - 1; // G: gd, else −gd − 1
        g[i] <== G[i] * gd[i];

        // free-rider: ‖S_i‖² ∈ {0, 1, 2, 3}
        n1[i] <== norm[i] * (norm[i] - 1);
        n2[i] <== n1[i] * (norm[i] - 2);
        n3[i] <== n2[i] * (norm[i] - 3);
        rider[i] = IsZero();
        rider[i].in <== n3[i];
        cg[i] <== C[i] * g[i];
        raw[i] <== cg[i] * (1 - rider[i].out);
    }

    // -- points: P_i within one point of 10^12 raw_i / Σraw (all 0 when Σraw = 0)
    var rsum = 0;
    var psum = 0;
    var wsum = 0;
    for (var i = 0; i < N; i++) {
        rsum += raw[i];
        psum += P[i];
        wsum += W[i];
    }
    component tZero = IsZero();
    tZero.in <== rsum;
    signal tDiv;
    tDiv <== rsum + tZero.out;
    signal pt[N];
    component eLow[N];
    component eHigh[N];
    for (var i = 0; i < N; i++) {
        pt[i] <== P[i] * tDiv;
        eLow[i] = Range(TB + 1);
        eLow[i].in <== pt[i] - SCALE * raw[i] + tDiv - 1;
        eHigh[i] = Range(TB + 1);
        eHigh[i].in <== tDiv - 1 - (pt[i] - SCALE * raw[i]);
    }

    // -- rewards: W_i = ⌊budget · P_i / ΣP⌋ (remainder in [0, ΣP)), Σ W = total
    component dZero = IsZero();
    dZero.in <== psum;
    signal divisor;
    divisor <== psum + dZero.out; // 1 when nobody scored: then every P, so every W, is 0
    signal bp[N];
    signal wd[N];
    component remLow[N];
    component remHigh[N];
    for (var i = 0; i < N; i++) {
        bp[i] <== budget * P[i];
        wd[i] <== W[i] * divisor;
        remLow[i] = Range(DB);
        remLow[i].in <== bp[i] - wd[i];
        remHigh[i] = Range(DB);
        remHigh[i].in <== divisor - 1 - (bp[i] - wd[i]);
    }
    wsum === total;

    // bind the round: unused otherwise, squared so the optimiser keeps them
    signal pid2;
    signal round2;
    pid2 <== projectId * projectId;
    round2 <== round * round;
}
