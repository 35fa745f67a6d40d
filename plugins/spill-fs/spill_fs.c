/*
 * spill_fs.c - the "fs" spill store: one encrypted file per blob in a 0700
 * folder (docs/spill-fs.md).
 *
 * Every blob is sealed with AES-256-GCM under a fresh random key and nonce;
 * that key is wrapped with an RSA public key (OAEP, SHA-256). Reading needs a
 * matching private key; several can be configured so the public key can be
 * rotated while blobs written under the old one are still around. All
 * cryptography is OpenSSL EVP.
 *
 * File layout (<id>.blob, mode 0600):
 *
 *   "SLSPILL1"                       8 bytes magic
 *   key id                          32 bytes SHA-256 of the public key (DER SPKI)
 *   wrapped key length              2 bytes big-endian
 *   wrapped key                     RSA-OAEP(SHA-256) of the 32-byte AES key
 *   nonce                           12 bytes
 *   ciphertext                      as long as the plaintext
 *   tag                             16 bytes GCM tag
 *
 * The header and the blob id are the GCM additional data, so a changed
 * header, a renamed blob or a flipped byte anywhere fails authentication.
 *
 * Writes are atomic: a ".tmp-" file is written, fsynced, renamed to its name
 * and the folder fsynced. A full disk is SLUICE_RETRY: the host holds the
 * pipeline and tries again later.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <sluice/sluice.h>

#define SF_MAGIC "SLSPILL1"
#define SF_MAGIC_LEN 8
#define SF_KEYID_LEN 32
#define SF_AES_KEY_LEN 32
#define SF_NONCE_LEN 12
#define SF_TAG_LEN 16
#define SF_CHUNK (64u * 1024u)
#define SF_SUFFIX ".blob"
#define SF_TMP_PREFIX ".tmp-"
#define SF_MAX_KEYS 16
#define SF_GEN_BITS 3072
#define SF_GEN_KEY_FILE "spill-key.pem"

struct sf_config {
    const char *path;
    const char *public_key;
    const char *private_keys;
};

static const struct sluice_config_item sf_spec[] = {
    {"path", SLUICE_CFG_STRING, 0, NULL, offsetof(struct sf_config, path),
     "folder for blobs (a subfolder per profile is made in it); default: the profile's state "
     "folder/spill"},
    {"public_key", SLUICE_CFG_STRING, 0, NULL, offsetof(struct sf_config, public_key),
     "PEM file with the RSA public key new blobs are written for; default: a key pair "
     "generated in the profile's state folder"},
    {"private_keys", SLUICE_CFG_STRING, 0, NULL, offsetof(struct sf_config, private_keys),
     "comma-separated PEM files with RSA private keys that may read blobs (current and "
     "rotated-out keys); required with public_key"},
};

struct sf_key {
    unsigned char id[SF_KEYID_LEN];
    EVP_PKEY *pkey;
};

struct sf {
    const struct sluice_host *host;
    struct sluice_ctx *ctx;
    char *dir;
    struct sf_key pub;               /* writes */
    struct sf_key priv[SF_MAX_KEYS]; /* reads, by key id */
    int npriv;
    char *gen_dir; /* no public_key configured: where the generated pair lives */
};

/* ---- helpers ------------------------------------------------------------ */

static const char *ossl_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, cap, "unknown OpenSSL error");
        return buf;
    }
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

static char *sf_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *sf_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= SLUICE_SPILL_ID_MAX || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The key id: SHA-256 of the DER SubjectPublicKeyInfo (same for a key pair's
 * private and public half). */
static int key_id(EVP_PKEY *k, unsigned char out[SF_KEYID_LEN])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k, &der);
    if (len <= 0)
        return -1;
    unsigned int mdlen = 0;
    int rc = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL) == 1 ? 0 : -1;
    OPENSSL_free(der);
    return rc;
}

static int mkdir_0700(struct sf *s, const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        s->host->set_error(s->ctx, "cannot create spill folder %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        s->host->set_error(s->ctx, "spill folder %s is not a folder", path);
        return -1;
    }
    if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) != 0) {
        s->host->set_error(s->ctx, "cannot make spill folder %s mode 0700: %s", path,
                           strerror(errno));
        return -1;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---- keys --------------------------------------------------------------- */

static EVP_PKEY *read_pem(struct sf *s, const char *path, bool private_key)
{
    char ebuf[256];
    EVP_PKEY *k = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        s->host->set_error(s->ctx, "%s %s: cannot open: %s",
                           private_key ? "private_keys" : "public_key", path, strerror(errno));
        return NULL;
    }
    k = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
                    : PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) {
        s->host->set_error(s->ctx, "%s %s: not a PEM %s key: %s",
                           private_key ? "private_keys" : "public_key", path,
                           private_key ? "private" : "public", ossl_error(ebuf, sizeof ebuf));
        return NULL;
    }
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        s->host->set_error(s->ctx, "%s %s: not an RSA key (spill-fs wraps blob keys with "
                                   "RSA-OAEP)",
                           private_key ? "private_keys" : "public_key", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

static int add_private(struct sf *s, EVP_PKEY *k, const char *path)
{
    if (s->npriv == SF_MAX_KEYS) {
        s->host->set_error(s->ctx, "private_keys: more than %d keys", SF_MAX_KEYS);
        EVP_PKEY_free(k);
        return -1;
    }
    struct sf_key *pk = &s->priv[s->npriv];
    if (key_id(k, pk->id) != 0) {
        s->host->set_error(s->ctx, "private_keys %s: cannot compute the key id", path);
        EVP_PKEY_free(k);
        return -1;
    }
    pk->pkey = k;
    s->npriv++;
    return 0;
}

/* No public_key configured: use (or create once) a key pair kept 0600 in the
 * profile's state folder. */
static int generated_keys(struct sf *s, const char *state_dir)
{
    char ebuf[256];
    int rc = -1, fd = -1;
    FILE *f = NULL;
    EVP_PKEY *k = NULL;
    char *path = sf_join(state_dir, SF_GEN_KEY_FILE);
    char *tmp = sf_join(state_dir, SF_TMP_PREFIX SF_GEN_KEY_FILE);
    if (!path || !tmp)
        goto out;
    if (access(path, F_OK) == 0) {
        k = read_pem(s, path, true);
        if (!k)
            goto out;
    } else {
        k = EVP_RSA_gen(SF_GEN_BITS);
        if (!k) {
            s->host->set_error(s->ctx, "cannot generate an RSA key pair: %s",
                               ossl_error(ebuf, sizeof ebuf));
            goto out;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            s->host->set_error(s->ctx, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        fd = -1;
        if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
            fsync(fileno(f)) != 0) {
            s->host->set_error(s->ctx, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        fclose(f);
        f = NULL;
        if (rename(tmp, path) != 0) {
            s->host->set_error(s->ctx, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
            goto out;
        }
        fsync_dir(state_dir);
        s->host->log(s->ctx, SLUICE_LOG_INFO,
                     "generated an RSA-%d key pair for the spill store in %s (set public_key "
                     "and private_keys to keep the key apart from the blobs)",
                     SF_GEN_BITS, path);
    }
    if (key_id(k, s->pub.id) != 0 || !EVP_PKEY_up_ref(k)) {
        s->host->set_error(s->ctx, "%s: cannot compute the key id", path);
        goto out;
    }
    s->pub.pkey = k;
    if (add_private(s, k, path) != 0) {
        k = NULL; /* add_private freed one reference, pub holds the other */
        goto out;
    }
    k = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    EVP_PKEY_free(k);
    free(path);
    free(tmp);
    return rc;
}

static int configured_keys(struct sf *s, const struct sf_config *cfg)
{
    if (!cfg->private_keys || !*cfg->private_keys) {
        s->host->set_error(s->ctx, "public_key is set but private_keys is not: blobs could "
                                   "be written but never read back; add private_keys = "
                                   "\"/path/key.pem\"");
        return -1;
    }
    s->pub.pkey = read_pem(s, cfg->public_key, false);
    if (!s->pub.pkey)
        return -1;
    if (key_id(s->pub.pkey, s->pub.id) != 0) {
        s->host->set_error(s->ctx, "public_key %s: cannot compute the key id", cfg->public_key);
        return -1;
    }
    char *list = sf_strdup(cfg->private_keys);
    if (!list)
        return -1;
    int rc = -1;
    bool have_current = false;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        if (!n)
            continue;
        EVP_PKEY *k = read_pem(s, tok, true);
        if (!k || add_private(s, k, tok) != 0)
            goto out;
        if (memcmp(s->priv[s->npriv - 1].id, s->pub.id, SF_KEYID_LEN) == 0)
            have_current = true;
    }
    if (!have_current) {
        s->host->set_error(s->ctx, "none of private_keys matches public_key %s: blobs written "
                                   "now could never be read; add its private key to "
                                   "private_keys",
                           cfg->public_key);
        goto out;
    }
    rc = 0;
out:
    free(list);
    return rc;
}

static const struct sf_key *find_private(const struct sf *s, const unsigned char *id)
{
    for (int i = 0; i < s->npriv; i++)
        if (memcmp(s->priv[i].id, id, SF_KEYID_LEN) == 0)
            return &s->priv[i];
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void sf_destroy(void *inst)
{
    struct sf *s = inst;
    if (!s)
        return;
    EVP_PKEY_free(s->pub.pkey);
    for (int i = 0; i < s->npriv; i++)
        EVP_PKEY_free(s->priv[i].pkey);
    free(s->dir);
    free(s->gen_dir);
    free(s);
}

/* Remove temp files a crash left behind (never complete blobs). */
static void remove_temps(struct sf *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, SF_TMP_PREFIX, strlen(SF_TMP_PREFIX)) != 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            s->host->log(s->ctx, SLUICE_LOG_INFO, "removed %s/%s, a partial write left by a "
                                                  "crash",
                         s->dir, de->d_name);
    }
    closedir(d);
}

static int sf_init(const struct sluice_host *host, struct sluice_ctx *ctx,
                   const struct sluice_init_args *args, void **inst)
{
    const struct sf_config *cfg = args->config;
    int rc = SLUICE_ERR;
    struct sf *s = calloc(1, sizeof *s);
    if (!s)
        return SLUICE_NOMEM;
    s->host = host;
    s->ctx = ctx;
    if (cfg->path && *cfg->path) {
        if (cfg->path[0] != '/') {
            host->set_error(ctx, "path \"%s\" must be absolute", cfg->path);
            goto out;
        }
        s->dir = sf_join(cfg->path, args->profile);
    } else if (args->state_dir) {
        s->dir = sf_join(args->state_dir, "spill");
    } else {
        host->set_error(ctx, "no path configured and no state folder to default to; set path");
        goto out;
    }
    if (!s->dir)
        goto out;
    if (cfg->public_key && *cfg->public_key) {
        if (configured_keys(s, cfg) != 0)
            goto out;
    } else if (cfg->private_keys && *cfg->private_keys) {
        host->set_error(ctx, "private_keys is set but public_key is not; set both, or neither "
                             "for a key pair generated in the profile's state folder");
        goto out;
    } else if (args->state_dir) {
        /* generated (or read) at start: init does no I/O beyond config files */
        s->gen_dir = sf_strdup(args->state_dir);
        if (!s->gen_dir)
            goto out;
    } else {
        host->set_error(ctx, "no public_key configured and no state folder for a generated "
                             "key pair; set public_key and private_keys");
        goto out;
    }
    rc = SLUICE_OK;
out:
    if (rc != SLUICE_OK) {
        sf_destroy(s);
        s = NULL;
    }
    *inst = s;
    return rc;
}

static int sf_start(void *inst)
{
    struct sf *s = inst;
    /* the configured parent may not exist yet; the blob folder itself is 0700 */
    char *slash = strrchr(s->dir, '/');
    if (slash && slash != s->dir) {
        *slash = '\0';
        int rc = mkdir(s->dir, 0700);
        int e = errno;
        *slash = '/';
        if (rc != 0 && e != EEXIST) {
            s->host->set_error(s->ctx, "cannot create the folder of %s: %s", s->dir,
                               strerror(e));
            return SLUICE_ERR;
        }
    }
    if (mkdir_0700(s, s->dir) != 0)
        return SLUICE_ERR;
    /* an existing generated pair is loaded now (blobs of an earlier run may
     * wait); a new one is made by the first put, so a profile that never
     * parks anything never pays the RSA key generation */
    if (s->gen_dir && !s->pub.pkey) {
        char *path = sf_join(s->gen_dir, SF_GEN_KEY_FILE);
        bool exists = path && access(path, F_OK) == 0;
        free(path);
        if (exists && generated_keys(s, s->gen_dir) != 0)
            return SLUICE_ERR;
    }
    remove_temps(s);
    return SLUICE_OK;
}

static void sf_stop(void *inst)
{
    (void)inst;
}

/* ---- blobs -------------------------------------------------------------- */

static bool disk_full(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* RSA-OAEP(SHA-256) wrap (enc) or unwrap of the blob key. */
static int rsa_oaep(EVP_PKEY *k, bool enc, const unsigned char *in, size_t inlen,
                    unsigned char *out, size_t *outlen)
{
    int rc = -1;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k, NULL);
    if (!pc)
        goto out;
    if ((enc ? EVP_PKEY_encrypt_init(pc) : EVP_PKEY_decrypt_init(pc)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1)
        goto out;
    if ((enc ? EVP_PKEY_encrypt(pc, out, outlen, in, inlen)
             : EVP_PKEY_decrypt(pc, out, outlen, in, inlen)) != 1)
        goto out;
    rc = 0;
out:
    EVP_PKEY_CTX_free(pc);
    return rc;
}

#define SF_HDR_MAX (SF_MAGIC_LEN + SF_KEYID_LEN + 2 + 1024 + SF_NONCE_LEN)

static int sf_put(void *inst, const void *data, size_t len, char id[SLUICE_SPILL_ID_MAX])
{
    struct sf *s = inst;
    char ebuf[256];
    int rc = SLUICE_ERR, fd = -1;
    EVP_CIPHER_CTX *cc = NULL;
    unsigned char rnd[16], key[SF_AES_KEY_LEN], hdr[SF_HDR_MAX], tag[SF_TAG_LEN];
    unsigned char *out = NULL;
    char *tmp = NULL, *final = NULL, name[SLUICE_SPILL_ID_MAX + 16];
    bool tmp_made = false;
    if (s->gen_dir && !s->pub.pkey && generated_keys(s, s->gen_dir) != 0)
        return SLUICE_ERR;
    if (RAND_bytes(rnd, sizeof rnd) != 1 || RAND_bytes(key, sizeof key) != 1) {
        s->host->set_error(s->ctx, "no random bytes: %s", ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    /* header */
    size_t h = 0;
    memcpy(hdr, SF_MAGIC, SF_MAGIC_LEN);
    h += SF_MAGIC_LEN;
    memcpy(hdr + h, s->pub.id, SF_KEYID_LEN);
    h += SF_KEYID_LEN;
    size_t wlen = 1024;
    if (rsa_oaep(s->pub.pkey, true, key, sizeof key, hdr + h + 2, &wlen) != 0 || wlen > 1024) {
        s->host->set_error(s->ctx, "cannot wrap the blob key with the public key: %s",
                           ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    hdr[h] = (unsigned char)(wlen >> 8);
    hdr[h + 1] = (unsigned char)wlen;
    h += 2 + wlen;
    unsigned char *nonce = hdr + h;
    if (RAND_bytes(nonce, SF_NONCE_LEN) != 1) {
        s->host->set_error(s->ctx, "no random bytes: %s", ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    h += SF_NONCE_LEN;

    snprintf(name, sizeof name, SF_TMP_PREFIX "%s", id);
    tmp = sf_join(s->dir, name);
    snprintf(name, sizeof name, "%s" SF_SUFFIX, id);
    final = sf_join(s->dir, name);
    out = malloc(SF_CHUNK + 32);
    cc = EVP_CIPHER_CTX_new();
    if (!tmp || !final || !out || !cc) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    int olen = 0;
    if (EVP_EncryptInit_ex(cc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_IVLEN, SF_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(cc, NULL, NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(cc, NULL, &olen, hdr, (int)h) != 1 ||
        EVP_EncryptUpdate(cc, NULL, &olen, (const unsigned char *)id, (int)strlen(id)) != 1) {
        s->host->set_error(s->ctx, "AES-256-GCM setup failed: %s", ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto io_error;
    tmp_made = true;
    if (write_all(fd, hdr, h) != 0)
        goto io_error;
    const unsigned char *p = data;
    for (size_t off = 0; off < len;) {
        size_t n = len - off < SF_CHUNK ? len - off : SF_CHUNK;
        if (EVP_EncryptUpdate(cc, out, &olen, p + off, (int)n) != 1) {
            s->host->set_error(s->ctx, "AES-256-GCM failed: %s", ossl_error(ebuf, sizeof ebuf));
            goto out;
        }
        if (write_all(fd, out, (size_t)olen) != 0)
            goto io_error;
        off += n;
    }
    if (EVP_EncryptFinal_ex(cc, out, &olen) != 1 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_GET_TAG, SF_TAG_LEN, tag) != 1) {
        s->host->set_error(s->ctx, "AES-256-GCM failed: %s", ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    if ((olen > 0 && write_all(fd, out, (size_t)olen) != 0) ||
        write_all(fd, tag, sizeof tag) != 0 || fsync(fd) != 0)
        goto io_error;
    if (close(fd) != 0) {
        fd = -1;
        goto io_error;
    }
    fd = -1;
    if (rename(tmp, final) != 0)
        goto io_error;
    tmp_made = false;
    if (fsync_dir(s->dir) != 0)
        goto io_error;
    rc = SLUICE_OK;
    goto out;
io_error:
    if (disk_full(errno)) {
        s->host->set_error(s->ctx, "spill folder %s is full (%s) while writing a blob of %zu "
                                   "bytes; the pipeline holds and retries until space is "
                                   "freed, nothing is lost",
                           s->dir, strerror(errno), len);
        rc = SLUICE_RETRY;
    } else {
        s->host->set_error(s->ctx, "cannot write blob %s in %s: %s", id, s->dir,
                           strerror(errno));
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    if (rc != SLUICE_OK)
        id[0] = '\0';
    OPENSSL_cleanse(key, sizeof key);
    EVP_CIPHER_CTX_free(cc);
    free(out);
    free(tmp);
    free(final);
    return rc;
}

static char *blob_path(struct sf *s, const char *id)
{
    char name[SLUICE_SPILL_ID_MAX + 8];
    snprintf(name, sizeof name, "%s" SF_SUFFIX, id);
    return sf_join(s->dir, name);
}

static int sf_get(void *inst, const char *id, void **data, size_t *len)
{
    struct sf *s = inst;
    char ebuf[256];
    int rc = SLUICE_ERR, fd = -1;
    unsigned char hdr[SF_HDR_MAX], key[SF_AES_KEY_LEN], tag[SF_TAG_LEN];
    unsigned char *plain = NULL, *chunk = NULL;
    EVP_CIPHER_CTX *cc = NULL;
    char *path = NULL;
    *data = NULL;
    *len = 0;
    if (!id_valid(id)) {
        s->host->set_error(s->ctx, "spill blob id \"%.40s\" is malformed", id);
        goto out;
    }
    path = blob_path(s, id);
    if (!path) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            s->host->set_error(s->ctx, "spill blob %s (%s) does not exist", id, path);
            rc = SLUICE_NOT_FOUND;
        } else {
            s->host->set_error(s->ctx, "spill blob %s (%s): cannot open: %s", id, path,
                               strerror(errno));
        }
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s->host->set_error(s->ctx, "spill blob %s (%s): %s", id, path, strerror(errno));
        goto out;
    }
    size_t size = (size_t)st.st_size;
    size_t h = SF_MAGIC_LEN + SF_KEYID_LEN + 2;
    if (size < h + SF_NONCE_LEN + SF_TAG_LEN || read_all(fd, hdr, h) != 0 ||
        memcmp(hdr, SF_MAGIC, SF_MAGIC_LEN) != 0) {
        s->host->set_error(s->ctx, "spill blob %s (%s) is damaged: not a spill-fs blob "
                                   "(bad header or truncated)",
                           id, path);
        goto out;
    }
    size_t wlen = ((size_t)hdr[h - 2] << 8) | hdr[h - 1];
    if (wlen > 1024 || size < h + wlen + SF_NONCE_LEN + SF_TAG_LEN ||
        read_all(fd, hdr + h, wlen + SF_NONCE_LEN) != 0) {
        s->host->set_error(s->ctx, "spill blob %s (%s) is damaged: bad wrapped-key length", id,
                           path);
        goto out;
    }
    const struct sf_key *k = find_private(s, hdr + SF_MAGIC_LEN);
    if (!k) {
        char hex[17];
        for (int i = 0; i < 8; i++)
            snprintf(hex + 2 * i, 3, "%02x", hdr[SF_MAGIC_LEN + i]);
        s->host->set_error(s->ctx, "spill blob %s (%s) was written for public key %s..., and "
                                   "none of private_keys matches it; add that key's private "
                                   "half to private_keys",
                           id, path, hex);
        goto out;
    }
    unsigned char unwrapped[1024]; /* RSA decryption wants room for the modulus */
    size_t klen = sizeof unwrapped;
    int unwrap_rc = rsa_oaep(k->pkey, false, hdr + h, wlen, unwrapped, &klen);
    if (unwrap_rc == 0 && klen == sizeof key)
        memcpy(key, unwrapped, sizeof key);
    OPENSSL_cleanse(unwrapped, sizeof unwrapped);
    if (unwrap_rc != 0 || klen != sizeof key) {
        ERR_clear_error();
        s->host->set_error(s->ctx, "spill blob %s (%s) failed authentication: its wrapped key "
                                   "does not decrypt (the file was changed or damaged)",
                           id, path);
        goto out;
    }
    const unsigned char *nonce = hdr + h + wlen;
    h += wlen + SF_NONCE_LEN;
    size_t ctlen = size - h - SF_TAG_LEN;
    plain = malloc(ctlen ? ctlen : 1);
    chunk = malloc(SF_CHUNK);
    cc = EVP_CIPHER_CTX_new();
    if (!plain || !chunk || !cc) {
        rc = SLUICE_NOMEM;
        goto out;
    }
    int olen = 0;
    if (EVP_DecryptInit_ex(cc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_IVLEN, SF_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(cc, NULL, NULL, key, nonce) != 1 ||
        EVP_DecryptUpdate(cc, NULL, &olen, hdr, (int)h) != 1 ||
        EVP_DecryptUpdate(cc, NULL, &olen, (const unsigned char *)id, (int)strlen(id)) != 1) {
        s->host->set_error(s->ctx, "spill blob %s: AES-256-GCM setup failed: %s", id,
                           ossl_error(ebuf, sizeof ebuf));
        goto out;
    }
    size_t done = 0;
    for (size_t off = 0; off < ctlen;) {
        size_t n = ctlen - off < SF_CHUNK ? ctlen - off : SF_CHUNK;
        if (read_all(fd, chunk, n) != 0) {
            s->host->set_error(s->ctx, "spill blob %s (%s): read failed: %s", id, path,
                               strerror(errno));
            goto out;
        }
        if (EVP_DecryptUpdate(cc, plain + done, &olen, chunk, (int)n) != 1) {
            s->host->set_error(s->ctx, "spill blob %s: AES-256-GCM failed: %s", id,
                               ossl_error(ebuf, sizeof ebuf));
            goto out;
        }
        done += (size_t)olen;
        off += n;
    }
    if (read_all(fd, tag, sizeof tag) != 0 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, SF_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(cc, plain + done, &olen) != 1) {
        ERR_clear_error();
        s->host->set_error(s->ctx, "spill blob %s (%s) failed authentication (AES-GCM tag "
                                   "mismatch): the file was changed or damaged after it was "
                                   "written; its contents are not used",
                           id, path);
        goto out;
    }
    done += (size_t)olen;
    *data = plain;
    *len = done;
    plain = NULL;
    rc = SLUICE_OK;
out:
    OPENSSL_cleanse(key, sizeof key);
    if (fd >= 0)
        close(fd);
    EVP_CIPHER_CTX_free(cc);
    free(plain);
    free(chunk);
    free(path);
    return rc;
}

static void sf_release(void *inst, void *data, size_t len)
{
    (void)inst;
    (void)len;
    free(data);
}

static int sf_del(void *inst, const char *id)
{
    struct sf *s = inst;
    if (!id_valid(id)) {
        s->host->set_error(s->ctx, "spill blob id \"%.40s\" is malformed", id);
        return SLUICE_ERR;
    }
    char *path = blob_path(s, id);
    if (!path)
        return SLUICE_NOMEM;
    int rc = SLUICE_OK;
    if (unlink(path) != 0 && errno != ENOENT) {
        s->host->set_error(s->ctx, "cannot remove spill blob %s (%s): %s", id, path,
                           strerror(errno));
        rc = SLUICE_ERR;
    }
    free(path);
    return rc;
}

static int sf_list(void *inst, int (*cb)(void *arg, const char *id), void *arg)
{
    struct sf *s = inst;
    DIR *d = opendir(s->dir);
    if (!d) {
        if (errno == ENOENT)
            return SLUICE_OK;
        s->host->set_error(s->ctx, "cannot list spill folder %s: %s", s->dir, strerror(errno));
        return SLUICE_ERR;
    }
    struct dirent *de;
    size_t sl = strlen(SF_SUFFIX);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n <= sl || n - sl >= SLUICE_SPILL_ID_MAX ||
            strcmp(de->d_name + n - sl, SF_SUFFIX) != 0)
            continue;
        char id[SLUICE_SPILL_ID_MAX];
        memcpy(id, de->d_name, n - sl);
        id[n - sl] = '\0';
        if (!id_valid(id))
            continue;
        if (cb(arg, id) != 0)
            break;
    }
    closedir(d);
    return SLUICE_OK;
}

static const struct sluice_spill_ops sf_ops = {
    .struct_size = sizeof(struct sluice_spill_ops),
    .put = sf_put,
    .get = sf_get,
    .release = sf_release,
    .del = sf_del,
    .list = sf_list,
};

static const struct sluice_plugin sf_plugin = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof(struct sluice_plugin),
    .kind = SLUICE_KIND_SPILL,
    .name = "fs",
    .version = "1.0.0",
    .description = "encrypted files in a 0700 folder (AES-256-GCM, key wrapped with RSA-OAEP)",
    .config = sf_spec,
    .nconfig = sizeof sf_spec / sizeof sf_spec[0],
    .config_size = sizeof(struct sf_config),
    .init = sf_init,
    .start = sf_start,
    .stop = sf_stop,
    .destroy = sf_destroy,
    .ops = &sf_ops,
};

SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entry(void)
{
    return &sf_plugin;
}
