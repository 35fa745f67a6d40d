/*
 * control.h - the control socket: how the CLI talks to a running service.
 *
 * A Unix stream socket (control_socket, default <state_dir>/sluice.sock),
 * mode 0600, or 0660 with control_socket_group. One request per connection,
 * one JSON line each way (jansson):
 *   -> {"cmd": "profile-disable", "profile": "crm"}
 *   <- {"ok": true, "message": "profile \"crm\" disabled (stopped, position kept)"}
 * Commands: ping, flush, reload, profile-enable, profile-disable,
 * profile-delete. The service answers a request on its control thread
 * (run.c), possibly later (delete waits for the profile to drain).
 */
#ifndef SL_CONTROL_H
#define SL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* ---- service side ---------------------------------------------------------- */

struct sl_control;
/* Listen on path. A socket file nobody answers on is stale and replaced; one
 * a live service answers on is an error ("already running"). NULL with err. */
struct sl_control *sl_control_listen(const char *path, const char *group, struct sl_err *err);
int sl_control_fd(const struct sl_control *c); /* for poll(POLLIN) */
/* Close and remove the socket file. NULL is fine. */
void sl_control_close(struct sl_control *c);

struct sl_control_req {
    int fd; /* the connection; answered and closed by sl_control_reply */
    char cmd[32];
    char profile[256];
};
/* Accept one connection and read its request (bounded wait). 0 with req, -1
 * when there was nothing usable (already answered/closed). */
int sl_control_accept(struct sl_control *c, struct sl_control_req *req);
void sl_control_reply(struct sl_control_req *req, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- client side ----------------------------------------------------------- */

enum sl_control_result {
    SL_CONTROL_NO_SERVICE = 0, /* nobody listens: work offline */
    SL_CONTROL_OK = 1,         /* the service did it; msg says what */
    SL_CONTROL_REFUSED = 2,    /* the service answered with an error (msg) */
    SL_CONTROL_BROKEN = 3      /* connected but no usable answer (msg) */
};
/* Send cmd (profile may be NULL), wait up to timeout_ms for the answer. */
int sl_control_call(const char *path, const char *cmd, const char *profile, int timeout_ms,
                    char *msg, size_t cap);

#endif
