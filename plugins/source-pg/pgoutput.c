/*
 * pgoutput.c - decoding of pgoutput messages (protocol version 1) and the
 * walsender's CopyBoth frames. See pgoutput.h; the layouts are those of
 * PostgreSQL's "Logical Replication Message Formats" and "Streaming
 * Replication Protocol" chapters. Integers are big-endian.
 */
#include "pgoutput.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static bool need(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t rd_u8(struct rd *r)
{
    if (!need(r, 1))
        return 0;
    return *r->p++;
}

static uint16_t rd_u16(struct rd *r)
{
    if (!need(r, 2))
        return 0;
    uint16_t v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    return v;
}

static uint32_t rd_u32(struct rd *r)
{
    if (!need(r, 4))
        return 0;
    uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
                 r->p[3];
    r->p += 4;
    return v;
}

static uint64_t rd_u64(struct rd *r)
{
    uint64_t hi = rd_u32(r);
    return hi << 32 | rd_u32(r);
}

/* a NUL-terminated string inside the buffer */
static const char *rd_str(struct rd *r)
{
    if (r->bad)
        return "";
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul) {
        r->bad = true;
        return "";
    }
    const char *s = (const char *)r->p;
    r->p = nul + 1;
    return s;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static int grow(void **arr, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < want)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

int pgo_frame(const uint8_t *buf, size_t len, struct pgo_frame *f)
{
    struct rd r = {buf, buf + len, false};
    memset(f, 0, sizeof *f);
    f->type = (char)rd_u8(&r);
    if (f->type == 'w') {
        f->wal_start = rd_u64(&r);
        f->wal_end = rd_u64(&r);
        f->send_time = (int64_t)rd_u64(&r);
        f->data = r.p;
        f->len = r.bad ? 0 : (size_t)(r.end - r.p);
    } else if (f->type == 'k') {
        f->wal_end = rd_u64(&r);
        f->send_time = (int64_t)rd_u64(&r);
        f->reply = rd_u8(&r) != 0;
    } else {
        return -1;
    }
    return r.bad ? -1 : 0;
}

void pgo_status_update(uint8_t out[34], uint64_t write, uint64_t flush, uint64_t apply,
                       int64_t now_pg_us, bool reply)
{
    out[0] = 'r';
    put_u64(out + 1, write);
    put_u64(out + 9, flush);
    put_u64(out + 17, apply);
    put_u64(out + 25, (uint64_t)now_pg_us);
    out[33] = reply ? 1 : 0;
}

int pgo_begin(const uint8_t *buf, size_t len, struct pgo_begin *out)
{
    struct rd r = {buf, buf + len, false};
    if (rd_u8(&r) != 'B')
        return -1;
    out->final_lsn = rd_u64(&r);
    out->commit_time = (int64_t)rd_u64(&r);
    out->xid = rd_u32(&r);
    return r.bad ? -1 : 0;
}

int pgo_commit(const uint8_t *buf, size_t len, struct pgo_commit *out)
{
    struct rd r = {buf, buf + len, false};
    if (rd_u8(&r) != 'C')
        return -1;
    out->flags = rd_u8(&r);
    out->commit_lsn = rd_u64(&r);
    out->end_lsn = rd_u64(&r);
    out->commit_time = (int64_t)rd_u64(&r);
    return r.bad ? -1 : 0;
}

int pgo_relation(const uint8_t *buf, size_t len, struct pgo_relation *out)
{
    struct rd r = {buf, buf + len, false};
    if (rd_u8(&r) != 'R')
        return -1;
    out->relid = rd_u32(&r);
    out->nspname = rd_str(&r);
    out->relname = rd_str(&r);
    out->replident = rd_u8(&r);
    out->natts = rd_u16(&r);
    if (r.bad || grow((void **)&out->atts, &out->cap, out->natts ? out->natts : 1,
                      sizeof *out->atts) != 0)
        return -1;
    for (uint16_t i = 0; i < out->natts && !r.bad; i++) {
        struct pgo_att *a = &out->atts[i];
        a->flags = rd_u8(&r);
        a->name = rd_str(&r);
        a->typoid = rd_u32(&r);
        a->typmod = (int32_t)rd_u32(&r);
    }
    return r.bad ? -1 : 0;
}

static int read_tuple(struct rd *r, struct pgo_tuple *t)
{
    t->ncols = rd_u16(r);
    if (r->bad || grow((void **)&t->cols, &t->cap, t->ncols ? t->ncols : 1, sizeof *t->cols) != 0)
        return -1;
    for (uint16_t i = 0; i < t->ncols && !r->bad; i++) {
        struct pgo_col *c = &t->cols[i];
        c->kind = rd_u8(r);
        c->data = NULL;
        c->len = 0;
        if (c->kind == 't') {
            c->len = rd_u32(r);
            if (!need(r, c->len))
                return -1;
            c->data = (const char *)r->p;
            r->p += c->len;
        } else if (c->kind != 'n' && c->kind != 'u') {
            /* 'b' (binary) only exists with the binary option, which we never ask for */
            r->bad = true;
        }
    }
    return r->bad ? -1 : 0;
}

int pgo_change(const uint8_t *buf, size_t len, struct pgo_change *out)
{
    struct rd r = {buf, buf + len, false};
    out->op = (char)rd_u8(&r);
    out->relid = rd_u32(&r);
    out->old_kind = 0;
    out->has_new = false;
    uint8_t tag = rd_u8(&r);
    if (r.bad)
        return -1;
    switch (out->op) {
    case 'I':
        if (tag != 'N' || read_tuple(&r, &out->new_tuple) != 0)
            return -1;
        out->has_new = true;
        break;
    case 'U':
        if (tag == 'K' || tag == 'O') {
            out->old_kind = (char)tag;
            if (read_tuple(&r, &out->old_tuple) != 0)
                return -1;
            tag = rd_u8(&r);
        }
        if (tag != 'N' || read_tuple(&r, &out->new_tuple) != 0)
            return -1;
        out->has_new = true;
        break;
    case 'D':
        if (tag != 'K' && tag != 'O')
            return -1;
        out->old_kind = (char)tag;
        if (read_tuple(&r, &out->old_tuple) != 0)
            return -1;
        break;
    default:
        return -1;
    }
    return r.bad ? -1 : 0;
}

int pgo_truncate(const uint8_t *buf, size_t len, struct pgo_truncate *out)
{
    struct rd r = {buf, buf + len, false};
    if (rd_u8(&r) != 'T')
        return -1;
    out->nrels = rd_u32(&r);
    out->options = rd_u8(&r);
    if (r.bad || out->nrels > len ||
        grow((void **)&out->relids, &out->cap, out->nrels ? out->nrels : 1,
             sizeof *out->relids) != 0)
        return -1;
    for (uint32_t i = 0; i < out->nrels && !r.bad; i++)
        out->relids[i] = rd_u32(&r);
    return r.bad ? -1 : 0;
}

int pgo_message(const uint8_t *buf, size_t len, struct pgo_message *out)
{
    struct rd r = {buf, buf + len, false};
    if (rd_u8(&r) != 'M')
        return -1;
    out->flags = rd_u8(&r);
    out->lsn = rd_u64(&r);
    out->prefix = rd_str(&r);
    out->len = rd_u32(&r);
    if (!need(&r, out->len))
        return -1;
    out->content = (const char *)r.p;
    return 0;
}

int pgo_lsn_parse(const char *text, uint64_t *lsn)
{
    unsigned int hi, lo;
    int n = 0;
    if (!text || sscanf(text, "%X/%X%n", &hi, &lo, &n) != 2 || text[n] != '\0')
        return -1;
    *lsn = (uint64_t)hi << 32 | lo;
    return 0;
}

void pgo_lsn_format(uint64_t lsn, char out[24])
{
    snprintf(out, 24, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}
