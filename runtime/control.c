#include "control.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#define LINE_MAX_BYTES 4096
#define REQUEST_WAIT_MS 2000

struct sl_control {
    int fd;
    char *path;
};

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return -1;
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

/* Read until '\n' or EOF within timeout_ms. Length, or -1. */
static ssize_t read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    uint64_t deadline = sl_now_mono_us() + (uint64_t)timeout_ms * 1000u;
    while (n + 1 < cap) {
        uint64_t now = sl_now_mono_us();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)((deadline - now) / 1000u) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
        if (memchr(buf, '\n', n))
            break;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return (ssize_t)strlen(buf);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct sl_control *sl_control_listen(const char *path, const char *group, struct sl_err *err)
{
    struct sl_control *c = NULL;
    struct sockaddr_un sa;
    int fd = -1;
    if (fill_addr(path, &sa) != 0) {
        snprintf(err->msg, sizeof err->msg,
                 "control_socket %s: path too long for a Unix socket (at most %zu bytes); set "
                 "a shorter control_socket in the main config",
                 path, sizeof sa.sun_path - 1);
        goto out;
    }
    char msg[256];
    int live = sl_control_call(path, "ping", NULL, 1000, msg, sizeof msg);
    if (live == SL_CONTROL_OK) {
        snprintf(err->msg, sizeof err->msg,
                 "control_socket %s: another sluice service is running with this state; stop "
                 "it first (systemctl stop sluice) or give this one another state_dir",
                 path);
        goto out;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err->msg, sizeof err->msg, "control_socket %s: cannot remove the old socket: %s",
                 path, strerror(errno));
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto sys_error;
    /* created 0600 (0660 below with a group) - never briefly open to others */
    mode_t old = umask(0177);
    int brc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (brc != 0 || listen(fd, 16) != 0)
        goto sys_error;
    if (group && *group) {
        struct group *g = getgrnam(group);
        if (!g) {
            snprintf(err->msg, sizeof err->msg,
                     "control_socket_group \"%s\": no such group; create it or remove the key",
                     group);
            goto out_unlink;
        }
        if (chown(path, (uid_t)-1, g->gr_gid) != 0 || chmod(path, 0660) != 0) {
            snprintf(err->msg, sizeof err->msg,
                     "control_socket %s: cannot give it to group %s: %s", path, group,
                     strerror(errno));
            goto out_unlink;
        }
    }
    c = sl_xcalloc(1, sizeof *c);
    c->fd = fd;
    c->path = sl_xstrdup(path);
    return c;
sys_error:
    snprintf(err->msg, sizeof err->msg,
             "control_socket %s: cannot listen: %s; check that its folder exists and is "
             "writable",
             path, strerror(errno));
    if (fd >= 0)
        goto out_unlink;
    goto out;
out_unlink:
    unlink(path);
out:
    if (fd >= 0)
        close(fd);
    return NULL;
}

int sl_control_fd(const struct sl_control *c)
{
    return c ? c->fd : -1;
}

void sl_control_close(struct sl_control *c)
{
    if (!c)
        return;
    close(c->fd);
    unlink(c->path);
    free(c->path);
    free(c);
}

int sl_control_accept(struct sl_control *c, struct sl_control_req *req)
{
    char line[LINE_MAX_BYTES];
    json_t *doc = NULL;
    int rc = -1;
    memset(req, 0, sizeof *req);
    req->fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
    if (req->fd < 0)
        return -1;
    if (read_line(req->fd, line, sizeof line, REQUEST_WAIT_MS) < 0) {
        close(req->fd);
        req->fd = -1;
        return -1;
    }
    json_error_t jerr;
    doc = json_loads(line, 0, &jerr);
    const char *cmd = doc ? json_string_value(json_object_get(doc, "cmd")) : NULL;
    const char *profile = doc ? json_string_value(json_object_get(doc, "profile")) : NULL;
    if (!cmd || strlen(cmd) >= sizeof req->cmd ||
        (profile && strlen(profile) >= sizeof req->profile)) {
        sl_control_reply(req, false, "bad request: want one JSON line {\"cmd\": ...}");
        goto out;
    }
    snprintf(req->cmd, sizeof req->cmd, "%s", cmd);
    snprintf(req->profile, sizeof req->profile, "%s", profile ? profile : "");
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

void sl_control_reply(struct sl_control_req *req, bool ok, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (req->fd < 0)
        return;
    json_t *o = json_pack("{s:b, s:s}", "ok", ok, "message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) {
        write_all(req->fd, text, strlen(text));
        write_all(req->fd, "\n", 1);
    }
    free(text);
    json_decref(o);
    close(req->fd);
    req->fd = -1;
}

int sl_control_call(const char *path, const char *cmd, const char *profile, int timeout_ms,
                    char *msg, size_t cap)
{
    struct sockaddr_un sa;
    char line[LINE_MAX_BYTES];
    json_t *req = NULL, *doc = NULL;
    char *text = NULL;
    int fd = -1, rc = SL_CONTROL_NO_SERVICE;
    msg[0] = '\0';
    if (fill_addr(path, &sa) != 0)
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out; /* ENOENT, ECONNREFUSED: no service */
    rc = SL_CONTROL_BROKEN;
    req = profile ? json_pack("{s:s, s:s}", "cmd", cmd, "profile", profile)
                  : json_pack("{s:s}", "cmd", cmd);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!text || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0) {
        snprintf(msg, cap, "cannot send the request to %s: %s", path, strerror(errno));
        goto out;
    }
    if (read_line(fd, line, sizeof line, timeout_ms) <= 0) {
        snprintf(msg, cap, "the service at %s did not answer within %d s", path,
                 timeout_ms / 1000);
        goto out;
    }
    json_error_t jerr;
    doc = json_loads(line, 0, &jerr);
    json_t *ok = doc ? json_object_get(doc, "ok") : NULL;
    const char *m = doc ? json_string_value(json_object_get(doc, "message")) : NULL;
    if (!json_is_boolean(ok)) {
        snprintf(msg, cap, "the service at %s answered something else than sluice's protocol",
                 path);
        goto out;
    }
    snprintf(msg, cap, "%s", m ? m : "");
    rc = json_is_true(ok) ? SL_CONTROL_OK : SL_CONTROL_REFUSED;
out:
    free(text);
    json_decref(req);
    json_decref(doc);
    if (fd >= 0)
        close(fd);
    return rc;
}
