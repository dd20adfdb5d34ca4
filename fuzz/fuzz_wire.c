/*
 * fuzz_wire.c - libFuzzer target for the wire protocol decoders.
 *
 * Input: bytes as they would arrive from a peer, normally one frame. Each
 * input goes through
 *   1. sv_wire_frame() on the whole input (the strict frame check);
 *   2. sv_wire_hdr_decode() on its first 12 bytes, and when that accepts the
 *      header, the body decoder of the header's type on everything after
 *      the header, whatever the length field says (so mutations that break
 *      the length still reach the decoders);
 *   3. for every body a decoder accepts, the encoder/decoder agreement of
 *      wsample_roundtrip(): re-encoding must succeed and reproduce the input
 *      up to its extension block, and decode again.
 * Any disagreement aborts (a finding), as do the sanitizers.
 *
 * Built with -fsanitize=fuzzer for fuzzing (./configure --enable-fuzz
 * CC=clang), or linked with fuzz/replay.c to replay the seed corpus in
 * `make check`. See docs/fuzzing.md.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sv_wire.h"
#include "wire_samples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_body(uint8_t type, const uint8_t *body, size_t len)
{
    sv_status st;

    if (wsample_roundtrip(type, body, len, &st) < 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_wire_hdr h, h2;
    const uint8_t *body = NULL;
    sv_status fst, hst;

    fst = sv_wire_frame(data, size, &h, &body);
    if (size < SV_WIRE_HDR_LEN) {
        if (fst != SV_ERR_WIRE_TRUNCATED)
            abort();
        return 0;
    }
    hst = sv_wire_hdr_decode(data, &h2);
    /* The frame check never accepts what the header check refuses, and
     * agrees with it on every header field. */
    if (fst == SV_OK) {
        if (hst != SV_OK || body != data + SV_WIRE_HDR_LEN ||
            (size_t)h.body_len != size - SV_WIRE_HDR_LEN ||
            memcmp(&h, &h2, sizeof(h)) != 0)
            abort();
    } else if (body != NULL) {
        abort();
    }
    if (hst != SV_OK)
        return 0;
    check_body(h2.type, data + SV_WIRE_HDR_LEN, size - SV_WIRE_HDR_LEN);
    return 0;
}
