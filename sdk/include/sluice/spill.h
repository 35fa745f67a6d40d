/*
 * sluice/spill.h - the spill store plugin ops table.
 *
 * The spill store keeps payloads that must not sit in memory or on the
 * transport: batches larger than the transport's limit (claim check) and
 * batches parked while a transient fault is retried. Blobs are deleted once
 * applied; list() lets the host find blobs a crash left behind.
 * The default is spill-fs: encrypted files in a 0700 folder.
 */
#ifndef SLUICE_SPILL_H
#define SLUICE_SPILL_H

#include <sluice/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_SPILL_ID_MAX 128 /* including the NUL */

struct sluice_spill_ops {
    uint32_t struct_size; /* sizeof(struct sluice_spill_ops) */

    /* put - required. Store len bytes durably; write its NUL-terminated id
     * ([A-Za-z0-9._-], < SLUICE_SPILL_ID_MAX) into id. SLUICE_OK,
     * SLUICE_RETRY (disk full: try later) or SLUICE_ERR. */
    int (*put)(void *inst, const void *data, size_t len,
               char id[SLUICE_SPILL_ID_MAX]);

    /* get - required. Read blob id into *data (allocated by the plugin, given
     * back with release) and *len. SLUICE_NOT_FOUND, or SLUICE_ERR when the
     * blob is damaged or cannot be decrypted (error text names the blob). */
    int (*get)(void *inst, const char *id, void **data, size_t *len);

    /* release - required. Free what get returned. */
    void (*release)(void *inst, void *data, size_t len);

    /* del - required. Remove blob id; removing a missing blob is SLUICE_OK. */
    int (*del)(void *inst, const char *id);

    /* list - required. Call cb for every stored blob (any order); stop early
     * when cb returns non-zero. */
    int (*list)(void *inst, int (*cb)(void *arg, const char *id), void *arg);
};

#ifdef __cplusplus
}
#endif

#endif
