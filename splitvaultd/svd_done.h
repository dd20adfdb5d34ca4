/*
 * svd_done.h - a one-shot completion: one thread waits for another to
 * post a result.
 *
 * Each has its own mutex, so a writer thread finishing a group wakes its
 * callers one by one without holding the queue's lock (and without the
 * woken callers then queueing for that lock). The waiter owns the object
 * (usually on its stack); the poster must not touch it after posting.
 */
#ifndef SVD_DONE_H
#define SVD_DONE_H

#include <pthread.h>

struct svd_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int posted;
    int result;
};

void svd_done_init(struct svd_done *d);
void svd_done_post(struct svd_done *d, int result);
/* Wait for the post, destroy the object, return the posted result. */
int svd_done_wait(struct svd_done *d);

#endif /* SVD_DONE_H */
