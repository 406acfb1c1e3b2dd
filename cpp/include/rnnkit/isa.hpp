// Per-ISA compilation. Every kernel translation unit is compiled once per instruction set
// (generic, avx2, avx512) with RNNKIT_ISA_NS naming the namespace its code lives in, so the
// copies never share a symbol: a weak symbol compiled with AVX-512 must not be picked by the
// linker for the generic path. Kernel code therefore also avoids std:: containers and
// algorithms (their out-of-line instantiations are weak symbols outside our namespaces).
#pragma once

#ifndef RNNKIT_ISA_NS
#define RNNKIT_ISA_NS generic
#endif

// Bytes of one SIMD register for the ISA being compiled (sets slice widths and tiles).
#if defined(__AVX512F__)
#define RNNKIT_VECTOR_BYTES 64
#elif defined(__AVX__)
#define RNNKIT_VECTOR_BYTES 32
#else
#define RNNKIT_VECTOR_BYTES 16
#endif

#define RNNKIT_STRINGIFY_(x) #x
#define RNNKIT_STRINGIFY(x) RNNKIT_STRINGIFY_(x)
