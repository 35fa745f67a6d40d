#!/usr/bin/env python3
"""gen-crm-data.py - deterministic CRM test data for the file source.

Writes, into --out, the layout the file source reads (docs/source-file.md):

  accounts.schema.json, contacts.schema.json, opportunities.schema.json
  accounts.csv|.jsonl, contacts.csv|.jsonl, opportunities.csv|.jsonl
  changes/000001.jsonl ...  inserts, updates (some partial), deletes

and with --expected DIR the final state each target table must hold, as
DIR/<entity>.csv: the entity's columns in schema order, sorted by id, in the
exact form of

  PGTZ=UTC PGDATESTYLE=ISO psql -c "\\copy (SELECT <columns> FROM t ORDER BY id)
                                     TO 'file' WITH (FORMAT csv, FORCE_QUOTE *)"

(every value quoted, NULL an unquoted empty field), so a test compares files
with cmp/diff.

--pgbench-accounts N instead writes one entity, pgbench_accounts (the shape of
pgbench's table), as pgbench_accounts.csv with a header for sluice and
pgbench_accounts.copy.csv without one for `psql \\copy` (the benchmark).

Python standard library only; the same --seed gives the same bytes.
"""
import argparse
import csv
import datetime as dt
import io
import json
import os
import random
import sys
import uuid

UTC = dt.timezone.utc
NULL_MARK = "@@SLUICE-NULL@@"
EMPTY_MARK = "@@SLUICE-EMPTY@@"

SCHEMAS = {
    "accounts": {
        "namespace": "crm", "name": "accounts",
        "columns": [
            {"name": "id", "type": "int64", "key": True},
            {"name": "name", "type": "text", "nullable": False, "max_length": 200},
            {"name": "industry", "type": "text", "nullable": True},
            {"name": "annual_revenue", "type": "decimal", "precision": 18, "scale": 2},
            {"name": "employees", "type": "int32"},
            {"name": "is_active", "type": "bool", "nullable": False},
            {"name": "founded", "type": "date"},
            {"name": "created_at", "type": "timestamptz", "nullable": False},
            {"name": "external_id", "type": "uuid"},
            {"name": "rating", "type": "float64"},
            {"name": "notes", "type": "text"},
        ],
    },
    "contacts": {
        "namespace": "crm", "name": "contacts",
        "columns": [
            {"name": "id", "type": "int64", "key": True},
            {"name": "account_id", "type": "int64", "nullable": False},
            {"name": "first_name", "type": "text"},
            {"name": "last_name", "type": "text", "nullable": False},
            {"name": "email", "type": "text", "max_length": 320},
            {"name": "phone", "type": "text"},
            {"name": "birth_date", "type": "date"},
            {"name": "do_not_call", "type": "bool"},
            {"name": "last_contacted", "type": "timestamptz"},
            {"name": "preferences", "type": "json"},
            {"name": "bio", "type": "text"},
        ],
    },
    "opportunities": {
        "namespace": "crm", "name": "opportunities",
        "version_column": "row_version",
        "columns": [
            {"name": "id", "type": "int64", "key": True},
            {"name": "account_id", "type": "int64", "nullable": False},
            {"name": "title", "type": "text", "nullable": False},
            {"name": "amount", "type": "decimal", "precision": 18, "scale": 2},
            {"name": "probability", "type": "int16"},
            {"name": "stage", "type": "text"},
            {"name": "close_date", "type": "date"},
            {"name": "call_time", "type": "time"},
            {"name": "won", "type": "bool"},
            {"name": "updated_at", "type": "timestamptz"},
            {"name": "signature", "type": "bytes"},
            {"name": "row_version", "type": "int64", "nullable": False},
        ],
    },
}
ENTITIES = list(SCHEMAS)

WORDS = ("alpha nova blue river stone north quantum prime delta summit harbor cedar "
         "orbit lumen vertex maple falcon ember atlas zenith").split()
INDUSTRIES = ["Software", "Retail", "Manufacturing", "Finance", "Health care", "Energy"]
STAGES = ["prospecting", "qualification", "proposal", "negotiation", "closed"]
FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grete", "Hiro", "Ines", "Jonas"]
LAST = ["Müller", "O'Brien", "Smith", "Nguyen", "García", "Kowalski", "Schmidt", "Rossi"]
# text that exercises CSV quoting, escaping and UTF-8
TRICKY = [
    'He said "hello", then left',
    "line one\nline two\nline three",
    "comma, separated, words",
    "emoji 🚀🎉 and ümlauts",
    "  leading and trailing spaces  ",
    "tab\there",
    "back\\slash and \\N literal",
    "windows\r\nline break",
    "",  # the empty string, distinct from NULL
]
OFFSETS = [0, 2 * 60, -5 * 60, 5 * 60 + 30, -(3 * 60 + 30)]  # minutes east of UTC


# ---- canonical values: (text the source reads, text PostgreSQL prints) ------

def ts_value(rng, start_year=2015, end_year=2025):
    """A timestamptz: input text with a random zone offset, UTC output text."""
    lo = int(dt.datetime(start_year, 1, 1, tzinfo=UTC).timestamp())
    hi = int(dt.datetime(end_year, 1, 1, tzinfo=UTC).timestamp())
    t = dt.datetime.fromtimestamp(rng.randrange(lo, hi), UTC)
    t = t.replace(microsecond=rng.choice([0, 0, 500000, 123456, 1, 999999]))
    off = rng.choice(OFFSETS)
    local = t.astimezone(dt.timezone(dt.timedelta(minutes=off)))
    sign = "+" if off >= 0 else "-"
    inp = local.strftime("%Y-%m-%d %H:%M:%S") + frac(local.microsecond) + \
        "%s%02d:%02d" % (sign, abs(off) // 60, abs(off) % 60)
    return inp, t.strftime("%Y-%m-%d %H:%M:%S") + frac(t.microsecond) + "+00"


def frac(us):
    return ("." + ("%06d" % us).rstrip("0")) if us else ""


def date_value(rng, lo_year=1950, hi_year=2024):
    d = dt.date(lo_year, 1, 1) + dt.timedelta(days=rng.randrange((hi_year - lo_year) * 365))
    return d.isoformat()


def money(rng, lo=-1_000_000_00, hi=5_000_000_000_00):
    cents = rng.randrange(lo, hi)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s%d.%02d" % (sign, cents // 100, cents % 100)


def float_text(x):
    """PostgreSQL float8 output (shortest round trip) for the values we make."""
    r = repr(x)
    return r[:-2] if r.endswith(".0") else r


def jsonb_text(v):
    """PostgreSQL's jsonb output: keys by (length, bytes), ', ' and ': '."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + jsonb_text(v[k])
                               for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(jsonb_text(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def maybe(rng, p, value):
    return None if rng.random() < p else value


def text_value(rng, p_null=0.1, p_tricky=0.15):
    if rng.random() < p_null:
        return None
    if rng.random() < p_tricky:
        return rng.choice(TRICKY)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


# A row is a dict column -> (input text or None, expected text or None);
# JSON Lines input also wants native JSON values for some types, derived from
# the text by jsonl_value().

def pair(v):
    return (v, v)


def account_row(rng, i):
    created = ts_value(rng)
    rating = maybe(rng, 0.2, rng.randrange(0, 1000) / 100)
    return {
        "id": pair(str(i)),
        "name": pair("%s %s %s" % (rng.choice(WORDS).title(), rng.choice(WORDS).title(),
                                   rng.choice(["GmbH", "Inc.", "Ltd", "AG", "& Co."]))),
        "industry": pair(maybe(rng, 0.1, rng.choice(INDUSTRIES))),
        "annual_revenue": pair(maybe(rng, 0.1, money(rng))),
        "employees": pair(maybe(rng, 0.1, str(rng.randrange(1, 200000)))),
        "is_active": (rng.choice(["true", "false"]), None),
        "founded": pair(maybe(rng, 0.2, date_value(rng, 1890))),
        "created_at": created,
        "external_id": pair(maybe(rng, 0.1, str(uuid.UUID(int=rng.getrandbits(128))))),
        "rating": (None, None) if rating is None else (repr(rating), float_text(rating)),
        "notes": pair(text_value(rng, 0.3, 0.4)),
    }


def contact_row(rng, i, account_id):
    prefs = None
    if rng.random() < 0.7:
        prefs = {"lang": rng.choice(["de", "en", "fr"]), "newsletter": rng.random() < 0.5,
                 "tags": rng.sample(["vip", "beta", "partner", "ünïcode"], rng.randint(0, 2))}
    contacted = ts_value(rng, 2020) if rng.random() < 0.8 else (None, None)
    first = rng.choice(FIRST)
    return {
        "id": pair(str(i)),
        "account_id": pair(str(account_id)),
        "first_name": pair(maybe(rng, 0.05, first)),
        "last_name": pair(rng.choice(LAST)),
        "email": pair(maybe(rng, 0.2, "%s.%d@example.com" % (first.lower(), i))),
        "phone": pair(maybe(rng, 0.3, "+49 30 %07d" % rng.randrange(10**7))),
        "birth_date": pair(maybe(rng, 0.5, date_value(rng, 1940, 2005))),
        "do_not_call": (maybe(rng, 0.1, rng.choice(["true", "false"])), None),
        "last_contacted": contacted,
        "preferences": (None, None) if prefs is None else
        (json.dumps(prefs, ensure_ascii=False), jsonb_text(prefs)),
        "bio": pair(text_value(rng, 0.4, 0.3)),
    }


def opportunity_row(rng, i, account_id, version):
    sig = None
    if rng.random() < 0.5:
        sig = "\\x" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12))).hex()
    call = None
    if rng.random() < 0.6:
        call = "%02d:%02d:%02d%s" % (rng.randrange(24), rng.randrange(60), rng.randrange(60),
                                     frac(rng.choice([0, 250000, 5])))
    return {
        "id": pair(str(i)),
        "account_id": pair(str(account_id)),
        "title": pair("%s deal %d" % (rng.choice(WORDS).title(), i)),
        "amount": pair(maybe(rng, 0.1, money(rng, 0, 10_000_000_00))),
        "probability": pair(maybe(rng, 0.1, str(rng.randrange(0, 101)))),
        "stage": pair(maybe(rng, 0.05, rng.choice(STAGES))),
        "close_date": pair(maybe(rng, 0.3, date_value(rng, 2020, 2026))),
        "call_time": pair(call),
        "won": (maybe(rng, 0.4, rng.choice(["true", "false"])), None),
        "updated_at": ts_value(rng, 2022),
        "signature": pair(sig),
        "row_version": pair(str(version)),
    }


def finish_bools(row):
    """PostgreSQL prints booleans as t/f."""
    for k, (inp, out) in row.items():
        if out is None and inp in ("true", "false"):
            row[k] = (inp, inp[0])
    return row


# ---- writers ------------------------------------------------------------------

JSON_INT = {"int16", "int32", "int64"}


def jsonl_value(ctype, text):
    """Native JSON where natural (ints, bools, JSON objects); text otherwise."""
    if text is None:
        return None
    if ctype in JSON_INT:
        return int(text)
    if ctype == "bool":
        return text == "true"
    if ctype == "json":
        return json.loads(text)
    return text


def csv_line(values, writer_buf, writer):
    writer_buf.seek(0)
    writer_buf.truncate()
    writer.writerow(values)
    return writer_buf.getvalue()


class SnapshotWriter:
    """<entity>.csv (minimal quoting; NULL = unquoted empty, "" = quoted empty)
    or <entity>.jsonl."""

    def __init__(self, out, entity, fmt):
        self.cols = SCHEMAS[entity]["columns"]
        self.fmt = fmt
        self.f = open(os.path.join(out, "%s.%s" % (entity, fmt)), "w", encoding="utf-8",
                      newline="")
        self.buf = io.StringIO()
        self.w = csv.writer(self.buf, lineterminator="\n")
        if fmt == "csv":
            self.f.write(csv_line([c["name"] for c in self.cols], self.buf, self.w))

    def row(self, row):
        if self.fmt == "csv":
            vals = []
            for c in self.cols:
                v = row[c["name"]][0]
                vals.append(EMPTY_MARK if v == "" else v)
            self.f.write(csv_line(vals, self.buf, self.w).replace(EMPTY_MARK, '""'))
        else:
            obj = {c["name"]: jsonl_value(c["type"], row[c["name"]][0]) for c in self.cols}
            self.f.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def close(self):
        self.f.close()


def write_expected(path, entity, rows):
    cols = [c["name"] for c in SCHEMAS[entity]["columns"]]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    with open(path, "w", encoding="utf-8", newline="") as f:
        for key in sorted(rows):
            vals = [rows[key][c][1] for c in cols]
            line = csv_line([NULL_MARK if v is None else v for v in vals], buf, w)
            f.write(line.replace('"%s"' % NULL_MARK, ""))


# ---- the CRM data set -------------------------------------------------------------

def generate(a):
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "changes"), exist_ok=True)
    for name, schema in SCHEMAS.items():
        with open(os.path.join(a.out, name + ".schema.json"), "w") as f:
            json.dump(schema, f, indent=1)
            f.write("\n")

    state = {e: {} for e in ENTITIES}  # entity -> id -> row (the expected target)
    writers = {e: SnapshotWriter(a.out, e, a.format) for e in ENTITIES}
    next_id = {e: 1 for e in ENTITIES}

    def new_row(entity, version=0):
        i = next_id[entity]
        next_id[entity] += 1
        if entity == "accounts":
            return finish_bools(account_row(rng, i))
        acct = rng.choice(list(state["accounts"])) if state["accounts"] else 1
        if entity == "contacts":
            return finish_bools(contact_row(rng, i, acct))
        return finish_bools(opportunity_row(rng, i, acct, version))

    for _ in range(a.accounts):
        r = new_row("accounts")
        state["accounts"][int(r["id"][0])] = r
        writers["accounts"].row(r)
        for _ in range(a.contacts_per_account):
            c = finish_bools(contact_row(rng, next_id["contacts"], int(r["id"][0])))
            next_id["contacts"] += 1
            state["contacts"][int(c["id"][0])] = c
            writers["contacts"].row(c)
        for _ in range(a.opportunities_per_account):
            o = finish_bools(opportunity_row(rng, next_id["opportunities"], int(r["id"][0]),
                                             rng.randint(1, 5)))
            next_id["opportunities"] += 1
            state["opportunities"][int(o["id"][0])] = o
            writers["opportunities"].row(o)
    for w in writers.values():
        w.close()

    # Changes. Versions grow globally and start above every snapshot version
    # (opportunities' row_version is 1..5), so each change is newer.
    deleted = {e: {} for e in ENTITIES}  # id -> row, for re-inserts
    version = 100
    per_file = max(1, -(-a.changes // a.change_files)) if a.changes else 0
    files = [open(os.path.join(a.out, "changes", "%06d.jsonl" % (n + 1)), "w", encoding="utf-8")
             for n in range(a.change_files if a.changes else 0)]

    def emit(f, op, entity, ver, body):
        obj = {"op": op, "entity": entity, "version": ver}
        obj["key" if op == "delete" else "row"] = body
        f.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def body_of(entity, row, cols=None):
        types = {c["name"]: c["type"] for c in SCHEMAS[entity]["columns"]}
        return {k: jsonl_value(types[k], row[k][0]) for k in (cols or row)}

    for n in range(a.changes):
        f = files[min(n // per_file, len(files) - 1)]
        version += 1
        entity = rng.choice(ENTITIES)
        live = state[entity]
        roll = rng.random()
        if roll < 0.30 or not live:
            if deleted[entity] and rng.random() < 0.3:
                # re-insert a deleted key with a higher version
                i = rng.choice(sorted(deleted[entity]))
                del deleted[entity][i]
                row = new_row(entity, version)
                next_id[entity] -= 1
                row["id"] = pair(str(i))
                if entity == "contacts":
                    row["email"] = pair("back.%d@example.com" % i)
            else:
                row = new_row(entity, version)
            if entity == "opportunities":
                row["row_version"] = pair(str(version))
            live[int(row["id"][0])] = row
            emit(f, "insert", entity, version, body_of(entity, row))
        elif roll < 0.75:
            i = rng.choice(list(live)) if rng.random() < 0.7 else max(live)
            fresh = new_row(entity, version)
            next_id[entity] -= 1
            fresh["id"] = live[i]["id"]
            if entity == "opportunities":
                fresh["row_version"] = pair(str(version))
            if rng.random() < 0.5:
                # partial update: a few columns; the rest keep the target's value
                cols = [c["name"] for c in SCHEMAS[entity]["columns"][1:]]
                chosen = ["id"] + rng.sample(cols, rng.randint(1, 3))
                if entity == "opportunities" and "row_version" not in chosen:
                    chosen.append("row_version")
                for c in chosen:
                    live[i][c] = fresh[c]
                emit(f, "update", entity, version, body_of(entity, live[i], chosen))
            else:
                live[i] = fresh
                emit(f, "update", entity, version, body_of(entity, fresh))
        else:
            # delete: often the newest row, which an earlier change may have inserted
            i = max(live) if rng.random() < 0.3 else rng.choice(list(live))
            deleted[entity][i] = live.pop(i)
            emit(f, "delete", entity, version, {"id": i})
    for f in files:
        f.close()

    if a.expected:
        os.makedirs(a.expected, exist_ok=True)
        for e in ENTITIES:
            write_expected(os.path.join(a.expected, e + ".csv"), e, state[e])
    print("wrote %s: %s; %d changes in %d files" % (
        a.out, ", ".join("%s %d" % (e, next_id[e] - 1) for e in ENTITIES), a.changes,
        len(files)))


def generate_pgbench(a):
    os.makedirs(a.out, exist_ok=True)
    schema = {"namespace": "public", "name": "pgbench_accounts", "columns": [
        {"name": "aid", "type": "int32", "key": True},
        {"name": "bid", "type": "int32", "nullable": False},
        {"name": "abalance", "type": "int32", "nullable": False},
        {"name": "filler", "type": "text", "max_length": 84}]}
    with open(os.path.join(a.out, "pgbench_accounts.schema.json"), "w") as f:
        json.dump(schema, f, indent=1)
        f.write("\n")
    rng = random.Random(a.seed)
    filler = "x" * 84
    with open(os.path.join(a.out, "pgbench_accounts.csv"), "w", newline="") as snap, \
            open(os.path.join(a.out, "pgbench_accounts.copy.csv"), "w", newline="") as plain:
        ws, wp = csv.writer(snap, lineterminator="\n"), csv.writer(plain, lineterminator="\n")
        ws.writerow(["aid", "bid", "abalance", "filler"])
        chunk = []
        for aid in range(1, a.pgbench_accounts + 1):
            chunk.append((aid, (aid - 1) // 100000 + 1, rng.randrange(-5000, 5000), filler))
            if len(chunk) == 10000:
                ws.writerows(chunk)
                wp.writerows(chunk)
                chunk = []
        ws.writerows(chunk)
        wp.writerows(chunk)
    os.makedirs(os.path.join(a.out, "changes"), exist_ok=True)
    print("wrote %s: pgbench_accounts %d rows" % (a.out, a.pgbench_accounts))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder to write (the file source's path)")
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--contacts-per-account", type=int, default=3)
    p.add_argument("--opportunities-per-account", type=int, default=2)
    p.add_argument("--changes", type=int, default=0, help="change events in total")
    p.add_argument("--change-files", type=int, default=1)
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--expected", help="folder for the expected target state (<entity>.csv)")
    p.add_argument("--pgbench-accounts", type=int, metavar="N",
                   help="write only pgbench_accounts with N rows (benchmark mode)")
    a = p.parse_args()
    if a.change_files < 1 or a.accounts < 0 or a.changes < 0:
        p.error("--change-files must be >= 1, --accounts and --changes >= 0")
    if a.pgbench_accounts is not None:
        generate_pgbench(a)
    else:
        generate(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
