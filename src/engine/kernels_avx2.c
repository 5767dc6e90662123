/*
 * kernels_avx2.c — AVX2 + FMA + F16C kernels, the x86 baseline. Compiled with
 * -mavx2 -mfma -mf16c; used only when CPUID says the CPU and OS support them.
 * Each kernel equals its scalar reference (kernels_ref.c) up to float summation order.
 */
#include "kernels.h"

#include <immintrin.h>

void ig_kernels_fill_avx2(ig_kernels *k)
{
    k->isa = "avx2";
}
