/*
 * replay.c - run inputs through a libFuzzer target without libFuzzer.
 *
 * Linked with a target's LLVMFuzzerTestOneInput() when the build has no
 * libFuzzer (the default gcc build), so that `make check` replays every seed
 * of the corpus through every target. Usage:
 *
 *   replay_wire FILE|DIR...
 *
 * Directories are read one level deep. Each input is read into a buffer of
 * exactly its size (so an over-read is caught under valgrind or ASan).
 * Prints how many inputs were replayed; exits 1 when none was, or when an
 * input cannot be read.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* No seed is larger than this; anything larger is a mistake in the tree. */
#define REPLAY_MAX_INPUT (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long replayed;

static int
replay_file(const char *path)
{
    FILE *f;
    struct stat st;
    uint8_t *buf;
    size_t n;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode))
        return 0;
    if ((unsigned long long)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_INPUT);
        return -1;
    }
    n = (size_t)st.st_size;
    if ((f = fopen(path, "rb")) == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    buf = malloc(n > 0 ? n : 1);
    if (buf == NULL || (n > 0 && fread(buf, 1, n, f) != n)) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    replayed++;
    return 0;
}

static int
replay_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char sub[4096];
    int rc = 0;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    if ((d = opendir(path)) == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        int n;

        if (e->d_name[0] == '.')
            continue;
        n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub)) {
            fprintf(stderr, "replay: %s/%s: path too long\n", path, e->d_name);
            rc = -1;
            continue;
        }
        if (replay_file(sub) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int i, rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", name);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        if (replay_path(argv[i]) != 0)
            rc = 1;
    }
    printf("%s: replayed %lu inputs\n", name, replayed);
    if (replayed == 0) {
        fprintf(stderr, "%s: no input replayed\n", name);
        rc = 1;
    }
    return rc;
}
