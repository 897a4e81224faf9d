/*
 * clock.h — greyd's two clocks.
 *
 * Timeouts, deadlines and durations use the monotonic clock in milliseconds
 * (it never jumps when the wall clock is set); records in the trust database
 * and everything an administrator reads use wall-clock seconds since the
 * epoch.  Nothing else in greyd calls clock_gettime() or time().
 */
#ifndef GREYD_CLOCK_H
#define GREYD_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_ms(void);
/* Wall-clock seconds since the epoch (CLOCK_REALTIME). */
int64_t clock_now(void);

#endif
