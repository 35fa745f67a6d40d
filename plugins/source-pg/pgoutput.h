/*
 * pgoutput.h - a decoder for PostgreSQL's logical replication protocol as the
 * built-in pgoutput plugin writes it (proto_version 1), and for the walsender's
 * CopyBoth frames around it ('w' XLogData, 'k' keepalive).
 *
 * Pure functions over one message buffer: no libpq, no allocation except the
 * growable arrays the caller passes in. Every decoder checks lengths and
 * returns -1 on a short or malformed message, 0 on success. Pointers handed
 * out (names, column text) point into the message buffer and live as long as
 * it does; names are NUL-terminated there, column text is not.
 */
#ifndef SOURCE_PG_PGOUTPUT_H
#define SOURCE_PG_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01 */
#define PGO_EPOCH_OFFSET_US 946684800000000LL

/* ---- CopyBoth frames ------------------------------------------------------- */

struct pgo_frame {
    char type;          /* 'w' XLogData or 'k' keepalive */
    uint64_t wal_start; /* 'w': LSN of the change (dataStart) */
    uint64_t wal_end;   /* server's WAL position */
    int64_t send_time;  /* us since 2000-01-01 */
    bool reply;         /* 'k': the server wants a status update now */
    const uint8_t *data; /* 'w': the pgoutput message */
    size_t len;
};

int pgo_frame(const uint8_t *buf, size_t len, struct pgo_frame *f);

/* A standby status update ('r'): 34 bytes into out. */
void pgo_status_update(uint8_t out[34], uint64_t write, uint64_t flush, uint64_t apply,
                       int64_t now_pg_us, bool reply);

/* ---- pgoutput messages ---------------------------------------------------- */

struct pgo_begin {
    uint64_t final_lsn;
    int64_t commit_time; /* us since 2000-01-01 */
    uint32_t xid;
};

struct pgo_commit {
    uint8_t flags;
    uint64_t commit_lsn;
    uint64_t end_lsn;
    int64_t commit_time;
};

struct pgo_att {
    uint8_t flags; /* 1: part of the replica identity key */
    const char *name;
    uint32_t typoid;
    int32_t typmod;
};

struct pgo_relation {
    uint32_t relid;
    const char *nspname;
    const char *relname;
    uint8_t replident;
    uint16_t natts;
    struct pgo_att *atts; /* caller's growable array */
    size_t cap;
};

struct pgo_col {
    uint8_t kind; /* 'n' NULL, 'u' unchanged TOAST, 't' text */
    const char *data;
    uint32_t len;
};

struct pgo_tuple {
    uint16_t ncols;
    struct pgo_col *cols; /* caller's growable array */
    size_t cap;
};

struct pgo_change {
    char op;        /* 'I', 'U' or 'D' */
    uint32_t relid;
    char old_kind;  /* 'K' (key), 'O' (full old row) or 0 */
    bool has_new;
    struct pgo_tuple old_tuple, new_tuple;
};

struct pgo_truncate {
    uint32_t nrels;
    uint8_t options; /* 1 CASCADE, 2 RESTART IDENTITY */
    uint32_t *relids; /* caller's growable array */
    size_t cap;
};

struct pgo_message {
    uint8_t flags; /* 1: transactional */
    uint64_t lsn;
    const char *prefix;
    const char *content;
    uint32_t len;
};

int pgo_begin(const uint8_t *buf, size_t len, struct pgo_begin *out);
int pgo_commit(const uint8_t *buf, size_t len, struct pgo_commit *out);
int pgo_relation(const uint8_t *buf, size_t len, struct pgo_relation *out);
int pgo_change(const uint8_t *buf, size_t len, struct pgo_change *out);
int pgo_truncate(const uint8_t *buf, size_t len, struct pgo_truncate *out);
int pgo_message(const uint8_t *buf, size_t len, struct pgo_message *out);

/* "16/B374D848" <-> LSN */
int pgo_lsn_parse(const char *text, uint64_t *lsn);
void pgo_lsn_format(uint64_t lsn, char out[24]);

#endif
