/*
 * value_text.h - the canonical text form of every logical type
 * (docs/types.md), used by file sources, record ids in the failed-record log
 * and sinks that speak text. Parsing is strict and exact: decimals are
 * validated text, never doubles; timestamps keep microseconds; floats print
 * in the shortest form that reads back to the same bits.
 */
#ifndef SL_VALUE_TEXT_H
#define SL_VALUE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <sluice/types.h>

#include "batch.h"

/* Parse text (len bytes, not NUL-terminated) as a value of col's type into
 * out; varlen data is copied into b's arena. 0, or -1 with err. */
int sl_value_parse(const struct sluice_column *col, const char *text, size_t len,
                   struct sl_batch *b, struct sluice_value *out, char *err, size_t errlen);

/* Format a PRESENT value. Returns the length needed (excluding NUL); writes
 * at most cap bytes, NUL-terminated when it fits. */
size_t sl_value_format(const struct sluice_column *col, const struct sluice_value *v,
                       char *buf, size_t cap);

/*
 * Record ids (sluice/record_id.h): the next key value of the id at *p. On
 * success *p moves past it and its ',', out holds the value (unquoted,
 * NUL-terminated), *is_null says it was the bare word NULL, and 0 is
 * returned; -1 for a malformed id (a quote not closed, text after a closing
 * quote). last: the key's last value, which (unquoted) runs to the end.
 */
struct sl_buf;
int sl_record_id_next(const char **p, bool last, struct sl_buf *out, bool *is_null);

#endif
