/* kh_spin: the spin a client makes before it sleeps for an answer
 * (kh_client_opts_set_spin; the benchmark's bare peer uses the same). A
 * spin that ends without the answer makes the next `skip` waits sleep at
 * once; skip doubles from KH_SPIN_SKIP_FIRST to KH_SPIN_SKIP_MAX with each
 * such spin, and an answer within a spin halves it. */
#ifndef KH_SPIN_H
#define KH_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#define KH_SPIN_US_DEFAULT 100u
#define KH_SPIN_US_MAX 1000u
#define KH_SPIN_SKIP_FIRST 4u
#define KH_SPIN_SKIP_MAX 1024u

struct kh_spin {
	unsigned skip;          /* waits left that sleep at once */
	unsigned backoff;       /* what skip is set to after a spin without the answer */
};

/* Whether this wait spins first (else one skipped wait is counted). */
bool kh_spin_next(struct kh_spin *s);
/* After a spin: whether the answer came within it. */
void kh_spin_result(struct kh_spin *s, bool answered);
/* Polls fd for POLLIN without sleeping for up to us microseconds: true
 * when it is readable (or hung up: the read that follows says which). */
bool kh_spin_poll(int fd, uint32_t us);

#endif
