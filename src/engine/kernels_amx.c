/*
 * kernels_amx.c — the "amx" kernel set: the avx512 set (kernels_x86.inc with AVX-512
 * F/BW/VL/DQ and VNNI) whose block-32 prefill multiplies on the AMX tile unit
 * (AMX-TILE + AMX-INT8), chosen on CPUs that have it once the OS grants this process
 * the tile state.
 */
#define IG_X86_VNNI 1
#define IG_X86_AMX 1
#define IG_X86_SET amx
#include "kernels_x86.inc"
