/*
 * svd_done.c - one-shot completions (see svd_done.h).
 */
#include "config.h"

#include "svd.h"
#include "svd_done.h"

void
svd_done_init(struct svd_done *d)
{
    AZ(pthread_mutex_init(&d->mu, NULL));
    AZ(pthread_cond_init(&d->cv, NULL));
    d->posted = 0;
    d->result = -1;
}

void
svd_done_post(struct svd_done *d, int result)
{
    AZ(pthread_mutex_lock(&d->mu));
    d->result = result;
    d->posted = 1;
    AZ(pthread_cond_signal(&d->cv));
    AZ(pthread_mutex_unlock(&d->mu));
}

int
svd_done_wait(struct svd_done *d)
{
    int r;

    AZ(pthread_mutex_lock(&d->mu));
    while (!d->posted)
        AZ(pthread_cond_wait(&d->cv, &d->mu));
    r = d->result;
    AZ(pthread_mutex_unlock(&d->mu));
    /* the poster released the mutex before we could take it: safe to go */
    AZ(pthread_mutex_destroy(&d->mu));
    AZ(pthread_cond_destroy(&d->cv));
    return r;
}
