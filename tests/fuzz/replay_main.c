/*
 * replay_main.c - a main() for the fuzz targets when libFuzzer is not
 * available (SLUICE_FUZZ=OFF, gcc): runs every file of a corpus folder
 * through LLVMFuzzerTestOneInput, then N deterministic mutations of them
 * (byte flips, magic bytes, truncation, duplication, deletion, insertion).
 * With SLUICE_SANITIZE=ON this gives CI a sanitizer-checked fuzz pass.
 *
 * usage: <target> CORPUS_DIR [ITERATIONS] [SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    uint8_t *data;
    size_t len;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int load(const char *dir, struct input **out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t cap = 0;
    if (!d) {
        fprintf(stderr, "replay: cannot open corpus folder %s\n", dir);
        return -1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        struct input in = {0};
        size_t cap_in = 0;
        uint8_t buf[65536];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            if (in.len + got > cap_in) {
                cap_in = (in.len + got) * 2;
                in.data = realloc(in.data, cap_in);
            }
            memcpy(in.data + in.len, buf, got);
            in.len += got;
        }
        fclose(f);
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = realloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = in;
    }
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    struct input *corpus = NULL;
    size_t ncorpus = 0;
    long iterations = argc > 2 ? atol(argv[2]) : 100000;
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 0) : 0x5eed5eed5eedull;
    if (argc < 2 || load(argv[1], &corpus, &ncorpus) != 0)
        return 2;
    if (ncorpus == 0) {
        fprintf(stderr, "replay: corpus folder %s is empty; run gen_corpus first\n", argv[1]);
        return 2;
    }
    for (size_t i = 0; i < ncorpus; i++)
        LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].len);

    static const uint8_t magic[] = {0x00, 0x01, 0x7f, 0x80, 0xc0, 0xc1, 0xc4, 0xc7, 0xcf,
                                    0xd3, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    size_t cap = 0;
    uint8_t *buf = NULL;
    for (long it = 0; it < iterations; it++) {
        const struct input *src = &corpus[rnd() % ncorpus];
        size_t len = src->len;
        if (cap < len * 2 + 64) {
            cap = len * 2 + 64;
            buf = realloc(buf, cap);
        }
        if (len)
            memcpy(buf, src->data, len);
        int nmut = 1 + (int)(rnd() % 4);
        for (int m = 0; m < nmut; m++) {
            size_t pos = len ? rnd() % len : 0;
            switch (rnd() % 7) {
            case 0: /* flip a bit */
                if (len)
                    buf[pos] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1: /* a byte msgpack cares about */
                if (len)
                    buf[pos] = magic[rnd() % sizeof magic];
                break;
            case 2: /* random byte */
                if (len)
                    buf[pos] = (uint8_t)rnd();
                break;
            case 3: /* truncate */
                len = pos;
                break;
            case 4: { /* delete a run */
                size_t k = 1 + rnd() % 16;
                if (pos + k <= len) {
                    memmove(buf + pos, buf + pos + k, len - pos - k);
                    len -= k;
                }
                break;
            }
            case 5: { /* duplicate a run */
                size_t k = 1 + rnd() % 16;
                if (pos + k <= len && len + k <= cap) {
                    memmove(buf + pos + k, buf + pos, len - pos);
                    len += k;
                }
                break;
            }
            default: /* insert a random byte */
                if (len + 1 <= cap) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = (uint8_t)rnd();
                    len++;
                }
                break;
            }
        }
        /* exact-size copy so ASan sees any read past the end */
        uint8_t *exact = malloc(len ? len : 1);
        if (len)
            memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("replay: %zu corpus inputs and %ld mutations passed\n", ncorpus, iterations);
    free(buf);
    for (size_t i = 0; i < ncorpus; i++)
        free(corpus[i].data);
    free(corpus);
    return 0;
}
