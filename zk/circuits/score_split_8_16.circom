pragma circom 2.1.6;
include "score_split.circom";
component main {public [projectId, round, budget, total]} = ScoreSplit(8, 16);
