/*
 * pg_sink.h - internals of the PostgreSQL sink shared by its files:
 * the PostgreSQL text form of values (COPY text format and parameters) and
 * record keys as text (tombstones, delete log).
 */
#ifndef PG_SINK_H
#define PG_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include <sluice/sluice.h>
#include <sluice_sql/dialect.h>

/*
 * Append the PostgreSQL input text of a PRESENT value of column col. With
 * copy_escape, escape it for COPY's text format (backslash, tab, newline,
 * CR); without, append it raw (a parameter or a record key). Returns 0, or -1
 * for a value that cannot be represented (a UUID that is not 16 bytes, an
 * unknown type).
 */
int pg_value_text(struct sluice_sql_buf *b, const struct sluice_column *col,
                  const struct sluice_value *v, bool copy_escape);

#endif
