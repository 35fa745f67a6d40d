/*
 * wire.c - batches on the transport, encoded with msgpack-c
 * (docs/wire-format.md has the layout and the version rules).
 *
 * A message is a sequence of msgpack objects rather than one big array, so
 * the decoder unpacks one event at a time into a zone it clears and reuses:
 * memory stays bounded by the largest event and nothing is allocated per
 * value. Every field is checked against what the schema in the same message
 * says before it touches the batch.
 */
#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#define WIRE_MAGIC "sluice"
#define WIRE_MAGIC_LEN 6
#define WIRE_EXT_ABSENT 1     /* msgpack ext type marking an ABSENT value */
#define WIRE_MAX_COLUMNS 4096 /* per entity; PostgreSQL allows 1600 */
#define WIRE_MAX_NAME 1024    /* bytes of a namespace, entity or column name */

/* ---- encoding ----------------------------------------------------------- */

static int buf_write(void *data, const char *p, size_t n)
{
    sl_buf_append(data, p, n);
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_header(msgpack_packer *pk, int kind)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_str(pk, WIRE_MAGIC_LEN);
    msgpack_pack_str_body(pk, WIRE_MAGIC, WIRE_MAGIC_LEN);
    msgpack_pack_uint32(pk, SL_WIRE_VERSION);
    msgpack_pack_uint32(pk, (uint32_t)kind);
}

static void pack_entity(msgpack_packer *pk, const struct sluice_entity *e)
{
    msgpack_pack_array(pk, 6);
    pack_str(pk, e->ns);
    pack_str(pk, e->name);
    msgpack_pack_uint32(pk, e->id);
    msgpack_pack_uint32(pk, e->schema_version);
    msgpack_pack_array(pk, e->ncolumns);
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        const struct sluice_column *c = &e->columns[i];
        msgpack_pack_array(pk, 6);
        pack_str(pk, c->name);
        msgpack_pack_uint16(pk, c->type);
        msgpack_pack_uint16(pk, c->flags);
        msgpack_pack_int32(pk, c->precision);
        msgpack_pack_int32(pk, c->scale);
        msgpack_pack_int32(pk, c->max_length);
    }
    msgpack_pack_array(pk, e->nkeys);
    for (uint32_t k = 0; k < e->nkeys; k++)
        msgpack_pack_uint32(pk, e->key_columns[k]);
}

static void pack_value(msgpack_packer *pk, int type, const struct sluice_value *v)
{
    if (v->state == SLUICE_NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    if (v->state != SLUICE_PRESENT) {
        msgpack_pack_ext(pk, 0, WIRE_EXT_ABSENT);
        return;
    }
    switch (type) {
    case SLUICE_T_BOOL:
        if (v->u.i64)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        msgpack_pack_double(pk, v->u.f64);
        break;
    case SLUICE_T_DECIMAL:
    case SLUICE_T_TEXT:
    case SLUICE_T_BYTES:
    case SLUICE_T_UUID:
    case SLUICE_T_JSON:
        msgpack_pack_bin(pk, v->len);
        msgpack_pack_bin_body(pk, v->u.ptr, v->len);
        break;
    default:
        msgpack_pack_int64(pk, v->u.i64);
        break;
    }
}

static bool selected(const uint32_t *event_part, uint32_t part, size_t i)
{
    return !event_part || event_part[i] == part || event_part[i] == SL_PART_ALL;
}

int sl_wire_encode(const struct sluice_batch *b, const uint32_t *event_part, uint32_t part,
                   struct sl_buf *out)
{
    const struct sluice_entity *small[16];
    const struct sluice_entity **ents = small;
    size_t nents = 0, cap = 16, nsel = 0;
    int rc = -1;
    msgpack_packer pk;

    /* the distinct schemas of the selected events, in first-use order */
    for (size_t i = 0; i < b->nevents; i++) {
        if (!selected(event_part, part, i))
            continue;
        nsel++;
        const struct sluice_entity *e = b->events[i].entity;
        size_t j;
        for (j = nents; j > 0; j--)
            if (ents[j - 1] == e)
                break;
        if (j > 0)
            continue;
        if (nents == cap) {
            size_t ncap = cap * 2;
            const struct sluice_entity **n = malloc(ncap * sizeof *n);
            if (!n)
                goto out;
            memcpy(n, ents, nents * sizeof *n);
            if (ents != small)
                free(ents);
            ents = n;
            cap = ncap;
        }
        ents[nents++] = e;
    }

    msgpack_packer_init(&pk, out, buf_write);
    pack_header(&pk, SL_WIRE_BATCH);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint32(&pk, part);
    msgpack_pack_uint64(&pk, b->seq);
    msgpack_pack_uint32(&pk, b->flags);
    uint32_t plen = b->position.len <= SLUICE_POSITION_MAX ? b->position.len : 0;
    msgpack_pack_bin(&pk, plen);
    msgpack_pack_bin_body(&pk, b->position.bytes, plen);
    msgpack_pack_uint64(&pk, nents);
    msgpack_pack_uint64(&pk, nsel);
    for (size_t j = 0; j < nents; j++)
        pack_entity(&pk, ents[j]);

    size_t last = 0;
    for (size_t i = 0; i < b->nevents; i++) {
        if (!selected(event_part, part, i))
            continue;
        const struct sluice_event *ev = &b->events[i];
        const struct sluice_entity *e = ev->entity;
        if (ents[last] != e) {
            for (last = 0; ents[last] != e; last++)
                ;
        }
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, (uint32_t)last);
        msgpack_pack_uint8(&pk, ev->op);
        msgpack_pack_uint64(&pk, ev->version);
        msgpack_pack_int64(&pk, ev->commit_time_us);
        msgpack_pack_uint64(&pk, ev->txid);
        msgpack_pack_array(&pk, e->ncolumns);
        for (uint32_t c = 0; c < e->ncolumns; c++)
            pack_value(&pk, e->columns[c].type, &ev->values[c]);
    }
    rc = 0;
out:
    if (ents != small)
        free(ents);
    return rc;
}

int sl_wire_encode_ref(const struct sl_wire_ref *ref, struct sl_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    pack_header(&pk, SL_WIRE_SPILL_REF);
    msgpack_pack_array(&pk, 5);
    size_t idlen = strnlen(ref->id, sizeof ref->id);
    if (idlen == sizeof ref->id)
        return -1;
    msgpack_pack_str(&pk, idlen);
    msgpack_pack_str_body(&pk, ref->id, idlen);
    msgpack_pack_uint64(&pk, ref->len);
    msgpack_pack_uint32(&pk, ref->partition);
    msgpack_pack_uint64(&pk, ref->seq);
    uint32_t plen = ref->position.len <= SLUICE_POSITION_MAX ? ref->position.len : 0;
    msgpack_pack_bin(&pk, plen);
    msgpack_pack_bin_body(&pk, ref->position.bytes, plen);
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* msgpack-c leaves ptr NULL for empty str/bin: no memchr/memcpy on those */
static bool has_nul(const char *p, size_t n)
{
    return n && memchr(p, '\0', n);
}

/*
 * msgpack-c allocates an array's or map's element storage from the count in
 * its header before reading the elements, so a hostile header (0xdd ffffffff)
 * asks for ~100 GB. This pass reads only type bytes and lengths (the decoding
 * itself stays msgpack-c's) and refuses a container that claims more
 * elements than bytes remain, so decoding memory stays O(message length).
 */
static bool counts_plausible(const unsigned char *p, size_t len)
{
    size_t off = 0;
    uint64_t pending = 0; /* objects announced by containers, not read yet */
    while (off < len) {
        unsigned b = p[off++];
        uint64_t skip = 0, items = 0;
        size_t hdr = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else if (b <= 0x8f)
            items = 2u * (b & 0x0f);
        else if (b <= 0x9f)
            items = b & 0x0f;
        else if (b <= 0xbf)
            skip = b & 0x1f;
        else {
            switch (b) {
            case 0xc4: case 0xd9: hdr = 1; break;                      /* bin8 str8 */
            case 0xc5: case 0xda: hdr = 2; break;                      /* bin16 str16 */
            case 0xc6: case 0xdb: hdr = 4; break;                      /* bin32 str32 */
            case 0xc7: hdr = 1; skip = 1; break;                       /* ext8 + type */
            case 0xc8: hdr = 2; skip = 1; break;
            case 0xc9: hdr = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break; /* fixext: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: hdr = 2; break;
            case 0xdd: case 0xdf: hdr = 4; break;
            default: return false; /* 0xc1 */
            }
            if (hdr) {
                if (len - off < hdr)
                    return false;
                uint64_t n = 0;
                for (size_t i = 0; i < hdr; i++)
                    n = n << 8 | p[off + i];
                off += hdr;
                if (b >= 0xdc)
                    items = b >= 0xde ? 2 * n : n;
                else
                    skip += n;
            }
        }
        if (skip > len - off)
            return false;
        off += skip;
        if (pending)
            pending--;
        pending += items;
        if (pending > len - off)
            return false;
    }
    return true;
}

static void copy_position(struct sluice_position *pos, const msgpack_object *bin)
{
    pos->len = bin->via.bin.size;
    if (pos->len)
        memcpy(pos->bytes, bin->via.bin.ptr, pos->len);
}

struct reader {
    const char *data;
    size_t len;
    size_t off;
    msgpack_unpacked u; /* zone reused for every object */
    char *err;
    size_t errlen;
};

/* next top-level object, or NULL with err set */
static const msgpack_object *next_obj(struct reader *r, const char *what)
{
    size_t at = r->off;
    if (r->off >= r->len) {
        snprintf(r->err, r->errlen, "message truncated: %s missing at byte %zu of %zu", what, at,
                 r->len);
        return NULL;
    }
    msgpack_unpack_return ret = msgpack_unpack_next(&r->u, r->data, r->len, &r->off);
    if (ret == MSGPACK_UNPACK_SUCCESS || ret == MSGPACK_UNPACK_EXTRA_BYTES)
        return &r->u.data;
    if (ret == MSGPACK_UNPACK_CONTINUE)
        snprintf(r->err, r->errlen, "message truncated inside the %s at byte %zu of %zu", what,
                 at, r->len);
    else if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        snprintf(r->err, r->errlen, "out of memory decoding the %s at byte %zu", what, at);
    else
        snprintf(r->err, r->errlen, "malformed msgpack in the %s at byte %zu", what, at);
    return NULL;
}

static bool get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return false;
    *out = o->via.u64;
    return true;
}

static bool get_i64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

static bool is_array(const msgpack_object *o, uint32_t n)
{
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == n;
}

/* header: ["sluice", version, kind]; -1 when not a sluice message */
static int check_header(const msgpack_object *o, uint64_t *version)
{
    uint64_t kind;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3)
        return -1;
    const msgpack_object *a = o->via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_STR || a[0].via.str.size != WIRE_MAGIC_LEN ||
        memcmp(a[0].via.str.ptr, WIRE_MAGIC, WIRE_MAGIC_LEN) != 0)
        return -1;
    if (!get_u64(&a[1], UINT32_MAX, version) || !get_u64(&a[2], UINT32_MAX, &kind))
        return -1;
    return (int)kind;
}

/* reader with header checked for version and kind; 0 or -1 */
static int open_reader(struct reader *r, const void *data, size_t len, int want, char *err,
                       size_t errlen)
{
    uint64_t version = 0;
    r->data = data;
    r->len = len;
    r->off = 0;
    r->err = err;
    r->errlen = errlen;
    msgpack_unpacked_init(&r->u);
    if (!counts_plausible(data, len)) {
        snprintf(err, errlen, "malformed message: a length or element count points past the "
                              "end of its %zu bytes (damaged or truncated)",
                 len);
        return -1;
    }
    const msgpack_object *o = next_obj(r, "header");
    if (!o)
        return -1;
    int kind = check_header(o, &version);
    if (kind < 0) {
        snprintf(err, errlen, "not a sluice wire message (bad magic); is the transport shared "
                              "with another producer?");
        return -1;
    }
    if (version != SL_WIRE_VERSION) {
        snprintf(err, errlen,
                 "wire format version %" PRIu64 " is not supported (this sluice reads version "
                 "%d); upgrade the consumer or drain the transport with the old version",
                 version, SL_WIRE_VERSION);
        return -1;
    }
    if (kind != want) {
        snprintf(err, errlen, "message kind %d where kind %d was expected", kind, want);
        return -1;
    }
    return 0;
}

int sl_wire_kind(const void *data, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    uint64_t version;
    int kind = -1;
    msgpack_unpacked_init(&u);
    if (!counts_plausible(data, len))
        return -1;
    msgpack_unpack_return ret = msgpack_unpack_next(&u, data, len, &off);
    if (ret == MSGPACK_UNPACK_SUCCESS || ret == MSGPACK_UNPACK_EXTRA_BYTES)
        kind = check_header(&u.data, &version);
    msgpack_unpacked_destroy(&u);
    return kind;
}

static char *arena_name(struct sl_batch *b, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > WIRE_MAX_NAME ||
        has_nul(o->via.str.ptr, o->via.str.size))
        return NULL;
    char *s = sl_batch_alloc(b, o->via.str.size + 1);
    if (!s)
        return NULL;
    if (o->via.str.size)
        memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

static int decode_entity(struct reader *r, struct sl_batch *b, size_t idx)
{
    char why[256];
    const msgpack_object *o = next_obj(r, "entity schema");
    if (!o)
        return -1;
    if (!is_array(o, 6))
        goto bad;
    const msgpack_object *a = o->via.array.ptr;
    struct sluice_entity *e = sl_batch_alloc(b, sizeof *e);
    if (!e)
        goto nomem;
    memset(e, 0, sizeof *e);
    uint64_t id, sv;
    e->ns = arena_name(b, &a[0]);
    e->name = arena_name(b, &a[1]);
    if (!e->ns || !e->name || !get_u64(&a[2], UINT32_MAX, &id) ||
        !get_u64(&a[3], UINT32_MAX, &sv) || a[4].type != MSGPACK_OBJECT_ARRAY ||
        a[5].type != MSGPACK_OBJECT_ARRAY || a[4].via.array.size > WIRE_MAX_COLUMNS ||
        a[5].via.array.size > a[4].via.array.size)
        goto bad;
    e->id = (uint32_t)id;
    e->schema_version = (uint32_t)sv;
    e->ncolumns = a[4].via.array.size;
    e->nkeys = a[5].via.array.size;
    struct sluice_column *cols = sl_batch_alloc(b, e->ncolumns * sizeof *cols);
    uint32_t *keys = sl_batch_alloc(b, (e->nkeys ? e->nkeys : 1) * sizeof *keys);
    if (!cols || !keys)
        goto nomem;
    for (uint32_t i = 0; i < e->ncolumns; i++) {
        const msgpack_object *c = &a[4].via.array.ptr[i];
        int64_t prec, scale, maxlen;
        uint64_t type, flags;
        if (!is_array(c, 6))
            goto bad;
        const msgpack_object *f = c->via.array.ptr;
        cols[i].name = arena_name(b, &f[0]);
        if (!cols[i].name || !get_u64(&f[1], SLUICE_T_MAX, &type) ||
            !get_u64(&f[2], UINT16_MAX, &flags) || !get_i64(&f[3], &prec) ||
            !get_i64(&f[4], &scale) || !get_i64(&f[5], &maxlen) || prec < INT32_MIN ||
            prec > INT32_MAX || scale < INT32_MIN || scale > INT32_MAX || maxlen < INT32_MIN ||
            maxlen > INT32_MAX)
            goto bad;
        cols[i].type = (uint16_t)type;
        cols[i].flags = (uint16_t)flags;
        cols[i].precision = (int32_t)prec;
        cols[i].scale = (int32_t)scale;
        cols[i].max_length = (int32_t)maxlen;
    }
    for (uint32_t k = 0; k < e->nkeys; k++) {
        uint64_t kc;
        if (!get_u64(&a[5].via.array.ptr[k], UINT32_MAX, &kc))
            goto bad;
        keys[k] = (uint32_t)kc;
    }
    e->columns = cols;
    e->key_columns = keys;
    if (sl_entity_validate(e, why, sizeof why) != 0) {
        snprintf(r->err, r->errlen, "entity schema %zu (%s) in the message is invalid: %s", idx,
                 e->name, why);
        return -1;
    }
    b->entities[idx] = e;
    return 0;
bad:
    snprintf(r->err, r->errlen, "entity schema %zu in the message is malformed", idx);
    return -1;
nomem:
    snprintf(r->err, r->errlen, "out of memory decoding entity schema %zu", idx);
    return -1;
}

static bool decimal_text_ok(const char *p, uint32_t n)
{
    if ((n == 3 && memcmp(p, "NaN", 3) == 0) || (n == 8 && memcmp(p, "Infinity", 8) == 0) ||
        (n == 9 && memcmp(p, "-Infinity", 9) == 0))
        return true;
    uint32_t i = (n && p[0] == '-') ? 1 : 0, ndig = 0, npoint = 0;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9')
            ndig++;
        else if (p[i] == '.' && npoint++ == 0)
            ;
        else
            return false;
    }
    return ndig > 0;
}

/* one value of column c; NULL message on success, else why it is wrong */
static const char *decode_value(struct sl_batch *b, const struct sluice_column *c,
                                const msgpack_object *o, struct sluice_value *v)
{
    int64_t i;
    if (o->type == MSGPACK_OBJECT_NIL) {
        /* NOT NULL is the sink's to enforce, per record */
        sluice_value_set_null(v);
        return NULL;
    }
    if (o->type == MSGPACK_OBJECT_EXT) {
        if (o->via.ext.type != WIRE_EXT_ABSENT || o->via.ext.size != 0)
            return "unknown msgpack ext value";
        v->state = SLUICE_ABSENT;
        return NULL;
    }
    switch (c->type) {
    case SLUICE_T_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return "a bool column holds a non-bool value";
        sluice_value_set_int(v, o->via.boolean ? 1 : 0);
        return NULL;
    case SLUICE_T_FLOAT32:
    case SLUICE_T_FLOAT64:
        if (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32)
            return "a float column holds a non-float value";
        sluice_value_set_float(v, o->via.f64);
        return NULL;
    case SLUICE_T_DECIMAL:
    case SLUICE_T_TEXT:
    case SLUICE_T_BYTES:
    case SLUICE_T_UUID:
    case SLUICE_T_JSON: {
        if (o->type != MSGPACK_OBJECT_BIN)
            return "a varlen column holds a non-bin value";
        const char *p = o->via.bin.ptr;
        uint32_t n = o->via.bin.size;
        if (c->type == SLUICE_T_UUID && n != 16)
            return "a uuid is not 16 bytes";
        if (c->type == SLUICE_T_TEXT && has_nul(p, n))
            return "text holds a NUL byte";
        if (c->type == SLUICE_T_DECIMAL && !decimal_text_ok(p, n))
            return "a decimal is not decimal text";
        const char *copy = sl_batch_copy(b, p, n);
        if (!copy)
            return "out of memory";
        sluice_value_set_ref(v, copy, n);
        return NULL;
    }
    default:
        if (!get_i64(o, &i))
            return "an integer-valued column holds a non-integer value";
        if ((c->type == SLUICE_T_INT16 && (i < INT16_MIN || i > INT16_MAX)) ||
            (c->type == SLUICE_T_INT32 && (i < INT32_MIN || i > INT32_MAX)))
            return "an integer is out of the column type's range";
        if (c->type == SLUICE_T_TIME && (i < 0 || i > INT64_C(86400000000)))
            return "a time is outside 00:00:00..24:00:00";
        sluice_value_set_int(v, i);
        return NULL;
    }
}

static int decode_event(struct reader *r, struct sl_batch *b, size_t idx)
{
    const msgpack_object *o = next_obj(r, "event");
    uint64_t ent, op, version, txid;
    int64_t ctime;
    if (!o)
        return -1;
    if (!is_array(o, 6))
        goto bad;
    const msgpack_object *a = o->via.array.ptr;
    if (!get_u64(&a[0], b->nentities ? b->nentities - 1 : 0, &ent) || ent >= b->nentities ||
        !get_u64(&a[1], SLUICE_OP_TRUNCATE, &op) || op < SLUICE_OP_READ ||
        !get_u64(&a[2], UINT64_MAX, &version) || !get_i64(&a[3], &ctime) ||
        !get_u64(&a[4], UINT64_MAX, &txid))
        goto bad;
    const struct sluice_entity *e = b->entities[ent];
    if (!is_array(&a[5], e->ncolumns)) {
        snprintf(r->err, r->errlen, "event %zu (entity %s) has %u values, the schema has %u columns",
                 idx, e->name,
                 a[5].type == MSGPACK_OBJECT_ARRAY ? a[5].via.array.size : 0, e->ncolumns);
        return -1;
    }
    struct sluice_event *ev = sl_batch_append(b, e, (int)op);
    if (!ev) {
        snprintf(r->err, r->errlen, "out of memory decoding event %zu", idx);
        return -1;
    }
    ev->version = version;
    ev->commit_time_us = ctime;
    ev->txid = txid;
    const msgpack_object *vals = a[5].via.array.ptr;
    for (uint32_t c = 0; c < e->ncolumns; c++) {
        const char *why = decode_value(b, &e->columns[c], &vals[c], &ev->values[c]);
        if (why) {
            snprintf(r->err, r->errlen, "event %zu (entity %s) column \"%s\" (%s): %s", idx,
                     e->name, e->columns[c].name, sluice_type_name(e->columns[c].type), why);
            return -1;
        }
    }
    return 0;
bad:
    snprintf(r->err, r->errlen, "event %zu in the message is malformed", idx);
    return -1;
}

int sl_wire_decode(const void *data, size_t len, struct sl_batch *b, char *err, size_t errlen)
{
    struct reader r;
    int rc = -1;
    uint64_t part, seq, flags, nents, nevents;
    sl_batch_reset(b);
    if (open_reader(&r, data, len, SL_WIRE_BATCH, err, errlen) != 0)
        goto out;
    const msgpack_object *o = next_obj(&r, "batch header");
    if (!o)
        goto out;
    const msgpack_object *a = o->via.array.ptr;
    /* each entity and event takes at least 8 bytes, so counts above len are lies */
    if (!is_array(o, 6) || !get_u64(&a[0], UINT32_MAX, &part) ||
        !get_u64(&a[1], UINT64_MAX, &seq) || !get_u64(&a[2], UINT32_MAX, &flags) ||
        a[3].type != MSGPACK_OBJECT_BIN || a[3].via.bin.size > SLUICE_POSITION_MAX ||
        !get_u64(&a[4], len, &nents) || !get_u64(&a[5], len, &nevents)) {
        snprintf(err, errlen, "the batch header is malformed");
        goto out;
    }
    b->pub.partition = (uint32_t)part;
    b->pub.seq = seq;
    b->pub.flags = (uint32_t)flags;
    copy_position(&b->pub.position, &a[3]);
    if (nents > b->cap_entities) {
        const struct sluice_entity **n = realloc(b->entities, nents * sizeof *n);
        if (!n) {
            snprintf(err, errlen, "out of memory for %" PRIu64 " entity schemas", nents);
            goto out;
        }
        b->entities = n;
        b->cap_entities = nents;
    }
    for (size_t i = 0; i < nents; i++) {
        if (decode_entity(&r, b, i) != 0)
            goto out;
        b->nentities = i + 1;
    }
    for (size_t i = 0; i < nevents; i++)
        if (decode_event(&r, b, i) != 0)
            goto out;
    if (r.off != len) {
        snprintf(err, errlen, "%zu bytes of garbage after the last event", len - r.off);
        goto out;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&r.u);
    if (rc != 0)
        sl_batch_reset(b);
    return rc;
}

int sl_wire_decode_ref(const void *data, size_t len, struct sl_wire_ref *ref, char *err,
                       size_t errlen)
{
    struct reader r;
    int rc = -1;
    uint64_t part, seq, blen;
    memset(ref, 0, sizeof *ref);
    if (open_reader(&r, data, len, SL_WIRE_SPILL_REF, err, errlen) != 0)
        goto out;
    const msgpack_object *o = next_obj(&r, "spill reference");
    if (!o)
        goto out;
    const msgpack_object *a = o->via.array.ptr;
    if (!is_array(o, 5) || a[0].type != MSGPACK_OBJECT_STR ||
        a[0].via.str.size >= sizeof ref->id || a[0].via.str.size == 0 ||
        has_nul(a[0].via.str.ptr, a[0].via.str.size) || !get_u64(&a[1], UINT64_MAX, &blen) ||
        !get_u64(&a[2], UINT32_MAX, &part) || !get_u64(&a[3], UINT64_MAX, &seq) ||
        a[4].type != MSGPACK_OBJECT_BIN || a[4].via.bin.size > SLUICE_POSITION_MAX) {
        snprintf(err, errlen, "the spill reference is malformed");
        goto out;
    }
    if (r.off != len) {
        snprintf(err, errlen, "%zu bytes of garbage after the spill reference", len - r.off);
        goto out;
    }
    memcpy(ref->id, a[0].via.str.ptr, a[0].via.str.size);
    ref->len = blen;
    ref->partition = (uint32_t)part;
    ref->seq = seq;
    copy_position(&ref->position, &a[4]);
    rc = 0;
out:
    msgpack_unpacked_destroy(&r.u);
    if (rc != 0)
        memset(ref, 0, sizeof *ref);
    return rc;
}
