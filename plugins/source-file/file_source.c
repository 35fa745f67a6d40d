/*
 * file_source.c - the "file" source: entities described by JSON schema files,
 * a snapshot per entity (CSV through libcsv, or JSON Lines through jansson)
 * and numbered change files (changes/<digits>.jsonl) applied in numeric
 * order. docs/source-file.md is the user's description of the layout.
 *
 * Positions (memcmp-ordered, big-endian):
 *   snapshot  [0x01][entity index be32][last row number be64]   13 bytes
 *   changes   [0x02][file number be64][last line number be64]   17 bytes
 *
 * Bad input never stops the export: a row or line that cannot be used goes
 * to host->record_failed with "file:line" (the host logs it as a WARN and
 * keeps it in the failed-record log) and reading goes on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include <sluice/sluice.h>

#define FS_READ_CHUNK (1u << 20)       /* bytes per read() */
#define FS_LINE_MAX (64u << 20)        /* a longer line is a bad record */
#define FS_STOP_CHECK_EVERY 65536      /* lines between stopping() checks when not emitting */

#define FS_POS_SNAPSHOT 0x01
#define FS_POS_CHANGES 0x02
#define FS_POS_SNAPSHOT_LEN 13
#define FS_POS_CHANGES_LEN 17

/* ---- configuration ------------------------------------------------------ */

struct fs_config {
    const char *path;
    const char *format;
    int64_t poll_interval_ms;
};

static const struct sluice_config_item fs_spec[] = {
    {"path", SLUICE_CFG_STRING, SLUICE_CFG_REQUIRED, NULL, offsetof(struct fs_config, path),
     "folder holding <entity>.schema.json, the snapshots and changes/"},
    {"format", SLUICE_CFG_STRING, 0, "auto", offsetof(struct fs_config, format),
     "snapshot format: auto (by extension: .csv, then .jsonl), csv or jsonl"},
    {"poll_interval_ms", SLUICE_CFG_INT, 0, "500", offsetof(struct fs_config, poll_interval_ms),
     "how often a following run looks for new change lines and files (ms)"},
};

enum fs_format { FS_AUTO = 0, FS_CSV = 1, FS_JSONL = 2 };

/* ---- the instance --------------------------------------------------------- */

struct fs_entity {
    char *name;
    const struct sluice_entity *e; /* the host's copy, from describe() */
    int version_col;               /* column holding the snapshot version, -1 none */
    char *snapshot_path;
    char *snapshot_name; /* "accounts.csv", for "file:line" */
    enum fs_format fmt;
};

struct fs_source {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *path;
    enum fs_format format;
    uint32_t poll_ms;
    int run_mode;
    struct fs_entity *ents;
    uint32_t nents;
    struct sluice_value *vals; /* scratch row: max ncolumns values, reused */
    uint32_t nvals;
    struct fs_fetch *fetch; /* set while fetch() scans the files instead of emitting */
};

static int fetch_take(struct fs_source *s, struct sluice_batch **bp);

/* ---- buffered line reader -------------------------------------------------
 * Large reads, no allocation per line. A line handed out includes its '\n'
 * when it has one; only the final line of a file read with final = true may
 * lack it. The buffer grows to the longest line, at most FS_LINE_MAX. */

struct fs_reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    uint64_t line;     /* number of the last line handed out */
    uint64_t consumed; /* bytes handed out */
    bool skipping;     /* inside a line longer than FS_LINE_MAX */
};

enum { FS_LINE_NONE = 0, FS_LINE_OK = 1, FS_LINE_TOO_LONG = 2, FS_LINE_ERROR = -1 };

static int reader_open(struct fs_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return -1;
    r->cap = FS_READ_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        close(r->fd);
        r->fd = -1;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void reader_close(struct fs_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

/* Bytes of an incomplete line waiting for its '\n'. */
static bool reader_has_partial(const struct fs_reader *r)
{
    return r->end > r->start || r->skipping;
}

static int reader_line(struct fs_reader *r, bool final, const char **line, size_t *len)
{
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->start)) + 1;
            *line = r->buf + r->start;
            *len = n;
            r->start += n;
            r->consumed += n;
            r->line++;
            if (r->skipping) {
                r->skipping = false;
                return FS_LINE_TOO_LONG;
            }
            return FS_LINE_OK;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) {
            if (r->cap >= FS_LINE_MAX) {
                r->consumed += r->end;
                r->end = 0; /* drop the line's bytes; resync at the next '\n' */
                r->skipping = true;
            } else {
                char *nb = realloc(r->buf, r->cap * 2);
                if (!nb) {
                    errno = ENOMEM;
                    return FS_LINE_ERROR;
                }
                r->buf = nb;
                r->cap *= 2;
            }
        }
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return FS_LINE_ERROR;
        }
        if (got == 0) {
            if (final && r->end > r->start) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                r->consumed += *len;
                r->start = r->end;
                r->line++;
                if (r->skipping) {
                    r->skipping = false;
                    return FS_LINE_TOO_LONG;
                }
                return FS_LINE_OK;
            }
            return FS_LINE_NONE;
        }
        r->end += (size_t)got;
    }
}

/* ---- helpers ---------------------------------------------------------------- */

static char *fs_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *path_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

static int find_column(const struct sluice_entity *e, const char *name)
{
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        if (strcmp(e->columns[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static void position_snapshot(struct sluice_position *p, uint32_t ent, uint64_t row)
{
    p->len = FS_POS_SNAPSHOT_LEN;
    p->bytes[0] = FS_POS_SNAPSHOT;
    p->bytes[1] = (uint8_t)(ent >> 24);
    p->bytes[2] = (uint8_t)(ent >> 16);
    p->bytes[3] = (uint8_t)(ent >> 8);
    p->bytes[4] = (uint8_t)ent;
    sluice_put_be64(p->bytes + 5, row);
}

static void position_changes(struct sluice_position *p, uint64_t file, uint64_t line)
{
    p->len = FS_POS_CHANGES_LEN;
    p->bytes[0] = FS_POS_CHANGES;
    sluice_put_be64(p->bytes + 1, file);
    sluice_put_be64(p->bytes + 9, line);
}

/* The record id of a row (sluice/record_id.h, the form the runtime writes).
 * NULL when a key value is missing or the id does not fit. */
static const char *format_record_id(const struct fs_source *s, const struct sluice_entity *e,
                                    const struct sluice_value *vals, char *buf, size_t cap)
{
    size_t used = 0;
    char text[1024];
    buf[0] = '\0';
    for (uint32_t k = 0; k < e->nkeys; k++) {
        const struct sluice_value *v = &vals[e->key_columns[k]];
        if (v->state != SLUICE_PRESENT)
            return NULL;
        size_t n = s->host->value_format(&e->columns[e->key_columns[k]], v, text, sizeof text);
        if (n >= sizeof text ||
            !sluice_record_id_append(buf, cap, &used, k == 0, text, n))
            return NULL;
    }
    return buf;
}

/* Check a row before it becomes an event: every key column present, no NULL
 * in a column declared not nullable. Returns a reason, or NULL when fine. */
static const char *check_row(const struct sluice_entity *e, const struct sluice_value *vals,
                             char *reason, size_t cap)
{
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        const struct sluice_column *c = &e->columns[i];
        const struct sluice_value *v = &vals[i];
        if ((c->flags & SLUICE_COL_KEY) && v->state != SLUICE_PRESENT) {
            snprintf(reason, cap, "key column \"%s\" is %s", c->name,
                     v->state == SLUICE_NULL ? "null" : "missing");
            return reason;
        }
        if (v->state == SLUICE_NULL && !(c->flags & SLUICE_COL_NULLABLE)) {
            snprintf(reason, cap, "column \"%s\" is null but the schema says \"nullable\": false",
                     c->name);
            return reason;
        }
    }
    return NULL;
}

/* The version of a snapshot row from the schema's version_column. */
static int row_version(const struct fs_entity *fe, const struct sluice_value *vals,
                       uint64_t *version, char *reason, size_t cap)
{
    *version = 0;
    if (fe->version_col < 0)
        return 0;
    const struct sluice_value *v = &vals[fe->version_col];
    if (v->state != SLUICE_PRESENT || v->u.i64 < 0) {
        snprintf(reason, cap, "version column \"%s\" is %s", fe->e->columns[fe->version_col].name,
                 v->state == SLUICE_PRESENT ? "negative" : "null or missing");
        return -1;
    }
    *version = (uint64_t)v->u.i64;
    return 0;
}

static void fail_record(struct fs_source *s, const struct sluice_entity *e,
                        const char *record_id, const char *file, uint64_t line,
                        const char *reason)
{
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%" PRIu64, file, line);
    s->host->record_failed(s->ctx, e, record_id, where, reason);
}

/* Set every scratch value to state (NULL for a full row, ABSENT for an update). */
static void reset_values(struct sluice_value *vals, uint32_t n, uint8_t state)
{
    for (uint32_t i = 0; i < n; i++) {
        vals[i].state = state;
        vals[i].len = 0;
        vals[i].u.i64 = 0;
    }
}

/* Append an event with the scratch values. SLUICE_OK or SLUICE_NOMEM. */
static int append_event(struct fs_source *s, struct sluice_batch *b, const struct sluice_entity *e,
                        int op, uint64_t version)
{
    struct sluice_event *ev = s->host->batch_append(b, e, op);
    if (!ev) {
        s->host->set_error(s->ctx, "out of memory appending an event of %s", e->name);
        return SLUICE_NOMEM;
    }
    ev->version = version;
    memcpy(ev->values, s->vals, e->ncolumns * sizeof *ev->values);
    return SLUICE_OK;
}

/* ---- schema files -------------------------------------------------------- */

static int parse_type(const char *name)
{
    for (int t = 1; t <= SLUICE_T_MAX; t++) {
        if (strcmp(sluice_type_name(t), name) == 0)
            return t;
    }
    return 0;
}

static int json_int_member(json_t *obj, const char *key, int32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return -1;
    *out = (int32_t)json_integer_value(v);
    return 0;
}

static int load_schema(struct fs_source *s, struct fs_entity *fe)
{
    int rc = SLUICE_ERR;
    char *path = path_join(s->path, fe->name, ".schema.json");
    struct sluice_column *cols = NULL;
    uint32_t *keys = NULL;
    json_t *doc = NULL;
    json_error_t jerr;

    if (!path)
        goto nomem;
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (access(path, R_OK) != 0)
            s->host->set_error(s->ctx,
                               "entity \"%s\": cannot read its schema %s: %s; every entity of "
                               "the profile needs <entity>.schema.json in the source folder",
                               fe->name, path, strerror(errno));
        else
            s->host->set_error(s->ctx, "%s:%d: not valid JSON: %s", path, jerr.line, jerr.text);
        goto out;
    }
    json_t *jcols = json_object_get(doc, "columns");
    json_t *jname = json_object_get(doc, "name");
    json_t *jns = json_object_get(doc, "namespace");
    json_t *jver = json_object_get(doc, "version_column");
    if (!json_is_object(doc) || !json_is_array(jcols) || json_array_size(jcols) == 0) {
        s->host->set_error(s->ctx, "%s: expected an object with a non-empty \"columns\" array",
                           path);
        goto out;
    }
    if (jname && (!json_is_string(jname) || strcmp(json_string_value(jname), fe->name) != 0)) {
        s->host->set_error(s->ctx, "%s: \"name\" must be \"%s\" (the file's entity)", path,
                           fe->name);
        goto out;
    }
    if ((jns && !json_is_string(jns)) || (jver && !json_is_string(jver))) {
        s->host->set_error(s->ctx, "%s: \"namespace\" and \"version_column\" must be strings",
                           path);
        goto out;
    }
    size_t n = json_array_size(jcols);
    cols = calloc(n, sizeof *cols);
    keys = calloc(n, sizeof *keys);
    if (!cols || !keys)
        goto nomem;
    uint32_t nkeys = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *jc = json_array_get(jcols, i);
        json_t *cn = json_object_get(jc, "name");
        json_t *ct = json_object_get(jc, "type");
        json_t *ck = json_object_get(jc, "key");
        json_t *cnull = json_object_get(jc, "nullable");
        if (!json_is_string(cn) || !json_is_string(ct)) {
            s->host->set_error(s->ctx, "%s: column %zu needs string \"name\" and \"type\"", path,
                               i + 1);
            goto out;
        }
        struct sluice_column *c = &cols[i];
        c->name = json_string_value(cn);
        c->type = (uint16_t)parse_type(json_string_value(ct));
        if (c->type == 0) {
            s->host->set_error(s->ctx,
                               "%s: column \"%s\" has unknown type \"%s\" (bool, int16, int32, "
                               "int64, float32, float64, decimal, text, bytes, date, time, "
                               "timestamp, timestamptz, uuid, json)",
                               path, c->name, json_string_value(ct));
            goto out;
        }
        if ((ck && !json_is_boolean(ck)) || (cnull && !json_is_boolean(cnull)) ||
            json_int_member(jc, "precision", &c->precision) != 0 ||
            json_int_member(jc, "scale", &c->scale) != 0 ||
            json_int_member(jc, "max_length", &c->max_length) != 0) {
            s->host->set_error(s->ctx,
                               "%s: column \"%s\": \"key\"/\"nullable\" must be true or false, "
                               "\"precision\"/\"scale\"/\"max_length\" non-negative integers",
                               path, c->name);
            goto out;
        }
        if (ck && json_is_true(ck)) {
            c->flags |= SLUICE_COL_KEY;
            keys[nkeys++] = (uint32_t)i;
        } else if (!cnull || json_is_true(cnull)) {
            c->flags |= SLUICE_COL_NULLABLE; /* non-key columns are nullable unless told */
        }
    }
    if (nkeys == 0) {
        s->host->set_error(s->ctx,
                           "%s: no column has \"key\": true; updates and deletes need a key",
                           path);
        goto out;
    }
    struct sluice_entity desc = {
        .ns = jns ? json_string_value(jns) : "",
        .name = fe->name,
        .ncolumns = (uint32_t)n,
        .columns = cols,
        .nkeys = nkeys,
        .key_columns = keys,
    };
    fe->e = s->host->entity_declare(s->ctx, &desc);
    if (!fe->e)
        goto out; /* the host set the error text */
    fe->version_col = -1;
    if (jver) {
        fe->version_col = find_column(fe->e, json_string_value(jver));
        int vt = fe->version_col >= 0 ? fe->e->columns[fe->version_col].type : 0;
        if (vt != SLUICE_T_INT16 && vt != SLUICE_T_INT32 && vt != SLUICE_T_INT64) {
            s->host->set_error(s->ctx,
                               "%s: \"version_column\" \"%s\" must name an integer column",
                               path, json_string_value(jver));
            goto out;
        }
    }
    if (fe->e->ncolumns > s->nvals) {
        struct sluice_value *nv = realloc(s->vals, fe->e->ncolumns * sizeof *nv);
        if (!nv)
            goto nomem;
        s->vals = nv;
        s->nvals = fe->e->ncolumns;
    }
    rc = SLUICE_OK;
    goto out;
nomem:
    s->host->set_error(s->ctx, "out of memory reading the schema of \"%s\"", fe->name);
    rc = SLUICE_NOMEM;
out:
    free(cols);
    free(keys);
    json_decref(doc);
    free(path);
    return rc;
}

/* Find the snapshot file of an entity for the configured format. */
static int find_snapshot(struct fs_source *s, struct fs_entity *fe)
{
    static const struct {
        enum fs_format fmt;
        const char *ext;
    } kinds[] = {{FS_CSV, ".csv"}, {FS_JSONL, ".jsonl"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (s->format != FS_AUTO && s->format != kinds[i].fmt)
            continue;
        char *p = path_join(s->path, fe->name, kinds[i].ext);
        if (!p)
            return SLUICE_NOMEM;
        if (access(p, R_OK) == 0) {
            fe->snapshot_path = p;
            fe->snapshot_name = fs_strdup(strrchr(p, '/') + 1);
            fe->fmt = kinds[i].fmt;
            return fe->snapshot_name ? SLUICE_OK : SLUICE_NOMEM;
        }
        free(p);
    }
    s->host->set_error(s->ctx,
                       "entity \"%s\": no readable snapshot %s/%s%s in the source folder; "
                       "write one (a header-only CSV for an empty entity)",
                       fe->name, s->path, fe->name,
                       s->format == FS_JSONL ? ".jsonl"
                       : s->format == FS_CSV ? ".csv"
                                             : ".csv or .jsonl");
    return SLUICE_ERR;
}

/* ---- JSON values ---------------------------------------------------------- */

/* Convert one JSON value into a value of column c (varlen data into b).
 * Returns NULL, or the reason it cannot. */
static const char *json_to_value(struct fs_source *s, struct sluice_batch *b,
                                 const struct sluice_column *c, json_t *jv,
                                 struct sluice_value *out, char *reason, size_t cap)
{
    char num[64];
    const char *text = NULL;
    size_t len = 0;

    switch (json_typeof(jv)) {
    case JSON_NULL:
        sluice_value_set_null(out);
        return NULL;
    case JSON_STRING:
        text = json_string_value(jv);
        len = json_string_length(jv);
        break;
    case JSON_INTEGER:
        len = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(jv));
        text = num;
        break;
    case JSON_REAL:
        if (c->type == SLUICE_T_DECIMAL) {
            snprintf(reason, cap,
                     "column \"%s\": write decimals as JSON strings or integers (a JSON "
                     "fraction is a binary double and would not be exact)",
                     c->name);
            return reason;
        }
        if (c->type != SLUICE_T_FLOAT32 && c->type != SLUICE_T_FLOAT64 &&
            c->type != SLUICE_T_JSON)
            goto wrong;
        len = (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(jv));
        text = num;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        if (c->type != SLUICE_T_BOOL && c->type != SLUICE_T_JSON)
            goto wrong;
        text = json_is_true(jv) ? "true" : "false";
        len = strlen(text);
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        if (c->type != SLUICE_T_JSON)
            goto wrong;
        size_t need = json_dumpb(jv, NULL, 0, JSON_COMPACT);
        char *dst = need ? s->host->batch_alloc(b, need) : NULL;
        if (!dst || json_dumpb(jv, dst, need, JSON_COMPACT) != need) {
            snprintf(reason, cap, "column \"%s\": cannot serialise the JSON value", c->name);
            return reason;
        }
        sluice_value_set_ref(out, dst, (uint32_t)need);
        return NULL;
    }
    }
    if (s->host->value_parse(s->ctx, b, c, text, len, out) != SLUICE_OK) {
        snprintf(reason, cap, "column \"%s\": not a valid %s value", c->name,
                 sluice_type_name(c->type));
        return reason;
    }
    return NULL;
wrong:
    snprintf(reason, cap, "column \"%s\": a JSON %s is not a %s value", c->name,
             json_is_boolean(jv) ? "boolean" : json_is_real(jv) ? "number" : "object or array",
             sluice_type_name(c->type));
    return reason;
}

/* Fill the scratch values from a JSON object of column -> value. With
 * keys_only, every member must be a key column. */
static const char *json_row(struct fs_source *s, struct sluice_batch *b,
                            const struct sluice_entity *e, json_t *obj, bool keys_only,
                            char *reason, size_t cap)
{
    const char *k;
    json_t *jv;
    json_object_foreach(obj, k, jv) {
        int col = find_column(e, k);
        if (col < 0) {
            snprintf(reason, cap, "unknown column \"%.100s\" for entity %s", k, e->name);
            return reason;
        }
        if (keys_only && !(e->columns[col].flags & SLUICE_COL_KEY)) {
            snprintf(reason, cap, "\"key\" names column \"%s\", which is not a key column", k);
            return reason;
        }
        const char *why = json_to_value(s, b, &e->columns[col], jv, &s->vals[col], reason, cap);
        if (why)
            return why;
    }
    return NULL;
}

/* ---- snapshot: CSV ----------------------------------------------------------- */

struct csv_run {
    struct fs_source *s;
    struct fs_entity *fe;
    uint32_t ent_index;
    uint64_t line;           /* physical line being fed to the parser */
    uint64_t row_start_line; /* first line of the current row */
    uint64_t rowno;          /* data rows completed (header excluded) */
    uint64_t skip;           /* rows already durable: skip without parsing */
    uint64_t size;           /* file size, for the progress estimate */
    const struct fs_reader *reader;
    bool header_done;
    int *colmap; /* csv field index -> column index, -1 ignored */
    size_t nfields, capfields;
    size_t field; /* index of the next field in the current row */
    bool row_bad;
    char reason[320];
    struct sluice_batch *b;
    int status; /* SLUICE_OK until something stops the read */
};

static uint64_t count_newlines(const char *p, size_t n)
{
    uint64_t c = 0;
    for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
        c++;
    return c;
}

static int emit_snapshot_batch(struct fs_source *s, struct sluice_batch **bp,
                               const struct fs_entity *fe, uint32_t ent_index, uint64_t rowno,
                               uint64_t consumed, uint64_t size)
{
    if (s->fetch)
        return fetch_take(s, bp);
    struct sluice_batch *b = *bp;
    *bp = NULL;
    position_snapshot(&b->position, ent_index, rowno);
    b->flags |= SLUICE_BATCH_SNAPSHOT;
    uint64_t estimate = consumed ? (uint64_t)((double)rowno * (double)size / (double)consumed) : 0;
    s->host->progress(s->ctx, fe->e, rowno, estimate < rowno ? rowno : estimate);
    return s->host->emit(s->ctx, b);
}

static void csv_header_field(struct csv_run *cr, const char *str, size_t len)
{
    if (cr->status != SLUICE_OK)
        return;
    if (cr->nfields == cr->capfields) {
        size_t ncap = cr->capfields ? cr->capfields * 2 : 16;
        int *nm = realloc(cr->colmap, ncap * sizeof *nm);
        if (!nm) {
            cr->status = SLUICE_NOMEM;
            return;
        }
        cr->colmap = nm;
        cr->capfields = ncap;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(len < 255 ? len : 255), str ? str : "");
    int col = find_column(cr->fe->e, name);
    for (size_t i = 0; col >= 0 && i < cr->nfields; i++) {
        if (cr->colmap[i] == col) {
            cr->s->host->set_error(cr->s->ctx, "%s:%" PRIu64 ": column \"%s\" appears twice in the header",
                                   cr->fe->snapshot_path, cr->line, name);
            cr->status = SLUICE_ERR;
            return;
        }
    }
    if (col < 0)
        cr->s->host->log(cr->s->ctx, SLUICE_LOG_WARN,
                         "%s:%" PRIu64 ": header column \"%s\" is not in %s.schema.json; its "
                         "values are ignored (add it to the schema to export it)",
                         cr->fe->snapshot_path, cr->line, name, cr->fe->name);
    cr->colmap[cr->nfields++] = col;
}

static void csv_on_field(void *str, size_t len, void *data)
{
    struct csv_run *cr = data;
    if (!cr->header_done) {
        csv_header_field(cr, str, len);
        return;
    }
    if (cr->status != SLUICE_OK || cr->rowno < cr->skip) {
        cr->field++;
        return;
    }
    struct fs_source *s = cr->s;
    const struct sluice_entity *e = cr->fe->e;
    if (cr->field == 0) {
        cr->row_start_line = cr->line - (str ? count_newlines(str, len) : 0);
        cr->row_bad = false;
        reset_values(s->vals, e->ncolumns, SLUICE_NULL); /* a column not in the file is NULL */
    }
    size_t f = cr->field++;
    if (cr->row_bad || f >= cr->nfields || cr->colmap[f] < 0)
        return;
    if (!cr->b) {
        cr->b = s->host->batch_new(s->ctx);
        if (!cr->b) {
            cr->status = SLUICE_NOMEM;
            return;
        }
    }
    const struct sluice_column *c = &e->columns[cr->colmap[f]];
    if (str && s->host->value_parse(s->ctx, cr->b, c, str, len, &s->vals[cr->colmap[f]]) !=
                   SLUICE_OK) {
        snprintf(cr->reason, sizeof cr->reason, "column \"%s\": not a valid %s value", c->name,
                 sluice_type_name(c->type));
        cr->row_bad = true;
    }
}

static void csv_on_row(int term, void *data)
{
    struct csv_run *cr = data;
    struct fs_source *s = cr->s;
    const struct sluice_entity *e = cr->fe->e;
    (void)term;
    if (cr->status != SLUICE_OK)
        return;
    if (!cr->header_done) {
        cr->header_done = true;
        for (uint32_t k = 0; k < e->nkeys; k++) {
            bool found = false;
            for (size_t i = 0; i < cr->nfields; i++)
                found |= cr->colmap[i] == (int)e->key_columns[k];
            if (!found) {
                s->host->set_error(s->ctx,
                                   "%s:1: the header has no column \"%s\", a key column of %s",
                                   cr->fe->snapshot_path, e->columns[e->key_columns[k]].name,
                                   e->name);
                cr->status = SLUICE_ERR;
                return;
            }
        }
        return;
    }
    size_t nfields = cr->field;
    cr->field = 0;
    if (++cr->rowno <= cr->skip)
        return;

    char idbuf[1024];
    const char *id = format_record_id(s, e, s->vals, idbuf, sizeof idbuf);
    const char *why = cr->row_bad ? cr->reason : NULL;
    uint64_t version = 0;
    if (!why && nfields != cr->nfields) {
        snprintf(cr->reason, sizeof cr->reason,
                 "malformed CSV row: %zu fields where the header has %zu", nfields, cr->nfields);
        why = cr->reason;
    }
    if (!why)
        why = check_row(e, s->vals, cr->reason, sizeof cr->reason);
    if (!why && row_version(cr->fe, s->vals, &version, cr->reason, sizeof cr->reason) != 0)
        why = cr->reason;
    if (why) {
        fail_record(s, e, id, cr->fe->snapshot_name, cr->row_start_line, why);
        return;
    }
    if (!cr->b && !(cr->b = s->host->batch_new(s->ctx))) {
        cr->status = SLUICE_NOMEM;
        return;
    }
    cr->status = append_event(s, cr->b, e, SLUICE_OP_READ, version);
    if (cr->status == SLUICE_OK && s->host->batch_full(cr->b))
        cr->status = emit_snapshot_batch(s, &cr->b, cr->fe, cr->ent_index, cr->rowno,
                                         cr->reader->consumed, cr->size);
}

/* libcsv trims spaces and tabs around unquoted fields unless told otherwise. */
static int csv_no_space(unsigned char c)
{
    (void)c;
    return 0;
}

/* Read an entity's CSV snapshot after row `skip`. */
static int snapshot_csv(struct fs_source *s, struct fs_entity *fe, uint32_t ent_index,
                        uint64_t skip, struct fs_reader *r, uint64_t size)
{
    struct csv_parser p;
    struct csv_run cr = {.s = s, .fe = fe, .ent_index = ent_index, .skip = skip,
                         .size = size, .reader = r, .status = SLUICE_OK};
    const char *line;
    size_t len;
    int lr;
    bool inited = false;

    if (csv_init(&p, CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
        cr.status = SLUICE_NOMEM;
        goto out;
    }
    inited = true;
    csv_set_space_func(&p, csv_no_space); /* spaces are part of a field (RFC 4180) */
    /* grow the field buffer in 64 KiB steps, not libcsv's 128 bytes: a multi-MiB
     * field would otherwise cost a realloc (and copy) every 128 bytes */
    csv_set_blk_size(&p, 64u * 1024u);
    while (cr.status == SLUICE_OK && (lr = reader_line(r, true, &line, &len)) != FS_LINE_NONE) {
        if (lr == FS_LINE_ERROR) {
            s->host->set_error(s->ctx, "%s: read failed after line %" PRIu64 ": %s",
                               fe->snapshot_path, r->line, strerror(errno));
            cr.status = SLUICE_ERR;
            goto out;
        }
        cr.line = r->line;
        if (lr == FS_LINE_TOO_LONG) {
            fail_record(s, fe->e, NULL, fe->snapshot_name, r->line,
                        "line longer than 64 MiB; skipped");
            continue;
        }
        if (csv_parse(&p, line, len, csv_on_field, csv_on_row, &cr) != len) {
            s->host->set_error(s->ctx, "%s:%" PRIu64 ": CSV parser failed: %s",
                               fe->snapshot_path, r->line, csv_strerror(csv_error(&p)));
            cr.status = SLUICE_ERR;
            goto out;
        }
        if (cr.rowno < cr.skip && (r->line % FS_STOP_CHECK_EVERY) == 0 &&
            s->host->stopping(s->ctx))
            cr.status = SLUICE_STOPPED;
    }
    if (cr.status == SLUICE_OK)
        csv_fini(&p, csv_on_field, csv_on_row, &cr);
    if (cr.status == SLUICE_OK && !cr.header_done) {
        s->host->set_error(s->ctx, "%s: empty file; a CSV snapshot needs at least a header row",
                           fe->snapshot_path);
        cr.status = SLUICE_ERR;
    }
    if (cr.status == SLUICE_OK && cr.b && cr.b->nevents > 0)
        cr.status = emit_snapshot_batch(s, &cr.b, fe, ent_index, cr.rowno, r->consumed, size);
out:
    if (cr.b)
        s->host->batch_discard(cr.b);
    if (inited)
        csv_free(&p);
    free(cr.colmap);
    return cr.status;
}

/* ---- snapshot: JSON Lines ---------------------------------------------------- */

static bool blank_line(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
            return false;
    }
    return true;
}

static int snapshot_jsonl(struct fs_source *s, struct fs_entity *fe, uint32_t ent_index,
                          uint64_t skip, struct fs_reader *r, uint64_t size)
{
    const struct sluice_entity *e = fe->e;
    struct sluice_batch *b = NULL;
    int rc = SLUICE_OK;
    const char *line;
    size_t len;
    int lr;
    char reason[320];
    char idbuf[1024];

    while ((lr = reader_line(r, true, &line, &len)) != FS_LINE_NONE) {
        if (lr == FS_LINE_ERROR) {
            s->host->set_error(s->ctx, "%s: read failed after line %" PRIu64 ": %s",
                               fe->snapshot_path, r->line, strerror(errno));
            rc = SLUICE_ERR;
            goto out;
        }
        if (r->line <= skip) {
            if ((r->line % FS_STOP_CHECK_EVERY) == 0 && s->host->stopping(s->ctx)) {
                rc = SLUICE_STOPPED;
                goto out;
            }
            continue;
        }
        if (lr == FS_LINE_TOO_LONG) {
            fail_record(s, e, NULL, fe->snapshot_name, r->line, "line longer than 64 MiB; skipped");
            continue;
        }
        if (blank_line(line, len))
            continue;
        if (!b && !(b = s->host->batch_new(s->ctx))) {
            rc = SLUICE_NOMEM;
            goto out;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        const char *why = NULL;
        const char *id = NULL;
        uint64_t version = 0;
        reset_values(s->vals, e->ncolumns, SLUICE_NULL);
        if (!json_is_object(obj)) {
            snprintf(reason, sizeof reason, "not a JSON object: %s",
                     obj ? "the line holds another JSON value" : jerr.text);
            why = reason;
        }
        if (!why)
            why = json_row(s, b, e, obj, false, reason, sizeof reason);
        id = format_record_id(s, e, s->vals, idbuf, sizeof idbuf);
        if (!why)
            why = check_row(e, s->vals, reason, sizeof reason);
        if (!why && row_version(fe, s->vals, &version, reason, sizeof reason) != 0)
            why = reason;
        json_decref(obj);
        if (why) {
            fail_record(s, e, id, fe->snapshot_name, r->line, why);
            continue;
        }
        rc = append_event(s, b, e, SLUICE_OP_READ, version);
        if (rc == SLUICE_OK && s->host->batch_full(b))
            rc = emit_snapshot_batch(s, &b, fe, ent_index, r->line, r->consumed, size);
        if (rc != SLUICE_OK)
            goto out;
    }
    if (b && b->nevents > 0)
        rc = emit_snapshot_batch(s, &b, fe, ent_index, r->line, r->consumed, size);
out:
    if (b)
        s->host->batch_discard(b);
    return rc;
}

static int snapshot_entity(struct fs_source *s, uint32_t ent_index, uint64_t skip)
{
    struct fs_entity *fe = &s->ents[ent_index];
    struct fs_reader r;
    struct stat st;
    int rc;

    if (reader_open(&r, fe->snapshot_path) != 0) {
        s->host->set_error(s->ctx, "entity \"%s\": cannot open %s: %s", fe->name,
                           fe->snapshot_path, strerror(errno));
        return SLUICE_ERR;
    }
    uint64_t size = fstat(r.fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (s->fetch)
        ; /* a fetch scans quietly */
    else if (skip == 0)
        s->host->log(s->ctx, SLUICE_LOG_INFO, "initial sync of %s from %s", fe->name,
                     fe->snapshot_path);
    else
        s->host->log(s->ctx, SLUICE_LOG_INFO, "initial sync of %s resumes after row %" PRIu64,
                     fe->name, skip);
    if (fe->fmt == FS_CSV)
        rc = snapshot_csv(s, fe, ent_index, skip, &r, size);
    else
        rc = snapshot_jsonl(s, fe, ent_index, skip, &r, size);
    reader_close(&r);
    return rc;
}

/* ---- change files --------------------------------------------------------- */

/* Parse "<digits>.jsonl" into its number. */
static bool change_file_number(const char *name, uint64_t *no)
{
    size_t n = strspn(name, "0123456789");
    if (n == 0 || n > 19 || strcmp(name + n, ".jsonl") != 0)
        return false;
    *no = strtoull(name, NULL, 10);
    return true;
}

/* The change file with the smallest number >= min_no: SLUICE_OK with *no and
 * name set, SLUICE_NOT_FOUND, or SLUICE_ERR (two files with one number). */
static int next_change_file(struct fs_source *s, uint64_t min_no, uint64_t *no, char *name,
                            size_t cap)
{
    char dirpath[PATH_MAX];
    snprintf(dirpath, sizeof dirpath, "%s/changes", s->path);
    DIR *d = opendir(dirpath);
    if (!d) {
        if (errno == ENOENT)
            return SLUICE_NOT_FOUND; /* no changes yet */
        s->host->set_error(s->ctx, "%s: cannot list change files: %s", dirpath, strerror(errno));
        return SLUICE_ERR;
    }
    int rc = SLUICE_NOT_FOUND;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t n;
        if (!change_file_number(de->d_name, &n) || n < min_no)
            continue;
        if (rc == SLUICE_OK && n == *no) {
            s->host->set_error(s->ctx,
                               "%s: change files %s and %s have the same number; rename one",
                               dirpath, name, de->d_name);
            rc = SLUICE_ERR;
            break;
        }
        if (rc == SLUICE_NOT_FOUND || n < *no) {
            *no = n;
            snprintf(name, cap, "changes/%s", de->d_name);
            rc = SLUICE_OK;
        }
    }
    closedir(d);
    return rc;
}

static int change_op(const char *op)
{
    if (strcmp(op, "insert") == 0)
        return SLUICE_OP_INSERT;
    if (strcmp(op, "update") == 0)
        return SLUICE_OP_UPDATE;
    if (strcmp(op, "delete") == 0)
        return SLUICE_OP_DELETE;
    return 0;
}

/* One change line into b. Bad lines go to the failed-record log; only an
 * out-of-memory is returned as an error. */
static int change_line(struct fs_source *s, struct sluice_batch *b, const char *file,
                       uint64_t lineno, const char *line, size_t len)
{
    char reason[320];
    char idbuf[1024];
    const char *why = NULL;
    const char *id = NULL;
    const struct sluice_entity *e = NULL;
    int op = 0;
    int rc = SLUICE_OK;
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

    if (!json_is_object(obj)) {
        snprintf(reason, sizeof reason, "not a JSON object: %s",
                 obj ? "the line holds another JSON value" : jerr.text);
        why = reason;
        goto out;
    }
    json_t *jop = json_object_get(obj, "op");
    json_t *jent = json_object_get(obj, "entity");
    json_t *jver = json_object_get(obj, "version");
    op = json_is_string(jop) ? change_op(json_string_value(jop)) : 0;
    if (!op) {
        why = "\"op\" must be \"insert\", \"update\" or \"delete\"";
        goto out;
    }
    if (!json_is_string(jent)) {
        why = "\"entity\" must be a string";
        goto out;
    }
    for (uint32_t i = 0; i < s->nents; i++) {
        if (strcmp(s->ents[i].name, json_string_value(jent)) == 0)
            e = s->ents[i].e;
    }
    if (!e) {
        snprintf(reason, sizeof reason, "unknown entity \"%.100s\": not one of the profile's",
                 json_string_value(jent));
        why = reason;
        goto out;
    }
    if (!json_is_integer(jver) || json_integer_value(jver) < 1) {
        why = "\"version\" must be an integer >= 1 (snapshot rows have version 0)";
        goto out;
    }
    json_t *jrow = json_object_get(obj, op == SLUICE_OP_DELETE ? "key" : "row");
    if (!jrow && op == SLUICE_OP_DELETE)
        jrow = json_object_get(obj, "row");
    if (!json_is_object(jrow)) {
        why = op == SLUICE_OP_DELETE ? "a delete needs an object \"key\""
                                     : "an insert or update needs an object \"row\"";
        goto out;
    }
    /* an insert is a full row (a column it omits is NULL); an update keeps the
     * target's value of every column it omits; a delete carries only keys */
    reset_values(s->vals, e->ncolumns, op == SLUICE_OP_INSERT ? SLUICE_NULL : SLUICE_ABSENT);
    if (op == SLUICE_OP_DELETE) {
        const char *k;
        json_t *jv;
        json_object_foreach(jrow, k, jv) {
            int col = find_column(e, k);
            if (col < 0 || !(e->columns[col].flags & SLUICE_COL_KEY))
                continue; /* a full row image may come with a delete; only keys count */
            why = json_to_value(s, b, &e->columns[col], jv, &s->vals[col], reason, sizeof reason);
            if (why)
                break;
        }
    } else {
        why = json_row(s, b, e, jrow, false, reason, sizeof reason);
    }
    id = format_record_id(s, e, s->vals, idbuf, sizeof idbuf);
    if (!why)
        why = check_row(e, s->vals, reason, sizeof reason);
    if (!why)
        rc = append_event(s, b, e, op, (uint64_t)json_integer_value(jver));
out:
    if (why)
        fail_record(s, e, id, file, lineno, why);
    json_decref(obj);
    return rc;
}

static int emit_changes_batch(struct fs_source *s, struct sluice_batch **bp, uint64_t file,
                              uint64_t line)
{
    struct sluice_batch *b = *bp;
    if (!b || b->nevents == 0)
        return SLUICE_OK;
    if (s->fetch)
        return fetch_take(s, bp);
    *bp = NULL;
    position_changes(&b->position, file, line);
    return s->host->emit(s->ctx, b);
}

static int run_changes(struct fs_source *s, uint64_t resume_file, uint64_t resume_line, int mode)
{
    struct fs_reader r = {.fd = -1};
    struct sluice_batch *b = NULL;
    char name[NAME_MAX + 16] = "";
    char path[PATH_MAX];
    uint64_t min_no = resume_file, cur_no = 0, skip = 0;
    uint64_t pos_file = resume_file, pos_line = resume_line;
    int rc = SLUICE_OK;

    for (;;) {
        if (r.fd < 0) {
            uint64_t no = 0;
            rc = next_change_file(s, min_no, &no, name, sizeof name);
            if (rc == SLUICE_ERR)
                goto out;
            if (rc == SLUICE_NOT_FOUND) {
                rc = emit_changes_batch(s, &b, pos_file, pos_line);
                if (rc != SLUICE_OK || mode == SLUICE_RUN_ONCE)
                    goto out;
                if ((rc = s->host->wait(s->ctx, s->poll_ms)) != SLUICE_OK)
                    goto out;
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", s->path, name);
            if (reader_open(&r, path) != 0) {
                s->host->set_error(s->ctx, "cannot open change file %s: %s", path,
                                   strerror(errno));
                rc = SLUICE_ERR;
                goto out;
            }
            cur_no = no;
            min_no = no + 1;
            skip = no == resume_file ? resume_line : 0;
            s->host->log(s->ctx, SLUICE_LOG_DEBUG, "reading %s", path);
        }
        const char *line;
        size_t len;
        int lr = reader_line(&r, false, &line, &len);
        if (lr == FS_LINE_ERROR) {
            s->host->set_error(s->ctx, "%s: read failed after line %" PRIu64 ": %s", path,
                               r.line, strerror(errno));
            rc = SLUICE_ERR;
            goto out;
        }
        if (lr == FS_LINE_NONE) {
            /* no complete line now: move on to a newer file, or wait */
            uint64_t no;
            char newer[NAME_MAX + 16];
            rc = next_change_file(s, min_no, &no, newer, sizeof newer);
            if (rc == SLUICE_ERR)
                goto out;
            if (rc == SLUICE_OK) {
                if (reader_has_partial(&r))
                    fail_record(s, NULL, NULL, name, r.line + 1,
                                "incomplete last line (no '\\n') and a newer change file "
                                "exists; the line is skipped");
                reader_close(&r);
                continue;
            }
            rc = emit_changes_batch(s, &b, pos_file, pos_line);
            if (rc != SLUICE_OK || mode == SLUICE_RUN_ONCE)
                goto out;
            if ((rc = s->host->wait(s->ctx, s->poll_ms)) != SLUICE_OK)
                goto out;
            continue;
        }
        if (r.line <= skip)
            continue;
        pos_file = cur_no;
        pos_line = r.line;
        if (lr == FS_LINE_TOO_LONG) {
            fail_record(s, NULL, NULL, name, r.line, "line longer than 64 MiB; skipped");
            continue;
        }
        if (blank_line(line, len))
            continue;
        if (!b && !(b = s->host->batch_new(s->ctx))) {
            rc = SLUICE_NOMEM;
            goto out;
        }
        if ((rc = change_line(s, b, name, r.line, line, len)) != SLUICE_OK)
            goto out;
        if (s->host->batch_full(b) && (rc = emit_changes_batch(s, &b, pos_file, pos_line)) !=
                                          SLUICE_OK)
            goto out;
        if ((r.line % FS_STOP_CHECK_EVERY) == 0 && s->host->stopping(s->ctx)) {
            rc = SLUICE_STOPPED;
            goto out;
        }
    }
out:
    if (b)
        s->host->batch_discard(b);
    reader_close(&r);
    return rc == SLUICE_NOT_FOUND ? SLUICE_OK : rc;
}

/* ---- lifecycle and ops -------------------------------------------------------- */

static void fs_destroy(void *inst)
{
    struct fs_source *s = inst;
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nents; i++) {
        free(s->ents[i].name);
        free(s->ents[i].snapshot_path);
        free(s->ents[i].snapshot_name);
    }
    free(s->ents);
    free(s->vals);
    free(s->path);
    free(s);
}

static int fs_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                   const struct sluice_init_args *args, void **inst)
{
    const struct fs_config *cfg = args->config;
    struct fs_source *s = NULL;
    int rc = SLUICE_ERR;
    enum fs_format fmt;

    if (!cfg->format || strcmp(cfg->format, "auto") == 0)
        fmt = FS_AUTO;
    else if (strcmp(cfg->format, "csv") == 0)
        fmt = FS_CSV;
    else if (strcmp(cfg->format, "jsonl") == 0)
        fmt = FS_JSONL;
    else {
        host->set_error(ctx, "format = \"%s\": use \"auto\", \"csv\" or \"jsonl\"", cfg->format);
        goto out;
    }
    if (cfg->poll_interval_ms < 10 || cfg->poll_interval_ms > 3600000) {
        host->set_error(ctx, "poll_interval_ms = %" PRId64 " is out of range (10..3600000)",
                        cfg->poll_interval_ms);
        goto out;
    }
    if (!cfg->path || !*cfg->path) {
        host->set_error(ctx, "path is empty: give the folder holding the entity files");
        goto out;
    }
    rc = SLUICE_NOMEM;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->host = host;
    s->ctx = ctx;
    s->format = fmt;
    s->poll_ms = (uint32_t)cfg->poll_interval_ms;
    s->run_mode = args->run_mode;
    s->path = fs_strdup(cfg->path);
    s->ents = calloc(args->nentities ? args->nentities : 1, sizeof *s->ents);
    if (!s->path || !s->ents)
        goto out;
    for (uint32_t i = 0; i < args->nentities; i++) {
        s->ents[i].version_col = -1;
        if (!(s->ents[i].name = fs_strdup(args->entities[i])))
            goto out;
        s->nents++;
    }
    *inst = s;
    s = NULL;
    rc = SLUICE_OK;
out:
    fs_destroy(s);
    return rc;
}

static int fs_start(void *inst)
{
    struct fs_source *s = inst;
    struct stat st;
    if (stat(s->path, &st) != 0 || !S_ISDIR(st.st_mode) || access(s->path, R_OK | X_OK) != 0) {
        s->host->set_error(s->ctx, "path \"%s\" is not a readable folder: %s", s->path,
                           errno ? strerror(errno) : "not a directory");
        return SLUICE_ERR;
    }
    return SLUICE_OK;
}

static void fs_stop(void *inst)
{
    (void)inst;
}

static int fs_describe(void *inst)
{
    struct fs_source *s = inst;
    int rc = fs_start(s);
    for (uint32_t i = 0; rc == SLUICE_OK && i < s->nents; i++) {
        rc = load_schema(s, &s->ents[i]);
        if (rc == SLUICE_OK && !s->ents[i].snapshot_path)
            rc = find_snapshot(s, &s->ents[i]);
    }
    return rc;
}

static int fs_run(void *inst, const struct sluice_position *resume, int mode)
{
    struct fs_source *s = inst;
    uint32_t first_ent = 0;
    uint64_t skip_rows = 0, change_file = 0, change_line = 0;
    bool snapshot = true;
    int rc = SLUICE_OK;

    if (resume->len == FS_POS_SNAPSHOT_LEN && resume->bytes[0] == FS_POS_SNAPSHOT) {
        first_ent = (uint32_t)resume->bytes[1] << 24 | (uint32_t)resume->bytes[2] << 16 |
                    (uint32_t)resume->bytes[3] << 8 | resume->bytes[4];
        skip_rows = sluice_get_be64(resume->bytes + 5);
    } else if (resume->len == FS_POS_CHANGES_LEN && resume->bytes[0] == FS_POS_CHANGES) {
        snapshot = false;
        change_file = sluice_get_be64(resume->bytes + 1);
        change_line = sluice_get_be64(resume->bytes + 9);
    } else if (resume->len != 0) {
        s->host->set_error(s->ctx,
                           "the checkpoint (%u bytes) is not a file source position; was the "
                           "profile's source changed? Delete the profile's target checkpoint "
                           "to start over",
                           resume->len);
        return SLUICE_ERR;
    }
    if (snapshot && first_ent > s->nents) {
        s->host->set_error(s->ctx,
                           "the checkpoint names entity number %u but the profile has %u "
                           "entities; was the entity list changed?",
                           first_ent + 1, s->nents);
        return SLUICE_ERR;
    }
    for (uint32_t i = first_ent; snapshot && i < s->nents; i++) {
        rc = snapshot_entity(s, i, i == first_ent ? skip_rows : 0);
        if (rc != SLUICE_OK)
            return rc;
    }
    return run_changes(s, change_file, change_line, mode);
}

/* ---- fetch (resync of failed records) -------------------------------------------
 * The current state of one record: the snapshot and every change file are
 * read as by run(), but instead of being emitted each batch is searched for
 * the key and the record's events are merged in order (a full row replaces,
 * an update overlays the columns it carries, a delete removes). A linear scan:
 * fine for resyncing a few records, not meant for lookups in bulk. */

struct fs_fetch {
    const struct sluice_entity *e;
    const char *key_text;    /* record id of the wanted key */
    struct sluice_batch *cur; /* one event: the merged state so far, NULL none */
    bool deleted;
    int status;
};

/* Replace f->cur with a batch holding one event of op with values vals. */
static int fetch_keep(struct fs_source *s, struct fs_fetch *f, int op, uint64_t version,
                      const struct sluice_value *vals)
{
    const struct sluice_entity *e = f->e;
    struct sluice_batch *nb = s->host->batch_new(s->ctx);
    struct sluice_event *ev = nb ? s->host->batch_append(nb, e, op) : NULL;
    if (!ev) {
        if (nb)
            s->host->batch_discard(nb);
        s->host->set_error(s->ctx, "out of memory fetching a record of %s", e->name);
        return SLUICE_NOMEM;
    }
    ev->version = version;
    for (uint32_t c = 0; c < e->ncolumns; c++) {
        ev->values[c] = vals[c];
        if (vals[c].state == SLUICE_PRESENT && sluice_type_is_varlen(e->columns[c].type))
            ev->values[c].u.ptr = s->host->batch_copy(nb, vals[c].u.ptr, vals[c].len);
    }
    if (f->cur)
        s->host->batch_discard(f->cur);
    f->cur = nb;
    return SLUICE_OK;
}

static int fetch_take(struct fs_source *s, struct sluice_batch **bp)
{
    struct fs_fetch *f = s->fetch;
    struct sluice_batch *b = *bp;
    *bp = NULL;
    char idbuf[1024];
    for (size_t i = 0; f->status == SLUICE_OK && i < b->nevents; i++) {
        const struct sluice_event *ev = &b->events[i];
        if (ev->entity != f->e)
            continue;
        const char *id = format_record_id(s, f->e, ev->values, idbuf, sizeof idbuf);
        if (!id || strcmp(id, f->key_text) != 0)
            continue;
        const struct sluice_event *cur = f->cur ? &f->cur->events[0] : NULL;
        if (cur && ev->version < cur->version)
            continue; /* older than what we have: the target ignores it too */
        if (ev->op == SLUICE_OP_DELETE) {
            f->deleted = true;
            f->status = fetch_keep(s, f, SLUICE_OP_DELETE, ev->version, ev->values);
        } else if (ev->op == SLUICE_OP_UPDATE && cur && !f->deleted) {
            struct sluice_value merged[f->e->ncolumns];
            for (uint32_t c = 0; c < f->e->ncolumns; c++)
                merged[c] = ev->values[c].state == SLUICE_ABSENT ? cur->values[c] : ev->values[c];
            f->status = fetch_keep(s, f, SLUICE_OP_READ, ev->version, merged);
        } else {
            f->deleted = false;
            f->status = fetch_keep(s, f, SLUICE_OP_READ, ev->version, ev->values);
        }
    }
    s->host->batch_discard(b);
    return f->status;
}

static int fs_fetch(void *inst, const struct sluice_entity *e, const struct sluice_value *key,
                    struct sluice_batch *out)
{
    struct fs_source *s = inst;
    struct fs_fetch f = {.e = e, .status = SLUICE_OK};
    struct sluice_value *vals = NULL;
    char keybuf[1024];
    int rc = SLUICE_ERR;
    uint32_t ent = s->nents;
    for (uint32_t i = 0; i < s->nents; i++)
        if (s->ents[i].e == e || (s->ents[i].e && strcmp(s->ents[i].e->name, e->name) == 0))
            ent = i;
    if (ent == s->nents || !s->ents[ent].e) {
        s->host->set_error(s->ctx, "fetch: entity %s is not one of the profile's", e->name);
        goto out;
    }
    f.e = s->ents[ent].e;
    vals = calloc(f.e->ncolumns ? f.e->ncolumns : 1, sizeof *vals);
    if (!vals) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    for (uint32_t c = 0; c < f.e->ncolumns; c++)
        vals[c].state = SLUICE_ABSENT;
    for (uint32_t k = 0; k < f.e->nkeys; k++)
        vals[f.e->key_columns[k]] = key[k];
    f.key_text = format_record_id(s, f.e, vals, keybuf, sizeof keybuf);
    if (!f.key_text) {
        s->host->set_error(s->ctx,
                           "fetch: a key value of %s is missing, or the record id is longer "
                           "than %zu bytes",
                           f.e->name, sizeof keybuf - 1);
        goto out;
    }
    s->fetch = &f;
    rc = snapshot_entity(s, ent, 0);
    if (rc == SLUICE_OK)
        rc = run_changes(s, 0, 0, SLUICE_RUN_ONCE);
    s->fetch = NULL;
    if (rc != SLUICE_OK)
        goto out;
    if (!f.cur) { /* never existed, or gone before the snapshot: a delete says so */
        struct sluice_event *ev = s->host->batch_append(out, f.e, SLUICE_OP_DELETE);
        if (!ev) {
            rc = SLUICE_NOMEM;
            goto out;
        }
        for (uint32_t c = 0; c < f.e->ncolumns; c++)
            ev->values[c] = vals[c];
        for (uint32_t k = 0; k < f.e->nkeys; k++) {
            uint32_t c = f.e->key_columns[k];
            if (sluice_type_is_varlen(f.e->columns[c].type))
                ev->values[c].u.ptr = s->host->batch_copy(out, vals[c].u.ptr, vals[c].len);
        }
        goto out;
    }
    const struct sluice_event *cur = &f.cur->events[0];
    struct sluice_event *ev = s->host->batch_append(out, f.e, f.deleted ? SLUICE_OP_DELETE
                                                                        : SLUICE_OP_READ);
    if (!ev) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    ev->version = cur->version;
    for (uint32_t c = 0; c < f.e->ncolumns; c++) {
        ev->values[c] = cur->values[c];
        if (cur->values[c].state == SLUICE_PRESENT && sluice_type_is_varlen(f.e->columns[c].type))
            ev->values[c].u.ptr = s->host->batch_copy(out, cur->values[c].u.ptr,
                                                      cur->values[c].len);
    }
out:
    s->fetch = NULL;
    if (f.cur)
        s->host->batch_discard(f.cur);
    free(vals);
    return rc;
}

static const struct sluice_source_ops fs_ops = {
    .struct_size = sizeof(struct sluice_source_ops),
    .describe = fs_describe,
    .run = fs_run,
    .fetch = fs_fetch,
};

static const struct sluice_plugin fs_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SOURCE,
    .name = "file",
    .version = "1.0.0",
    .description = "entity snapshots (CSV or JSON Lines) and numbered change files from a folder",
    .config = fs_spec,
    .nconfig = sizeof fs_spec / sizeof fs_spec[0],
    .config_size = sizeof(struct fs_config),
    .init = fs_init,
    .start = fs_start,
    .stop = fs_stop,
    .destroy = fs_destroy,
    .ops = &fs_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &fs_plugin;
}
