/*
 * kernels_avx512.c — the "avx512" kernel set: kernels_x86.inc compiled with AVX-512
 * F/BW/VL/DQ and VNNI (on top of AVX2 + FMA + F16C), chosen on CPUs that have them.
 */
#define IG_X86_VNNI 1
#define IG_X86_SET avx512
/* Block-32 prefill tiles of 4 rows x 4 tokens: with 32 vector registers the sixteen
 * accumulators stay in registers (AVX2's 16 registers hold 2 x 4). Measured on one
 * core, best of alternated runs: 4 x 4 reached ~105 GFLOP/s where 2 x 4 reached ~92. */
#define B32_PR 4
#define B32_PT 4
#include "kernels_x86.inc"
