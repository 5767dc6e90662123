/*
 * kernels_avx2.c — the "avx2" kernel set (AVX2 + FMA + F16C), the x86 baseline:
 * kernels_x86.inc compiled with -mavx2 -mfma -mf16c.
 */
#define IG_X86_VNNI 0
#define IG_X86_SET avx2
#include "kernels_x86.inc"
