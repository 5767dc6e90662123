/*
 * kernels_avx512.c — the "avx512" kernel set: kernels_x86.inc compiled with AVX-512
 * F/BW/VL/DQ and VNNI (on top of AVX2 + FMA + F16C), chosen on CPUs that have them.
 */
#define IG_X86_VNNI 1
#define IG_X86_SET avx512
#include "kernels_x86.inc"
