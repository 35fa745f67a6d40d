/*
 * sluice/record_id.h - the text form of a record id (header only).
 *
 * A record id names a record by its key: the key values in canonical text
 * (host->value_format), in key order, joined by ','. A value that contains
 * ',' or '"', starts with a space, or is the word NULL (or is empty) is
 * written in double quotes with '"' doubled; an absent or NULL key value is
 * the bare word NULL. So "42", "a,\"b,c\"" and "x,NULL" split back into
 * exactly the values they were made of (sluice failures resync does).
 */
#ifndef SLUICE_RECORD_ID_H
#define SLUICE_RECORD_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Append key value v (len bytes; v NULL: a NULL value) as the next component
 * of the record id in buf (cap bytes, *used of them written, kept
 * NUL-terminated). first: no ',' before it. Returns false when buf is too
 * small (the id is then truncated and must not be used for lookups). */
static inline bool sluice_record_id_append(char *buf, size_t cap, size_t *used, bool first,
                                           const char *v, size_t len)
{
    size_t n = *used;
    bool ok = true;
#define SLUICE_RID_PUT(c)                                                                      \
    do {                                                                                       \
        if (n + 1 < cap)                                                                       \
            buf[n++] = (c);                                                                    \
        else                                                                                   \
            ok = false;                                                                        \
    } while (0)
    if (!first)
        SLUICE_RID_PUT(',');
    if (!v) {
        for (const char *w = "NULL"; *w; w++)
            SLUICE_RID_PUT(*w);
    } else {
        bool quote = len == 0 || v[0] == ' ' || (len == 4 && memcmp(v, "NULL", 4) == 0) ||
                     memchr(v, ',', len) || memchr(v, '"', len);
        if (quote)
            SLUICE_RID_PUT('"');
        for (size_t i = 0; i < len; i++) {
            if (quote && v[i] == '"')
                SLUICE_RID_PUT('"');
            SLUICE_RID_PUT(v[i]);
        }
        if (quote)
            SLUICE_RID_PUT('"');
    }
#undef SLUICE_RID_PUT
    if (cap)
        buf[n < cap ? n : cap - 1] = '\0';
    *used = n;
    return ok;
}

#ifdef __cplusplus
}
#endif

#endif
