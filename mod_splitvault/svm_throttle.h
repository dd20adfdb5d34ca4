/*
 * svm_throttle.h - the intake throttle per client network (shared memory).
 */
#ifndef SVM_THROTTLE_H
#define SVM_THROTTLE_H

#include "svm.h"
#include "svm_config.h"

#define SVM_ITHR_MUTEX "splitvault-intake"

/* The client's network as both throttles count it: r->useragent_addr (so
 * mod_remoteip's view), an IPv6 address by its /64, an IPv4-mapped one as
 * IPv4. */
const char *svm_client_net(request_rec *r);
int svm_ithr_pre_config(apr_pool_t *pconf);
/* Make this generation's table and its mutex (not on the checking pass). */
int svm_ithr_post_config(apr_pool_t *pconf, server_rec *s);
void svm_ithr_child_init(apr_pool_t *p, server_rec *s);
/* Count one POST of the form for the client's network: 1 when it may go
 * on; 0 when it is over SplitVaultIntakeThrottle, with *retry_at the end
 * of the window (the first refusal of a window is logged). */
int svm_ithr_admit(request_rec *r, const svm_srv_conf *sc, apr_time_t *retry_at);

#endif /* SVM_THROTTLE_H */
