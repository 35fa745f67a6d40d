/*
 * sd_notify.h - telling systemd how the service is doing (Type=notify):
 * READY=1 once every profile started, RELOADING=1 / READY=1 around SIGHUP,
 * STOPPING=1 on SIGTERM, WATCHDOG=1 at half the WatchdogSec interval.
 * Datagrams to $NOTIFY_SOCKET (the sd_notify(3) protocol; abstract sockets
 * start with '@'). Without NOTIFY_SOCKET every call does nothing.
 */
#ifndef SL_SD_NOTIFY_H
#define SL_SD_NOTIFY_H

#include <stdint.h>

/* Send state ("READY=1\nSTATUS=..."). 1 sent, 0 no socket, -1 error. */
int sl_sd_notify(const char *state);
/* The watchdog interval systemd asked for (WATCHDOG_USEC, for this pid), 0: none. */
uint64_t sl_sd_watchdog_us(void);

#endif
