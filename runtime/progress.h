/*
 * progress.h - how far the initial syncs are: rows done of the source's
 * estimate per profile and entity, fed by the sources' progress() calls.
 *
 * `run --once` on a terminal shows one line per entity, redrawn in place
 * (rows done / estimate, rate, ETA); otherwise the pipeline logs a plain
 * progress line every 10 s. The estimates also go to the state store as the
 * gauge rows_estimated (metrics). Process-wide table; thread-safe.
 */
#ifndef SL_PROGRESS_H
#define SL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "state.h"

/* Called from source threads. */
void sl_progress_update(const char *profile, const char *entity, uint64_t done,
                        uint64_t estimate);
/* Draw the lines on stderr in place (only when enabled). */
void sl_progress_set_terminal(bool on);
bool sl_progress_terminal(void);
void sl_progress_render(void);
/* Write changed estimates to the state store (the run loop, about once a second). */
void sl_progress_publish(struct sl_state *st);
/* Forget everything (end of run). */
void sl_progress_reset(void);

#endif
