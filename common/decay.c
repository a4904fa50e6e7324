/* decay.c - exponential decay by a half-life, in integers only. */
#include "decay.h"

/* 2^(-k/64) for k = 0..64, in units of 2^-32: round(2^32 * 2^(-k/64)).
 * Written out, not computed, so no floating point is involved. */
static const uint64_t decay__table[65] = {
    4294967296ull, 4248701965u, 4202935003u, 4157661043u, 4112874773u, 4068570940u, 4024744348u, 3981389855u,
    3938502376u,   3896076880u, 3854108391u, 3812591987u, 3771522796u, 3730896002u, 3690706840u, 3650950594u,
    3611622603u,   3572718252u, 3534232978u, 3496162267u, 3458501653u, 3421246719u, 3384393094u, 3347936457u,
    3311872529u,   3276197082u, 3240905930u, 3205994934u, 3171459999u, 3137297074u, 3103502151u, 3070071267u,
    3037000500u,   3004285971u, 2971923842u, 2939910317u, 2908241642u, 2876914102u, 2845924021u, 2815267765u,
    2784941738u,   2754942382u, 2725266179u, 2695909648u, 2666869345u, 2638141863u, 2609723834u, 2581611923u,
    2553802834u,   2526293303u, 2499080105u, 2472160047u, 2445529972u, 2419186755u, 2393127307u, 2367348571u,
    2341847524u,   2316621173u, 2291666561u, 2266980759u, 2242560872u, 2218404036u, 2194507417u, 2170868212u,
    2147483648u,
};

uint64_t decay_halflife(uint64_t value, uint64_t elapsed, uint64_t half_life)
{
    if (half_life == 0 || elapsed == 0 || value == 0)
        return value;
    uint64_t whole = elapsed / half_life;
    if (whole >= 64)
        return 0;
    /* The fraction of a half-life left, in units of 2^-32. */
    uint64_t frac = (uint64_t)(((unsigned __int128)(elapsed % half_life) << 32) / half_life);
    uint64_t k = frac >> 26, rem = frac & ((1u << 26) - 1);
    uint64_t step = decay__table[k] - decay__table[k + 1];
    uint64_t factor = decay__table[k] - ((step * rem) >> 26);
    /* Multiplied before halving, so small values keep their precision. */
    return (uint64_t)(((unsigned __int128)value * factor) >> (32 + whole));
}
