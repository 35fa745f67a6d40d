/*
 * sluice/abi.h - ABI version, status codes, plugin kinds and source positions.
 *
 * Everything in sdk/include/sluice/ is the contract between the sluice host and
 * its plugins. Rules that keep that contract stable:
 *
 *  - SLUICE_ABI_MAJOR changes only when an existing struct field or callback
 *    changes meaning or place. The host refuses a plugin whose major differs.
 *  - SLUICE_ABI_MINOR grows when a field or callback is appended at the END of
 *    a struct. Every struct that crosses the boundary starts with (or is
 *    accompanied by) its size, so both sides can tell which fields exist.
 *    New members are documented "since ABI 1.N".
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 1

/* Exported with default visibility from a plugin built with
 * -fvisibility=hidden: the entry function is the only symbol a plugin needs. */
#if defined(__GNUC__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

/*
 * Status codes. They are the only way a result crosses the boundary: never
 * errno, never longjmp. The message that explains a non-OK status goes to the
 * host's error buffer through sluice_host.set_error() before returning.
 */
enum sluice_status {
    SLUICE_OK = 0,
    SLUICE_ERR = 1,       /* permanent: retrying the same call fails again */
    SLUICE_RETRY = 2,     /* transient: connection lost, deadlock, timeout,
                             target down; the host retries with backoff */
    SLUICE_NOT_FOUND = 3, /* lookup found nothing (checkpoint, spill blob) */
    SLUICE_STOPPED = 4,   /* the host is stopping; return promptly */
    SLUICE_AGAIN = 5,     /* nothing available right now (consume timeout) */
    SLUICE_NOMEM = 6      /* allocation failed */
};

enum sluice_kind {
    SLUICE_KIND_SOURCE = 1,
    SLUICE_KIND_TRANSPORT = 2,
    SLUICE_KIND_SPILL = 3,
    SLUICE_KIND_SINK = 4
};

/*
 * A source position: opaque bytes only the source interprets, with one rule
 * the host relies on: positions of one source ORDER BY memcmp over the common
 * length, then by length (encode integers big-endian). The host uses that to
 * resume from the smallest checkpoint of a profile's partitions and to tell
 * the source which position is durable in the target.
 *
 * len == 0 means "no position": the beginning (no checkpoint yet), or, on a
 * batch, "do not write a checkpoint with this batch".
 */
#define SLUICE_POSITION_MAX 64

struct sluice_position {
    uint32_t len;
    uint8_t bytes[SLUICE_POSITION_MAX];
};

/* Compare two positions as described above: <0, 0 or >0. */
static inline int sluice_position_cmp(const struct sluice_position *a,
                                      const struct sluice_position *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    for (uint32_t i = 0; i < n; i++) {
        if (a->bytes[i] != b->bytes[i])
            return a->bytes[i] < b->bytes[i] ? -1 : 1;
    }
    return (a->len > b->len) - (a->len < b->len);
}

/* Big-endian helpers for building memcmp-ordered positions. */
static inline void sluice_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static inline uint64_t sluice_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#ifdef __cplusplus
}
#endif

#endif
