/*
 * svd_store.c - the share store's life: the sqlite3 lock file taken before
 * privileges are dropped, open (the driver, the statements, the schema,
 * the writer's and the readers' connections), --init-store, and close.
 *
 * The store is split by concern: svd_store_sql.c (the statements),
 * svd_store_conn.c (connections, the reader pool, share reads),
 * svd_store_writer.c (the writer thread and group commit),
 * svd_store_schema.c (create, check, upgrade) and svd_store_list.c (counts
 * and listings). svd_store_int.h holds what they share and which calls
 * which.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <apr_pools.h>
#include <apr_strings.h>
#include <apu.h>
#include <apr_dbd.h>

#include "svd.h"
#include "svd_file.h"
#include "svd_log.h"
#include "svd_schema.h"
#include "svd_store.h"
#include "svd_store_int.h"

static int apr_ready;

int
svd_store_prelock(const struct svd_conf *conf, int *lock_fd, char *err, size_t errlen)
{
    char path[4200];
    int fd;

    *lock_fd = -1;
    if (conf->driver != SVD_DRIVER_SQLITE3)
        return 0;
    snprintf(path, sizeof(path), "%s.lock", conf->store_path);
    if ((fd = svd_open_regular(path, O_RDWR | O_CREAT, 0600, "store.path lock file", err,
                               errlen)) < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "store.path: %s is in use by another splitvaultd (%s)",
                 conf->store_path, strerror(errno));
        close(fd);
        return -1;
    }
    *lock_fd = fd;
    return 0;
}

static int
store_setup(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen)
{
    struct svd_store *s;
    apr_status_t rv;

    *out = NULL;
    if (!apr_ready) {
        if (apr_initialize() != APR_SUCCESS) {
            snprintf(err, errlen, "cannot initialise APR");
            return -1;
        }
        apr_ready = 1;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->magic = SVD_STORE_MAGIC;
    s->conf = conf;
    s->params = conf->driver == SVD_DRIVER_SQLITE3 ? conf->store_path : conf->store_params;
    if (conf->driver == SVD_DRIVER_PGSQL) {
        /*
         * libpq waits for ever by default: a connect gets store.timeout
         * (whole seconds, at least 2), a dead server or network is noticed
         * by TCP keepalives and, for unacknowledged writes, by
         * tcp_user_timeout. Set first, so that store.params may override
         * any of them (later keywords win); a URI cannot be prefixed.
         */
        unsigned ct = (conf->store_timeout_ms + 999) / 1000;
        if (strncmp(conf->store_params, "postgres://", 11) == 0 ||
            strncmp(conf->store_params, "postgresql://", 13) == 0) {
            svd_warn("store.params is a URI: set connect_timeout, keepalives and "
                     "tcp_user_timeout in it yourself");
        } else if (apr_pool_create_unmanaged_ex(&s->pool, NULL, NULL) == APR_SUCCESS) {
            s->params = apr_psprintf(s->pool, "connect_timeout=%u keepalives=1 "
                                     "keepalives_idle=30 keepalives_interval=10 "
                                     "keepalives_count=3 tcp_user_timeout=%u %s",
                                     ct < 2 ? 2 : ct, conf->store_timeout_ms,
                                     conf->store_params);
        }
    }
    s->wtail = &s->whead;
    AZ(pthread_mutex_init(&s->rmu, NULL));
    {
        pthread_condattr_t ca;
        AZ(pthread_condattr_init(&ca));
        AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
        AZ(pthread_cond_init(&s->rcv, &ca));
        AZ(pthread_condattr_destroy(&ca));
    }
    AZ(pthread_mutex_init(&s->wmu, NULL));
    {
        pthread_condattr_t ca;
        AZ(pthread_condattr_init(&ca));
        AZ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
        AZ(pthread_cond_init(&s->wcv_work, &ca));
        AZ(pthread_condattr_destroy(&ca));
    }
    AZ(pthread_mutex_init(&s->cmu, NULL));
    *out = s;
    if (s->pool == NULL && apr_pool_create_unmanaged_ex(&s->pool, NULL, NULL) != APR_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    svd_store_sql_init(s);
    apr_dbd_init(s->pool);
    rv = apr_dbd_get_driver(s->pool, conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql",
                            &s->driver);
    if (rv != APR_SUCCESS) {
        snprintf(err, errlen, "store.driver: apr-util DBD driver %s not available (%s); on "
                 "Debian install libaprutil1-dbd-%s",
                 conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql",
                 rv == APR_EDSOOPEN ? "cannot load it" : "not found",
                 conf->driver == SVD_DRIVER_SQLITE3 ? "sqlite3" : "pgsql");
        return -1;
    }
    return 0;
}

int
svd_store_init_schema(const struct svd_conf *conf, char *err, size_t errlen)
{
    struct svd_store *s = NULL;
    long version = 0;
    int r = -1, have;

    if (store_setup(conf, &s, err, errlen) != 0)
        goto out;
    if (svd_dbh_open(s, &s->writer, err, errlen) != 0)
        goto out;
    if ((have = svd_schema_version(s, &s->writer, &version)) < 0) {
        snprintf(err, errlen, "cannot read the schema version");
        goto out;
    }
    if (have) {
        r = svd_schema_current(s, &s->writer, version, err, errlen);
        goto out;
    }
    if (svd_schema_run(s, &s->writer, conf->driver == SVD_DRIVER_SQLITE3 ? svd_schema_sqlite3
                       : svd_schema_pgsql, err, errlen) != 0)
        goto out;
    svd_info("store: schema version %d created", SVD_SCHEMA_VERSION);
    r = 0;
out:
    svd_store_close(s);
    return r;
}

int
svd_store_open(const struct svd_conf *conf, struct svd_store **out, char *err, size_t errlen)
{
    struct svd_store *s = NULL;
    long version = 0;
    int r = -1, have;

    *out = NULL;
    if (store_setup(conf, &s, err, errlen) != 0)
        goto out;
    if (svd_dbh_open(s, &s->writer, err, errlen) != 0)
        goto out;
    if ((have = svd_schema_version(s, &s->writer, &version)) < 0) {
        snprintf(err, errlen, "store: cannot read the schema version");
        goto out;
    }
    if (have) {
        if (svd_schema_current(s, &s->writer, version, err, errlen) != 0)
            goto out;
    } else if (conf->driver == SVD_DRIVER_SQLITE3) {
        if (svd_schema_run(s, &s->writer, svd_schema_sqlite3, err, errlen) != 0)
            goto out;
        svd_info("store: new sqlite3 store %s (schema version %d)", conf->store_path,
                 SVD_SCHEMA_VERSION);
    } else {
        snprintf(err, errlen, "store: the pgsql database has no splitvaultd schema; apply "
                 "sql/daemon/pgsql.sql or run splitvaultd --init-store");
        goto out;
    }
    if (svd_dbh_prepare(s, &s->writer, err, errlen) != 0)
        goto out;
    s->nreaders = conf->store_readers;
    if ((s->readers = calloc(s->nreaders, sizeof(*s->readers))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < s->nreaders; i++)
        if (svd_dbh_open(s, &s->readers[i], err, errlen) != 0 ||
            svd_dbh_prepare(s, &s->readers[i], err, errlen) != 0)
            goto out;
    *out = s;
    s = NULL;
    r = 0;
out:
    svd_store_close(s);
    return r;
}

void
svd_store_close(struct svd_store *s)
{
    if (s == NULL)
        return;
    CHECK_OBJ(s, SVD_STORE_MAGIC);
    SVD_ASSERT(!s->running);
    if (s->readers != NULL)
        for (unsigned i = 0; i < s->nreaders; i++)
            svd_dbh_close(s, &s->readers[i]);
    free(s->readers);
    svd_dbh_close(s, &s->writer);
    if (s->pool != NULL)
        apr_pool_destroy(s->pool);
    AZ(pthread_mutex_destroy(&s->rmu));
    AZ(pthread_cond_destroy(&s->rcv));
    AZ(pthread_mutex_destroy(&s->wmu));
    AZ(pthread_cond_destroy(&s->wcv_work));
    AZ(pthread_mutex_destroy(&s->cmu));
    s->magic = 0;
    free(s);
}
