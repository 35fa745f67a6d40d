#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

#define COUNTER_BUCKETS 256

struct counter {
    struct counter *next; /* hash chain */
    char *profile, *entity, *name;
    int64_t pending;   /* not yet flushed */
    int64_t run_total; /* added in this process */
};

struct success {
    struct success *next;
    char *profile;
    int64_t us; /* 0: nothing pending */
};

struct sl_state {
    pthread_mutex_t lock;
    sqlite3 *db;
    char *path;
    struct counter *buckets[COUNTER_BUCKETS];
    struct success *successes;
    bool dirty; /* something to flush */
};

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS profiles ("
    "  name TEXT PRIMARY KEY, enabled INTEGER NOT NULL DEFAULT 1, status TEXT,"
    "  last_error TEXT, last_success_us INTEGER, updated_us INTEGER);"
    "CREATE TABLE IF NOT EXISTS counters ("
    "  profile TEXT NOT NULL, entity TEXT NOT NULL, name TEXT NOT NULL,"
    "  value INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (profile, entity, name));"
    "CREATE TABLE IF NOT EXISTS failed_records ("
    "  id INTEGER PRIMARY KEY, profile TEXT NOT NULL, entity TEXT, record_id TEXT,"
    "  op TEXT, position TEXT, sync_time_us INTEGER, error TEXT);"
    "CREATE INDEX IF NOT EXISTS failed_records_profile ON failed_records (profile);";

/* v2: the administrator's lifecycle decision and set-not-added values */
static const char *const schema_v2 =
    "ALTER TABLE profiles ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE profiles ADD COLUMN admin_us INTEGER;"
    "CREATE TABLE IF NOT EXISTS gauges ("
    "  profile TEXT NOT NULL, entity TEXT NOT NULL, name TEXT NOT NULL,"
    "  value INTEGER NOT NULL, updated_us INTEGER, PRIMARY KEY (profile, entity, name));";

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u; /* separator, so ("ab","c") != ("a","bc") */
}

static int exec_sql(struct sl_state *st, const char *sql, struct sl_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    if (err)
        snprintf(err->msg, sizeof err->msg, "state store %s: %s", st->path,
                 msg ? msg : sqlite3_errmsg(st->db));
    else
        sl_error("state store %s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    return -1;
}

/* Create the database file 0600 before SQLite opens it: SQLite gives the
 * -wal and -shm files the mode of the database file. */
static int precreate(const char *path, struct sl_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err->msg, sizeof err->msg,
                 "state store: cannot open %s: %s; check that state_dir is writable by this user",
                 path, strerror(errno));
        return -1;
    }
    int rc = fchmod(fd, 0600);
    close(fd);
    if (rc != 0) {
        snprintf(err->msg, sizeof err->msg, "state store: cannot chmod 0600 %s: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int migrate(struct sl_state *st, struct sl_err *err)
{
    sqlite3_stmt *stmt = NULL;
    int version = 0, rc = -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    if (version > SL_STATE_SCHEMA_VERSION) {
        snprintf(err->msg, sizeof err->msg,
                 "state store %s has schema version %d, newer than this sluice (%d); "
                 "run the newer sluice or move the file away",
                 st->path, version, SL_STATE_SCHEMA_VERSION);
        goto out;
    }
    if (version < 1) {
        if (exec_sql(st, "BEGIN IMMEDIATE", err) != 0)
            goto out;
        if (exec_sql(st, schema_v1, err) != 0 || exec_sql(st, "PRAGMA user_version = 1", err) != 0) {
            exec_sql(st, "ROLLBACK", NULL);
            goto out;
        }
        if (exec_sql(st, "COMMIT", err) != 0)
            goto out;
    }
    if (version < 2) {
        if (exec_sql(st, "BEGIN IMMEDIATE", err) != 0)
            goto out;
        if (exec_sql(st, schema_v2, err) != 0 || exec_sql(st, "PRAGMA user_version = 2", err) != 0) {
            exec_sql(st, "ROLLBACK", NULL);
            goto out;
        }
        if (exec_sql(st, "COMMIT", err) != 0)
            goto out;
    }
    /* later versions: if (version < 3) { ... PRAGMA user_version = 3 } */
    rc = 0;
out:
    if (rc != 0 && !err->msg[0])
        snprintf(err->msg, sizeof err->msg, "state store %s: %s", st->path,
                 sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    return rc;
}

int sl_state_open(const char *state_dir, struct sl_state **out, struct sl_err *err)
{
    struct sl_state *st = sl_xcalloc(1, sizeof *st);
    int rc = -1;
    err->msg[0] = '\0';
    pthread_mutex_init(&st->lock, NULL);
    st->path = sl_xasprintf("%s/%s", state_dir, SL_STATE_FILE);
    if (sl_mkdir_p(state_dir, 0700) != 0) {
        snprintf(err->msg, sizeof err->msg,
                 "state store: cannot create state_dir %s: %s; create it (mode 0700) or "
                 "set state_dir in the main config",
                 state_dir, strerror(errno));
        goto out;
    }
    if (precreate(st->path, err) != 0)
        goto out;
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err->msg, sizeof err->msg, "state store %s: %s", st->path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (exec_sql(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err) != 0)
        goto out;
    if (migrate(st, err) != 0)
        goto out;
    /* belt and braces: the WAL files inherit 0600, make sure */
    for (const char *sfx = "-wal"; sfx; sfx = strcmp(sfx, "-wal") == 0 ? "-shm" : NULL) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", st->path, sfx);
        if (chmod(p, 0600) != 0 && errno != ENOENT)
            sl_warn("state store: cannot chmod 0600 %s: %s", p, strerror(errno));
    }
    rc = 0;
out:
    if (rc != 0) {
        sl_state_close(st);
        st = NULL;
    }
    *out = st;
    return rc;
}

void sl_state_close(struct sl_state *st)
{
    if (!st)
        return;
    if (st->db)
        sl_state_flush(st);
    for (size_t i = 0; i < COUNTER_BUCKETS; i++) {
        for (struct counter *c = st->buckets[i], *next; c; c = next) {
            next = c->next;
            free(c->profile);
            free(c->entity);
            free(c->name);
            free(c);
        }
    }
    for (struct success *s = st->successes, *next; s; s = next) {
        next = s->next;
        free(s->profile);
        free(s);
    }
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st->path);
    free(st);
}

void sl_state_counter_add(struct sl_state *st, const char *profile, const char *entity,
                          const char *name, int64_t delta)
{
    if (!entity)
        entity = "";
    uint64_t h = hash_str(hash_str(hash_str(14695981039346656037u, profile), entity), name);
    struct counter **bucket = &st->buckets[h % COUNTER_BUCKETS];
    pthread_mutex_lock(&st->lock);
    struct counter *c = *bucket;
    while (c && (strcmp(c->name, name) != 0 || strcmp(c->entity, entity) != 0 ||
                 strcmp(c->profile, profile) != 0))
        c = c->next;
    if (!c) {
        c = sl_xcalloc(1, sizeof *c);
        c->profile = sl_xstrdup(profile);
        c->entity = sl_xstrdup(entity);
        c->name = sl_xstrdup(name);
        c->next = *bucket;
        *bucket = c;
    }
    c->pending += delta;
    c->run_total += delta;
    st->dirty = true;
    pthread_mutex_unlock(&st->lock);
}

void sl_state_profile_success(struct sl_state *st, const char *profile, int64_t us)
{
    pthread_mutex_lock(&st->lock);
    struct success *s = st->successes;
    while (s && strcmp(s->profile, profile) != 0)
        s = s->next;
    if (!s) {
        s = sl_xcalloc(1, sizeof *s);
        s->profile = sl_xstrdup(profile);
        s->next = st->successes;
        st->successes = s;
    }
    s->us = us;
    st->dirty = true;
    pthread_mutex_unlock(&st->lock);
}

int sl_state_flush(struct sl_state *st)
{
    sqlite3_stmt *up = NULL, *succ = NULL;
    int rc = -1;
    bool began = false;
    pthread_mutex_lock(&st->lock);
    if (!st->dirty) {
        rc = 0;
        goto out;
    }
    if (exec_sql(st, "BEGIN IMMEDIATE", NULL) != 0)
        goto out;
    began = true;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO counters (profile, entity, name, value) VALUES (?,?,?,?) "
                           "ON CONFLICT (profile, entity, name) DO UPDATE SET value = value + "
                           "excluded.value",
                           -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO profiles (name, last_success_us, updated_us) "
                           "VALUES (?1, ?2, ?2) ON CONFLICT (name) DO UPDATE SET "
                           "last_success_us = excluded.last_success_us",
                           -1, &succ, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < COUNTER_BUCKETS; i++) {
        for (struct counter *c = st->buckets[i]; c; c = c->next) {
            if (c->pending == 0)
                continue;
            sqlite3_reset(up);
            sqlite3_bind_text(up, 1, c->profile, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 2, c->entity, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 3, c->name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(up, 4, c->pending);
            if (sqlite3_step(up) != SQLITE_DONE)
                goto out;
        }
    }
    for (struct success *s = st->successes; s; s = s->next) {
        if (s->us == 0)
            continue;
        sqlite3_reset(succ);
        sqlite3_bind_text(succ, 1, s->profile, -1, SQLITE_STATIC);
        sqlite3_bind_int64(succ, 2, s->us);
        if (sqlite3_step(succ) != SQLITE_DONE)
            goto out;
    }
    if (exec_sql(st, "COMMIT", NULL) != 0)
        goto out;
    began = false;
    /* committed: forget what was written */
    for (size_t i = 0; i < COUNTER_BUCKETS; i++)
        for (struct counter *c = st->buckets[i]; c; c = c->next)
            c->pending = 0;
    for (struct success *s = st->successes; s; s = s->next)
        s->us = 0;
    st->dirty = false;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot write counters: %s; they stay in memory and are "
                 "retried at the next flush",
                 st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(up);
    sqlite3_finalize(succ);
    if (began)
        exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void sl_state_run_counters(struct sl_state *st, const char *profile, sl_state_counter_cb cb,
                           void *arg)
{
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < COUNTER_BUCKETS; i++)
        for (struct counter *c = st->buckets[i]; c; c = c->next)
            if (strcmp(c->profile, profile) == 0)
                cb(arg, c->entity, c->name, c->run_total);
    pthread_mutex_unlock(&st->lock);
}

int sl_state_profile_set(struct sl_state *st, const char *profile, bool enabled,
                         const char *status, const char *last_error)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO profiles (name, enabled, status, last_error, updated_us) "
                           "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET "
                           "enabled = excluded.enabled, status = excluded.status, "
                           "last_error = excluded.last_error, updated_us = excluded.updated_us",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, enabled ? 1 : 0);
    sqlite3_bind_text(stmt, 3, status, -1, SQLITE_STATIC);
    if (last_error)
        sqlite3_bind_text(stmt, 4, last_error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 4);
    sqlite3_bind_int64(stmt, 5, sl_now_wall_us());
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot record status of profile \"%s\": %s", st->path,
                 profile, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static void bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

int sl_state_failed_add(struct sl_state *st, const struct sl_failed_record *r)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO failed_records (profile, entity, record_id, op, position, "
                           "sync_time_us, error) VALUES (?,?,?,?,?,?,?)",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, r->profile, -1, SQLITE_STATIC);
    bind_opt_text(stmt, 2, r->entity);
    bind_opt_text(stmt, 3, r->record_id);
    bind_opt_text(stmt, 4, r->op);
    bind_opt_text(stmt, 5, r->position);
    sqlite3_bind_int64(stmt, 6, r->sync_time_us);
    bind_opt_text(stmt, 7, r->error);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot record a failed record of profile \"%s\": %s",
                 st->path, r->profile, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_failed_count(struct sl_state *st, const char *profile, int64_t *count)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    *count = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM failed_records WHERE profile = ?", -1,
                           &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_ROW)
        goto out;
    *count = sqlite3_column_int64(stmt, 0);
    rc = 0;
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_failed_list(struct sl_state *st, const char *profile, sl_state_failed_cb cb,
                         void *arg)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, profile, entity, record_id, op, position, sync_time_us, "
                           "error FROM failed_records WHERE profile = ? ORDER BY id",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct sl_failed_record r = {
            .profile = (const char *)sqlite3_column_text(stmt, 1),
            .entity = (const char *)sqlite3_column_text(stmt, 2),
            .record_id = (const char *)sqlite3_column_text(stmt, 3),
            .op = (const char *)sqlite3_column_text(stmt, 4),
            .position = (const char *)sqlite3_column_text(stmt, 5),
            .sync_time_us = sqlite3_column_int64(stmt, 6),
            .error = (const char *)sqlite3_column_text(stmt, 7),
        };
        if (cb(arg, sqlite3_column_int64(stmt, 0), &r) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot read the failed records of profile \"%s\": %s",
                 st->path, profile, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_failed_delete(struct sl_state *st, int64_t id)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM failed_records WHERE id = ?", -1, &stmt,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, id);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot remove failed record %lld: %s", st->path, (long long)id,
                 sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_failed_clear(struct sl_state *st, const char *profile, int64_t *removed)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    *removed = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM failed_records WHERE profile = ?", -1, &stmt,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    *removed = sqlite3_changes(st->db);
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot clear the failed records of profile \"%s\": %s",
                 st->path, profile, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_profiles(struct sl_state *st, sl_state_profile_cb cb, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT name, enabled, status, last_error, last_success_us, updated_us "
                           "FROM profiles ORDER BY name",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct sl_state_profile p = {
            .name = (const char *)sqlite3_column_text(stmt, 0),
            .enabled = sqlite3_column_int(stmt, 1) != 0,
            .status = (const char *)sqlite3_column_text(stmt, 2),
            .last_error = (const char *)sqlite3_column_text(stmt, 3),
            .last_success_us = sqlite3_column_int64(stmt, 4),
            .updated_us = sqlite3_column_int64(stmt, 5),
        };
        cb(arg, &p);
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot read profiles: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_counters(struct sl_state *st, const char *profile, sl_state_counter_cb cb,
                      void *arg)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT entity, name, value FROM counters WHERE profile = ? "
                           "ORDER BY entity, name",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(stmt, 0),
           (const char *)sqlite3_column_text(stmt, 1), sqlite3_column_int64(stmt, 2));
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot read counters: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- lifecycle and gauges ------------------------------------------------- */

const char *sl_admin_name(int admin)
{
    static const char *const names[] = {"none", "disabled", "deleted"};
    return admin >= 0 && admin <= SL_ADMIN_DELETED ? names[admin] : "none";
}

int sl_state_admin_set(struct sl_state *st, const char *profile, int admin)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO profiles (name, enabled, admin, admin_us, updated_us) "
                           "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO UPDATE SET "
                           "admin = excluded.admin, admin_us = excluded.admin_us",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, admin == SL_ADMIN_NONE);
    sqlite3_bind_int(stmt, 3, admin);
    sqlite3_bind_int64(stmt, 4, sl_now_wall_us());
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot record that profile \"%s\" is %s: %s", st->path,
                 profile, sl_admin_name(admin), sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_admin_get(struct sl_state *st, const char *profile, int64_t *since_us)
{
    sqlite3_stmt *stmt = NULL;
    int admin = SL_ADMIN_NONE;
    if (since_us)
        *since_us = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "SELECT admin, admin_us FROM profiles WHERE name = ?", -1,
                           &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        admin = sqlite3_column_int(stmt, 0);
        if (since_us)
            *since_us = sqlite3_column_int64(stmt, 1);
    }
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return admin;
}

int sl_state_gauge_set(struct sl_state *st, const char *profile, const char *entity,
                       const char *name, int64_t value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO gauges (profile, entity, name, value, updated_us) "
                           "VALUES (?,?,?,?,?) ON CONFLICT (profile, entity, name) DO UPDATE "
                           "SET value = excluded.value, updated_us = excluded.updated_us",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, entity ? entity : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, value);
    sqlite3_bind_int64(stmt, 5, sl_now_wall_us());
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_warn("state store %s: cannot record %s of profile \"%s\": %s", st->path, name,
                profile, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_gauges(struct sl_state *st, const char *profile, sl_state_counter_cb cb, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1, step;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT entity, name, value FROM gauges WHERE profile = ? "
                           "ORDER BY entity, name",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(stmt, 0),
           (const char *)sqlite3_column_text(stmt, 1), sqlite3_column_int64(stmt, 2));
    if (step != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot read gauges: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int sl_state_profile_forget(struct sl_state *st, const char *profile, int64_t *failed_removed)
{
    static const char *const deletes[] = {"DELETE FROM failed_records WHERE profile = ?",
                                          "DELETE FROM counters WHERE profile = ?",
                                          "DELETE FROM gauges WHERE profile = ?"};
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    bool began = false;
    *failed_removed = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < COUNTER_BUCKETS; i++)
        for (struct counter *c = st->buckets[i]; c; c = c->next)
            if (strcmp(c->profile, profile) == 0)
                c->pending = c->run_total = 0;
    if (exec_sql(st, "BEGIN IMMEDIATE", NULL) != 0)
        goto out;
    began = true;
    for (size_t i = 0; i < sizeof deletes / sizeof deletes[0]; i++) {
        if (sqlite3_prepare_v2(st->db, deletes[i], -1, &stmt, NULL) != SQLITE_OK)
            goto out;
        sqlite3_bind_text(stmt, 1, profile, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            goto out;
        if (i == 0)
            *failed_removed = sqlite3_changes(st->db);
        sqlite3_finalize(stmt);
        stmt = NULL;
    }
    if (exec_sql(st, "COMMIT", NULL) != 0)
        goto out;
    began = false;
    rc = 0;
out:
    if (rc != 0)
        sl_error("state store %s: cannot forget profile \"%s\": %s", st->path, profile,
                 sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    if (began)
        exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

const char *sl_state_path(const struct sl_state *st)
{
    return st->path;
}
