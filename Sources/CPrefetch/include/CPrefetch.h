#ifndef SEGMENTD_CPREFETCH_H
#define SEGMENTD_CPREFETCH_H

// Cache prefetch hints for the engine's hot path: Swift has no prefetch intrinsic.
// A hint never faults and changes no value: the address need not even be mapped.

/// Asks for the cache line holding `address`, to be read soon.
static inline void segmentd_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Asks for the cache line holding `address`, to be written soon.
static inline void segmentd_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
