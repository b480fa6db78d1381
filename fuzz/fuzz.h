/*
 * fuzz.h - what every libFuzzer target of tern shares: the entry point
 * libFuzzer calls, and FUZZ_ASSERT, a check that stays in every build
 * (assert() would vanish with NDEBUG) and whose abort libFuzzer reports
 * with the input.
 */
#ifndef TERN_FUZZ_H
#define TERN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c)                                                         \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

#endif
