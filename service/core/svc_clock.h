/* core/svc_clock.h: keyhold's clock (svc_clock.c). */
#ifndef CORE_SVC_CLOCK_H
#define CORE_SVC_CLOCK_H

#include <stdint.h>

/* KEYHOLD_TESTING builds: $KEYHOLD_TEST_CLOCK names a file holding an
 * offset in seconds ("86400", "+3600", "-60") added to the real time on
 * every svc_now(), so that tests move keyhold's "now" without sleeping.
 * Other builds ignore the variable. Call once at start. */
void svc_clock_init(void);
/* Seconds since the epoch: the time keyhold judges expiry, renewal and
 * revocation freshness by. */
int64_t svc_now(void);

#endif
