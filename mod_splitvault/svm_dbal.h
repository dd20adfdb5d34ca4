/*
 * svm_dbal.h - which daemon a request goes to: the endpoints' shared state.
 */
#ifndef SVM_DBAL_H
#define SVM_DBAL_H

#include "svm.h"
#include "svm_config.h"

#define SVM_DBAL_MUTEX "splitvault-daemons"

/* Why an endpoint was marked failed (its last connect). */
typedef enum {
    SVM_DERR_NONE = 0,
    SVM_DERR_CONNECT,   /* TCP refused or unreachable, or the name does not resolve */
    SVM_DERR_TIMEOUT,   /* no TCP connection or no handshake within the time */
    SVM_DERR_CLOSED,    /* the daemon closed new connections before TLS */
    SVM_DERR_TLS,       /* the handshake failed (not on the certificate) or TLS set-up */
    SVM_DERR_CERT,      /* the daemon's certificate failed verification */
    SVM_DERR_EXCHANGE   /* connected, but no answer: EOF, timeout or garbage before
                         * any answer, SVM_DBAL_XFAIL_MAX times in a row */
} svm_derr;

/* Exchanges in a row that end before an answer (a close, the time up, a
 * malformed header) after which an endpoint that is up is marked failed. */
#define SVM_DBAL_XFAIL_MAX 2

/* How an endpoint was picked (svm_dbal_pick). */
typedef enum {
    SVM_PICK_UP = 0,    /* up */
    SVM_PICK_FAILED,    /* failed, tried as a last resort */
    SVM_PICK_PROBE      /* failed, this request is its probe */
} svm_dbal_how;

/* What the key location shows of one endpoint (nothing secret). */
typedef struct {
    int up;                   /* 1 up, 0 failed */
    apr_uint32_t outstanding; /* requests on it now, every child */
    apr_uint32_t failures;    /* failures in a row (one per back-off window) */
    svm_derr err;             /* the last failure's class (NONE: never failed) */
    apr_time_t since;         /* in this state since (0: since the start) */
    apr_time_t next_probe;    /* failed: tried again from then */
    apr_uint64_t served;      /* requests it answered since the start */
} svm_dbal_info;

const char *svm_derr_name(svm_derr e);
int svm_dbal_pre_config(apr_pool_t *pconf);
/* Make the table (one entry per endpoint of each server; servers whose
 * daemons and TLS settings are all the same share entries) and its mutex
 * for this generation; sets each server's dbal_base. */
int svm_dbal_post_config(apr_pool_t *pconf, server_rec *s);
void svm_dbal_child_init(apr_pool_t *p, server_rec *s);
/* The parent's monitor: forget the counts of children that are gone.
 * Never blocks. */
void svm_dbal_monitor(server_rec *s);
/* An endpoint of sc for the next connect, not one in tried (bit i:
 * endpoint i), counted as outstanding until svm_dbal_done: a due probe
 * of a failed one first (one request at a time), else the up endpoint
 * with the fewest outstanding requests (ties in turn) whose pool in this
 * process has a free connection (bit i of full: it has none), else the
 * failed one whose back-off ends first (one that failed its certificate
 * check last of all). *how says which. -1 when every endpoint is in
 * tried or full. */
int svm_dbal_pick(request_rec *r, const svm_srv_conf *sc, apr_uint32_t tried,
                  apr_uint32_t full, svm_dbal_how *how);
/* The connect to endpoint i failed (nothing was sent): failed, or failed
 * again with a longer back-off (one failure per back-off window); the
 * change is logged once, with why. */
void svm_dbal_failed(request_rec *r, const svm_srv_conf *sc, int i, svm_derr cls,
                     const char *why);
/* An exchange with endpoint i ended before any answer (why: a close, the
 * time up, a malformed header): the SVM_DBAL_XFAIL_MAX-th in a row marks
 * it failed (SVM_DERR_EXCHANGE); on a failed one, its probe failed. */
void svm_dbal_xfailed(request_rec *r, const svm_srv_conf *sc, int i, const char *why);
/* What endpoint i gave the request: no answer, an answer on a connection
 * made before, or one on a connection this request made (fresh). */
typedef enum {
    SVM_DBAL_NO_ANSWER,
    SVM_DBAL_ANSWER,
    SVM_DBAL_ANSWER_FRESH
} svm_dbal_answer;
/* The request is done with endpoint i, picked as how (on every path after
 * a pick), in one hold of the lock: an answer ends its run of failed
 * exchanges, and when it was failed and the answer is fresh it is up again
 * (logged once); a probe that is still marked as under way ends here. */
void svm_dbal_done(request_rec *r, const svm_srv_conf *sc, int i, svm_dbal_how how,
                   svm_dbal_answer answer);
/* 1 when a failed endpoint's per-connect lines are to be logged now (at
 * most once per back-off window of endpoint i), else 0: log at debug. */
int svm_dbal_loud(request_rec *r, const svm_srv_conf *sc, int i);
/* 1 when a line about every daemon of sc failing (SV01723, SV01724,
 * SV01735) is to be logged now: at most once per SVM_DBAL_BACKOFF_MAX in
 * this process, else 0: log at debug. */
int svm_dbal_loud_all(void);
/* The state of sc's endpoints into out[nelts]; their number, or -1 when
 * the table is unavailable (logged). */
int svm_dbal_info_get(request_rec *r, const svm_srv_conf *sc, svm_dbal_info *out);

#endif /* SVM_DBAL_H */
