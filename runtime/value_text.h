/*
 * value_text.h - the canonical text form of every logical type
 * (docs/types.md), used by file sources, record ids in the failed-record log
 * and sinks that speak text. Parsing is strict and exact: decimals are
 * validated text, never doubles; timestamps keep microseconds; floats print
 * in the shortest form that reads back to the same bits.
 */
#ifndef SL_VALUE_TEXT_H
#define SL_VALUE_TEXT_H

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

#endif
