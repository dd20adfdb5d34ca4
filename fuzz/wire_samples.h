/*
 * wire_samples.h - sample wire messages and a generic decoder, shared by the
 * wire fuzz target, the seed-corpus generator and the wire unit tests.
 *
 * Samples are deterministic (fixed uuids, keys, ids and ciphertext bytes), so
 * the generated corpus is the same on every run and can be compared with
 * the committed one. The bytes are stand-ins: nothing here is a real key.
 */
#ifndef SV_WIRE_SAMPLES_H
#define SV_WIRE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "sv_buf.h"
#include "sv_wire.h"

typedef struct {
    const char *name; /* corpus base name, e.g. "store-valid" */
    uint8_t type;     /* SV_MSG_* of the frame */
} wsample_info;

/* Number of samples. */
unsigned wsample_count(void);

/* Name and type of sample i (i < wsample_count()). */
const wsample_info *wsample_get(unsigned i);

/* Append sample i as one complete frame, request id reqid, to out (which
 * must be a secret buffer: some samples carry stand-in key shares). */
sv_status wsample_encode(unsigned i, sv_buf *out, uint32_t reqid);

/* Decode body[0..len) as a message of the given type with the matching
 * sv_*_decode(), release whatever it allocated, and return its status.
 * Unknown types give SV_ERR_WIRE_TYPE. */
sv_status wsample_decode(uint8_t type, const uint8_t *body, size_t len);

/*
 * Decoder/encoder agreement on one body. Returns:
 *   0  the decoder refused the body (*st says why);
 *   1  the decoder accepted it, the encoder re-encoded what was decoded,
 *      the re-encoded body decodes again and equals the input up to the
 *      extension block (an input without extensions is reproduced exactly);
 *  -1  any of that failed: a bug (the fuzz target aborts on it).
 */
int wsample_roundtrip(uint8_t type, const uint8_t *body, size_t len, sv_status *st);

#endif /* SV_WIRE_SAMPLES_H */
