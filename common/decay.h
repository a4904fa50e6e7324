/* decay.h - exponential decay by a half-life in integer arithmetic, so
 * that every replica computes the same value bit for bit (no libm: exp2
 * may round differently from one libm to the next). */
#ifndef JZ_DECAY_H
#define JZ_DECAY_H

#include <stdint.h>

/* value * 2^(-elapsed / half_life), rounded down. Relative error below
 * 2e-5 (a 64-entry table of 2^(-k/64) with linear steps between). A
 * half_life of 0 means no decay. */
uint64_t decay_halflife(uint64_t value, uint64_t elapsed, uint64_t half_life);

#endif
